"""The learned functions of distance that shape GOCor's reference loss: label y, weight v+ and mask m (v- = m v+).

Each is a 1 x 1 convolution (no bias) over a triangular binning of the Euclidean distance between a filter's
position and a reference position (10 bins every 0.5 px, the last bin saturating), initialised as in GOCor:
y = exp(-d_k^2 / 2 sigma^2) - min, v+ = 1, m = sigmoid(4 tanh(2 - d_k)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def distance_bins(distance: Tensor, num_bins: int, bin_displacement: float) -> Tensor:
    """(...,) distances -> (num_bins, ...) triangular interpolation weights; the last bin is 1 beyond its centre."""
    centres = torch.arange(num_bins, dtype=distance.dtype, device=distance.device).view(-1, *[1] * distance.dim())
    diff = distance / bin_displacement - centres
    return torch.cat((F.relu(1.0 - diff[:-1].abs()), (1.0 + diff[-1:]).clamp(0, 1)), dim=0)


class DistancePredictors(nn.Module):
    """y, v+ and m as functions of the displacement (dy, dx) between a filter and a reference position."""

    def __init__(
        self,
        num_bins: int = 10,
        bin_displacement: float = 0.5,
        init_gauss_sigma: float = 1.0,
        v_minus_init_factor: float = 4.0,
    ):
        super().__init__()
        self.num_bins, self.bin_displacement = num_bins, bin_displacement
        d = torch.arange(num_bins, dtype=torch.float32).view(1, -1, 1, 1) * bin_displacement
        gauss = torch.exp(-0.5 * (d / init_gauss_sigma) ** 2)
        self.label_map_predictor = nn.Conv2d(num_bins, 1, kernel_size=1, bias=False)
        self.label_map_predictor.weight.data = gauss - gauss.min()
        self.spatial_weight_predictor = nn.Conv2d(num_bins, 1, kernel_size=1, bias=False)
        self.spatial_weight_predictor.weight.data.fill_(1.0)
        self.target_mask_predictor = nn.Sequential(nn.Conv2d(num_bins, 1, kernel_size=1, bias=False), nn.Sigmoid())
        self.target_mask_predictor[0].weight.data = v_minus_init_factor * torch.tanh(2.0 - d)

    def forward(self, radius_y: int, radius_x: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """y, v+, m on the displacement grid dy in [-radius_y, radius_y], dx in [-radius_x, radius_x] (row-major)."""
        dtype = self.label_map_predictor.weight.dtype
        dy = torch.arange(-radius_y, radius_y + 1, dtype=dtype, device=device).view(-1, 1)
        dx = torch.arange(-radius_x, radius_x + 1, dtype=dtype, device=device).view(1, -1)
        bins = distance_bins(torch.sqrt(dy * dy + dx * dx), self.num_bins, self.bin_displacement)[None]
        return (
            self.label_map_predictor(bins)[0, 0],
            self.spatial_weight_predictor(bins)[0, 0],
            self.target_mask_predictor(bins)[0, 0],
        )


def leaky_relu_par(x: Tensor, m: Tensor) -> Tensor:
    """Parametric leaky ReLU sigma(s; m): slope 1 for s > 0 and m for s < 0."""
    return (1.0 - m) / 2.0 * torch.abs(x) + (1.0 + m) / 2.0 * x


def leaky_relu_par_deriv(x: Tensor, m: Tensor) -> Tensor:
    """d sigma / d s, the sign taken without gradient (as GOCor)."""
    return (1.0 - m) / 2.0 * torch.sign(x.detach()) + (1.0 + m) / 2.0
