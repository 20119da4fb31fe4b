"""Moving points and homographies between an original image and its resized copy.

Convention (everywhere in corrlab): pixel centres sit at integer coordinates, so pixel (0, 0) covers
[-0.5, 0.5]^2 and an image of width W spans [-0.5, W - 0.5].  A resize by s = resized / original maps
x to (x + 0.5) * s - 0.5.  `scale` tensors are (..., 2) as (sx, sy).  A centred letterbox adds `offset` (ox, oy),
the canvas position of the resized image's top-left corner: x -> (x + 0.5) * s - 0.5 + o.
"""

from __future__ import annotations

import torch
from torch import Tensor


def resize_matrix(scale: Tensor) -> Tensor:
    """3x3 (or ...x3x3) matrix taking original pixels to resized pixels."""
    scale = torch.as_tensor(scale, dtype=torch.float64 if not torch.is_tensor(scale) else scale.dtype)
    sx, sy = scale[..., 0], scale[..., 1]
    m = torch.zeros(*scale.shape[:-1], 3, 3, dtype=scale.dtype, device=scale.device)
    m[..., 0, 0] = sx
    m[..., 1, 1] = sy
    m[..., 0, 2] = (sx - 1) / 2
    m[..., 1, 2] = (sy - 1) / 2
    m[..., 2, 2] = 1
    return m


def to_original(points: Tensor, scale: Tensor, offset: Tensor | None = None) -> Tensor:
    """Points (..., N, 2) in resized pixels (of a canvas where the image starts at `offset`) -> original pixels."""
    if offset is not None:
        points = points - offset.to(points).unsqueeze(-2)
    return (points + 0.5) / scale.to(points).unsqueeze(-2) - 0.5


def to_resized(points: Tensor, scale: Tensor, offset: Tensor | None = None) -> Tensor:
    """Points (..., N, 2) in original pixels -> resized pixels (shifted by `offset` on a letterbox canvas)."""
    resized = (points + 0.5) * scale.to(points).unsqueeze(-2) - 0.5
    return resized if offset is None else resized + offset.to(resized).unsqueeze(-2)


def homography_to_resized(H: Tensor, scale0: Tensor, scale1: Tensor) -> Tensor:
    """A homography between originals, re-expressed between the resized images."""
    S0, S1 = resize_matrix(scale0).to(H), resize_matrix(scale1).to(H)
    return S1 @ H @ torch.linalg.inv(S0)


def homography_to_original(H: Tensor, scale0: Tensor, scale1: Tensor) -> Tensor:
    """A homography between resized images, re-expressed between the originals."""
    S0, S1 = resize_matrix(scale0).to(H), resize_matrix(scale1).to(H)
    return torch.linalg.inv(S1) @ H @ S0


def intrinsics_to_resized(K: Tensor, scale: Tensor) -> Tensor:
    """Camera matrix of the resized image (pixel-centre convention)."""
    return resize_matrix(scale).to(K) @ K


def intrinsics_corner_to_centre(K: Tensor) -> Tensor:
    """Camera matrix from the pixel-corner convention (COLMAP: the top-left corner is (0, 0), so pixel
    centres sit at +0.5) to corrlab's pixel-centre convention: the principal point moves by -0.5."""
    out = K.clone()
    out[..., 0, 2] -= 0.5
    out[..., 1, 2] -= 0.5
    return out
