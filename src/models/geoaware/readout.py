"""GeoAware-SC correspondence read-out on the 60x60 patch grid: nearest neighbour, window soft-argmax
(SFNet softmax with temperature, the reference's 0/1 window mask), mutual-NN and instance-mask distances
for the adaptive flip test.  Rows of a similarity are source patches, columns target patches."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

BETA = 0.02  # soft-argmax temperature (SFNet), training and evaluation


def patch_index(kpts: Tensor, image_size: int, grid: int) -> Tensor:
    """Flat patch index (y * grid + x) of keypoints (N, 2) in the letterboxed frame: floor(grid / size * p)
    in float32, as the reference's numpy cast."""
    patch = (kpts.float() * (grid / image_size)).to(torch.int64).clamp(0, grid - 1)
    return patch[:, 1] * grid + patch[:, 0]


def nearest_patch(sim_rows: Tensor, grid: int) -> Tensor:
    """(Q, 2) patch coordinates (x, y) of each row's maximum."""
    index = sim_rows.argmax(dim=-1)
    return torch.stack([index % grid, index // grid], dim=-1).float()


def window_mask(sim_rows: Tensor, window: int, grid: int) -> Tensor:
    """0/1 mask of the (2w+1)^2 target patches around each row's maximum (clamped at the border)."""
    index = sim_rows.argmax(dim=-1)
    cx, cy = index % grid, index // grid
    coords = torch.arange(grid, device=sim_rows.device)
    inside_x = (coords[None] - cx[:, None]).abs() <= window
    inside_y = (coords[None] - cy[:, None]).abs() <= window
    # clamping the window at the border only repeats border cells: the mask is the intersected box
    return (inside_y[:, :, None] & inside_x[:, None, :]).reshape(len(index), grid * grid).to(sim_rows.dtype)


def gaussian_kernel(sim_rows: Tensor, sigma: float, grid: int) -> Tensor:
    """exp(-d^2 / 2 sigma^2) around each row's maximum (the reference's negative-window variant)."""
    index = sim_rows.argmax(dim=-1)
    coords = torch.arange(grid, device=sim_rows.device, dtype=sim_rows.dtype)
    dx = coords[None] - (index % grid)[:, None].to(sim_rows.dtype)
    dy = coords[None] - (index // grid)[:, None].to(sim_rows.dtype)
    kernel = torch.exp(-(dy[:, :, None] ** 2 + dx[:, None, :] ** 2) / (2 * sigma**2))
    return kernel.reshape(len(index), grid * grid)


def soft_argmax_patch(sim_rows: Tensor, window: int, grid: int, beta: float = BETA) -> Tensor:
    """(Q, 2) expected target patch (x, y) of rows (Q, grid^2): window > 0 multiplies the row by the 0/1
    window mask (outside values become 0, not -inf), window < 0 by a Gaussian of sigma = -window, 0 keeps the
    full row; then softmax(row / beta) and the expectation of linspace(-1, 1, grid) unnormalised to [0, grid-1]."""
    if window > 0:
        sim_rows = sim_rows * window_mask(sim_rows, window, grid)
    elif window < 0:
        sim_rows = sim_rows * gaussian_kernel(sim_rows, -window, grid)
    prob = F.softmax((sim_rows - sim_rows.max(dim=-1, keepdim=True).values) / beta, dim=-1).view(-1, grid, grid)
    normal = torch.linspace(-1, 1, grid, device=sim_rows.device, dtype=sim_rows.dtype)
    x = (prob.sum(dim=1) * normal).sum(dim=-1)
    y = (prob.sum(dim=2) * normal).sum(dim=-1)
    return ((torch.stack([x, y], dim=-1) + 1) * (grid - 1) / 2).clamp(0, grid - 1)


def patch_to_pixel(patch_xy: Tensor, image_size: int, grid: int) -> Tensor:
    """Patch coordinates -> letterboxed pixels: p * stride + stride // 2 (stride = size / grid)."""
    stride = image_size / grid
    return patch_xy * stride + stride // 2


def mutual_nn_distance(desc0: Tensor, desc1: Tensor) -> Tensor:
    """Mean L2 distance to the nearest target descriptor over the source patches that are mutual nearest
    neighbours (descriptors (N, C), L2-normalised)."""
    dist = torch.cdist(desc0[None], desc1[None])[0]
    best, forward = dist.min(dim=1)
    backward = dist.argmin(dim=0)
    mutual = backward[forward] == torch.arange(len(forward), device=forward.device)
    return best[mutual].mean()


def masked_distance(
    desc0: Tensor, desc1: Tensor, mask0: Tensor, mask1: Tensor, grid: int, resolution: int = 64
) -> Tensor:
    """Instance-mask distance of the flip test: descriptor maps bilinearly upsampled to resolution^2, masked
    (masked-out and exactly-zero entries set to -1e5, as the reference), mean over source-mask cells of the L2
    distance to the nearest target cell.  Masks (H, W) in {0, 1} of the letterboxed images."""

    def prepare(desc: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        m = F.interpolate(mask[None, None].float(), size=(resolution, resolution), mode="nearest")[0, 0]
        maps = desc.T.reshape(1, -1, grid, grid)
        up = F.interpolate(maps, size=(resolution, resolution), mode="bilinear")[0] * m
        up = up.masked_fill(up == 0, -100000.0)
        return up.reshape(up.shape[0], -1).T, m.reshape(-1)

    src, m0 = prepare(desc0, mask0)
    trg, _ = prepare(desc1, mask1)
    src = src[m0 == 1]
    return torch.cdist(src[None], trg[None])[0].min(dim=1).values.mean()
