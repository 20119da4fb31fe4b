"""Choosing overlapping crops of a real image pair from approximate correspondences (PUMP's
FastPairLoader): the correspondences only place the two windows, no loss ever sees them."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from corrlab.geometry.scale_rotation_code import decode_scale_rot, encode_scale_rot


def local_scale_rotation(
    corres: np.ndarray, rng: np.random.Generator, subset: int = 256, neighbours: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Per correspondence (N, >=4 columns): image-2 / image-1 scale and rotation (degrees) of the
    affine map fitted to its `neighbours` nearest correspondences among a random `subset`."""
    sub = corres[rng.choice(len(corres), size=min(len(corres), subset), replace=False)]
    k = min(neighbours, len(sub))
    _, nearest = cKDTree(sub[:, 0:2]).query(corres[:, 0:2], k)
    nearest = nearest.reshape(len(corres), k)
    p1 = np.concatenate([sub[nearest, 0:2], np.ones((len(corres), k, 1))], -1)  # (N, k, 3)
    p2 = sub[nearest, 2:4]
    affine = np.linalg.pinv(p1) @ p2  # (N, 3, 2): [x1, y1, 1] @ A = [x2, y2]
    linear = affine[:, :2, :].transpose(0, 2, 1)  # (N, 2, 2)
    scale = np.sqrt(np.abs(np.linalg.det(linear))).clip(0.2, 5)
    rotation = np.degrees(np.arctan2(linear[:, 1, 0] - linear[:, 0, 1], linear[:, 0, 0] + linear[:, 1, 1]))
    return scale, rotation


def scale_rotation(corres: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scale and rotation of every correspondence: from its code (N x 6) or fitted (N x 4)."""
    if corres.shape[1] >= 6:
        scale, rotation = decode_scale_rot(corres[:, 5].astype(np.int64))
        return np.asarray(scale, dtype=np.float64), np.asarray(rotation, dtype=np.float64)
    return local_scale_rotation(corres, rng)


def window(centre: float, size: float, length: int) -> slice:
    """A `size`-px interval around `centre` shifted inside [0, length) (the whole axis if larger)."""
    lo = int(centre) - int(0.5 + size / 2)
    hi = lo + int(0.5 + size)
    if lo < 0:
        lo, hi = 0, hi - lo
    if hi > length:
        lo, hi = lo + length - hi, length
    if lo < 0:
        lo, hi = 0, length
    return slice(lo, hi)


def windows_around(
    c: np.ndarray, scale: float, crop: int, shape1: tuple[int, int], shape2: tuple[int, int]
) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """(rows, cols) windows of both images around correspondence c, sized so that both show the
    same content at `crop` px (the side seen larger gets the larger window)."""
    size1, size2 = crop * max(1, 1 / scale), crop * max(1, scale)
    return (window(c[1], size1, shape1[0]), window(c[0], size1, shape1[1])), (
        window(c[3], size2, shape2[0]),
        window(c[2], size2, shape2[1]),
    )


def inside(points: np.ndarray, win: tuple[slice, slice]) -> np.ndarray:
    rows, cols = win
    return (
        (cols.start <= points[:, 0])
        & (points[:, 0] < cols.stop)
        & (rows.start <= points[:, 1])
        & (points[:, 1] < rows.stop)
    )


def overlap_score(in1: np.ndarray, in2: np.ndarray) -> float:
    """inter * min(IoU1, IoU2) of the correspondences inside both windows (the reference's score)."""
    both = float((in1 & in2).sum())
    return both * min(both / (in1.sum() + 1e-8), both / (in2.sum() + 1e-8))


def choose_windows(
    corres: np.ndarray,
    scale: np.ndarray,
    crop: int,
    shape1,
    shape2,
    rng: np.random.Generator,
    tries: int = 5,
    jitter: float = 1.0,
):
    """The best-overlapping pair of windows around `tries` random correspondences (None if none
    overlaps), its scale multiplied by `jitter`."""
    best, best_index = 0.0, None
    for i in rng.choice(len(corres), size=min(len(corres), tries), replace=False):
        win1, win2 = windows_around(corres[i], scale[i], crop, shape1, shape2)
        score = overlap_score(inside(corres[:, 0:2], win1), inside(corres[:, 2:4], win2))
        if score > best:
            best, best_index = score, i
    if best_index is None:
        return None
    return windows_around(corres[best_index], scale[best_index] * jitter, crop, shape1, shape2)


def swap_corres(corres: np.ndarray) -> np.ndarray:
    """Correspondences of the swapped pair (image 2 first); codes get the inverse scale / rotation."""
    out = corres.copy()
    out[:, 0:4] = corres[:, [2, 3, 0, 1]]
    if corres.shape[1] >= 6:
        scale, rotation = decode_scale_rot(corres[:, 5].astype(np.int64))
        out[:, 5] = encode_scale_rot(1 / np.asarray(scale), -np.asarray(rotation))
    return out


def flip_corres(corres: np.ndarray, width1: int, width2: int) -> np.ndarray:
    """Correspondences of the horizontally mirrored pair; codes get the opposite rotation."""
    out = corres.copy()
    out[:, 0] = width1 - 1 - corres[:, 0]
    out[:, 2] = width2 - 1 - corres[:, 2]
    if corres.shape[1] >= 6:
        scale, rotation = decode_scale_rot(corres[:, 5].astype(np.int64))
        out[:, 5] = encode_scale_rot(np.asarray(scale), -np.asarray(rotation))
    return out


def dominant_quarter_turns(rotation_deg: np.ndarray) -> int:
    """Number of 90-degree turns (-2..1) that best undoes the pair's dominant rotation (45-degree
    histogram of the correspondences' rotations, as the reference)."""
    bins = np.rint((-np.asarray(rotation_deg) % 360) / 45).astype(int) % 8
    return int((((np.bincount(bins, minlength=8).argmax() + 4) % 8) - 4) / 2)
