"""PUMP's post-processing: keep correspondences in large connected components of a local-consistency
graph, and densify them into a pixel-dense field (the reference's post_filter.py)."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import LinearNDInterpolator
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from corrlab.geometry.scale_rotation_code import decode_scale_rot


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True).clip(min=1e-16)


def consistent_pairs(
    near: np.ndarray, far: np.ndarray, far_scale: np.ndarray, rotation_deg: np.ndarray, max_dist: float
) -> np.ndarray:
    """(E, 2) pairs closer than max_dist in `near` and, once scaled by their mean `far_scale`, in
    `far`, whose displacement directions agree within 90 degrees after undoing their mean rotation."""
    pairs = cKDTree(near).query_pairs(max_dist, output_type="ndarray")
    if len(pairs) == 0:
        return pairs.reshape(0, 2)
    i, j = pairs[:, 0], pairs[:, 1]
    near_vec, far_vec = near[j] - near[i], far[j] - far[i]
    far_dist = np.linalg.norm(far_vec, axis=1) * (far_scale[i] + far_scale[j]) / 2
    angle = np.deg2rad((rotation_deg[i] + rotation_deg[j]) / 2)
    cos, sin = np.cos(angle), np.sin(angle)
    a = unit(near_vec)
    turned = np.stack([a[:, 0] * cos + a[:, 1] * sin, -a[:, 0] * sin + a[:, 1] * cos], 1)
    agree = np.einsum("ij,ij->i", turned, unit(far_vec)) >= np.cos(np.pi / 2)
    return pairs[(far_dist <= max_dist) & agree]


def component_sizes(corres: np.ndarray, locality: float = 2.0) -> np.ndarray:
    """Size of the connected component of every correspondence (N, >=6 columns) in the graph linking
    correspondences within locality * 4 px of each other in both images (scale-compensated)."""
    if len(corres) == 0:
        return np.zeros(0, dtype=np.int64)
    scale, rotation = decode_scale_rot(corres[:, 5].astype(np.int64))
    max_dist = locality * 4
    edges = np.concatenate(
        [
            consistent_pairs(corres[:, 0:2], corres[:, 2:4], 1 / scale, rotation, max_dist),
            consistent_pairs(corres[:, 2:4], corres[:, 0:2], scale, -rotation, max_dist),
        ]
    )
    n = len(corres)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.bincount(labels)[labels]


def filter_corres(corres: np.ndarray, locality: float = 2.0, min_cc_size: int = 50) -> np.ndarray:
    """Keep correspondences whose component has more than `min_cc_size` members; their score gains
    log2(component size).  `corres` (N, 6) in the pixels they were matched in."""
    sizes = component_sizes(corres, locality)
    out = corres.copy()
    out[:, 4] += np.log2(np.maximum(sizes, 1))
    return out[sizes > min_cc_size]


def densify(
    points0: np.ndarray, points1: np.ndarray, height: int, width: int, full: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Dense field on the (height, width) pixel grid of image 0 from sparse matches points0 -> points1:
    linear interpolation inside their convex hull, outside it the mean displacement of the 3 nearest
    matches (`full`) or NaN.  Returns (height, width, 2) positions in image 1 and a validity mask."""
    if len(points0) < 4:
        raise ValueError(f"densify needs at least 4 correspondences, got {len(points0)}")
    ys, xs = np.mgrid[0:height, 0:width]
    grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    dense = LinearNDInterpolator(points0, points1)(grid)
    inside = ~np.isnan(dense).any(1)
    if full and not inside.all():
        _, nearest = cKDTree(points0).query(grid[~inside], 3)
        dense[~inside] = grid[~inside] + (points1 - points0)[nearest].mean(1)
    return dense.reshape(height, width, 2), inside.reshape(height, width)
