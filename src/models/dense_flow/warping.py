"""Flow conventions shared by GLU-Net and PWC-Net: a flow is defined on the target grid and points into the source
(target pixel p matches source pixel p + flow(p)), in pixels of the grid it lives on."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def pixel_grid(b: int, h: int, w: int, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """(B, 2, H, W) pixel coordinates (x, y)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack((xs, ys)).to(dtype)[None].expand(b, 2, h, w)


def warp(x: Tensor, flow: Tensor, with_mask: bool = False) -> Tensor:
    """Sample x (the source) at p + flow(p), bilinear, align_corners=True, zeros outside; `with_mask` also zeroes the
    samples that touch the border (PWC-Net's warp)."""
    b, _, h, w = x.shape
    coords = pixel_grid(b, h, w, x.device, flow.dtype) + flow
    gx = 2.0 * coords[:, 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * coords[:, 1] / max(h - 1, 1) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    out = F.grid_sample(x, grid, align_corners=True)
    if not with_mask:
        return out
    mask = F.grid_sample(torch.ones_like(x), grid, align_corners=True)
    return out * (mask >= 0.9999).to(x.dtype)


def normalised_mapping_to_flow(mapping: Tensor) -> Tensor:
    """A mapping in [-1, 1] (align_corners=True convention) -> flow in pixels of its grid."""
    b, _, h, w = mapping.shape
    absolute = torch.stack(((mapping[:, 0] + 1) * (w - 1) / 2.0, (mapping[:, 1] + 1) * (h - 1) / 2.0), dim=1)
    return absolute - pixel_grid(b, h, w, mapping.device, mapping.dtype)


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of a flow field to `size` with its vectors rescaled to the new grid."""
    h, w = flow.shape[-2:]
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    return out * torch.tensor([size[1] / w, size[0] / h], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
