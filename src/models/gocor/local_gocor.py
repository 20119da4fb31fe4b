"""Local GOCor: one filter per reference pixel correlated over a 9 x 9 window (the channel-averaged local correlation
of PWC-Net), optimised by steepest descent on the windowed reference loss + lambda/d^2 |w|^2 (no query loss, as in
the released GLU-Net-GOCor / PWC-Net-GOCor); the step length is one scalar per pixel."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from corrlab.models.gocor.predictors import DistancePredictors, leaky_relu_par, leaky_relu_par_deriv
from corrlab.ops.local_correlation import RADIUS, local_correlation, local_correlation_transpose


class LocalSimpleInitializer(nn.Module):
    """w = s f / (mean_c f^2 + 1e-6): the mean (not the sum) because the local correlation divides by C."""

    def __init__(self):
        super().__init__()
        self.scaling = nn.Parameter(torch.ones(1))

    def forward(self, feat: Tensor) -> Tensor:
        return self.scaling * (feat / ((feat * feat).mean(dim=1, keepdim=True) + 1e-6))


@dataclass(frozen=True)
class LocalGOCorConfig:
    """GOCor's local defaults; optim_iter is 3 in training and 7 at the README's evaluation."""

    optim_iter: int = 3
    init_step_length: float = 1.0
    init_filter_reg: float = 1e-2
    min_filter_reg: float = 1e-5
    num_dist_bins: int = 10
    bin_displacement: float = 0.5
    init_gauss_sigma: float = 1.0
    v_minus_init_factor: float = 4.0


class LocalGOCorOptimizer(nn.Module):
    """K steepest-descent steps on the local filter map (GOCor's LocalGOCorrOpt without query loss)."""

    def __init__(self, cfg: LocalGOCorConfig):
        super().__init__()
        self.num_iter, self.min_filter_reg = cfg.optim_iter, cfg.min_filter_reg
        self.log_step_length = nn.Parameter(math.log(cfg.init_step_length) * torch.ones(1))
        self.filter_reg = nn.Parameter(cfg.init_filter_reg * torch.ones(1))
        self.predictors = DistancePredictors(
            cfg.num_dist_bins, cfg.bin_displacement, cfg.init_gauss_sigma, cfg.v_minus_init_factor
        )

    def loss_maps(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """y, v+, m as (1, 81, 1, 1) in the correlation's channel order (dy-major)."""
        return tuple(m.reshape(1, -1, 1, 1) for m in self.predictors(RADIUS, RADIUS, device))

    def reg_weight(self, feat_dim: int) -> Tensor:
        return (self.filter_reg * self.filter_reg).clamp(min=self.min_filter_reg**2) / feat_dim**2

    def objective(self, filters: Tensor, reference_feat: Tensor) -> Tensor:
        """L(w) summed over the batch (the quantity the steps decrease)."""
        y, v_plus, m = self.loss_maps(reference_feat.device)
        scores = local_correlation(filters, reference_feat)
        loss = 0.5 * ((v_plus * leaky_relu_par(scores, m) - v_plus * y) ** 2).sum()
        return loss + 0.5 * self.reg_weight(reference_feat.shape[1]) * (filters**2).sum()

    def forward(self, filters: Tensor, reference_feat: Tensor, num_iter: int | None = None) -> Tensor:
        y, v_plus, m = self.loss_maps(reference_feat.device)
        step_length, reg_weight = torch.exp(self.log_step_length), self.reg_weight(reference_feat.shape[1])
        for _ in range(self.num_iter if num_iter is None else num_iter):
            scores = local_correlation(filters, reference_feat)
            act_deriv = v_plus * leaky_relu_par_deriv(scores, m)
            residuals = v_plus * leaky_relu_par(scores, m) - v_plus * y
            grad = reg_weight * filters + local_correlation_transpose(act_deriv * residuals, reference_feat)
            den = act_deriv * local_correlation(grad, reference_feat)
            alpha_num = (grad * grad).sum(dim=1, keepdim=True)
            alpha = alpha_num / ((den * den).sum(dim=1, keepdim=True) + reg_weight * alpha_num).clamp(1e-8)
            filters = filters - step_length * alpha * grad
        return filters


class LocalGOCor(nn.Module):
    """Reference (B, C, H, W) x query (B, C, H, W) -> local correlation (B, 81, H, W) of the optimised filters."""

    def __init__(self, cfg: LocalGOCorConfig | None = None):
        super().__init__()
        self.filter_initializer = LocalSimpleInitializer()
        self.filter_optimizer = LocalGOCorOptimizer(cfg or LocalGOCorConfig())

    def forward(self, reference_feat: Tensor, query_feat: Tensor) -> Tensor:
        filters = self.filter_optimizer(self.filter_initializer(reference_feat), reference_feat)
        return local_correlation(filters, query_feat)
