"""Left/right bookkeeping of the flip test and the flip augmentation: id permutations of a mirror image,
applied to whole groups only when their members are visible (the reference's permute_indices with vis)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from corrlab.datamodules.keypoint_groups import AP10K_FLIP_PAIRS, SPAIR_FLIP_PAIRS, Group
from corrlab.models.geoaware.letterbox import mirror_x

FLIP_TABLES: dict[str, Mapping[str, Sequence[Group]] | Sequence[Group]] = {
    "spair": SPAIR_FLIP_PAIRS,
    "ap10k": AP10K_FLIP_PAIRS,
}


def flip_table(dataset: str, category: str) -> Sequence[Group]:
    """The left/right groups of a category (AP-10K: one table for every species)."""
    if dataset not in FLIP_TABLES:
        raise ValueError(f"model.flip_table must be one of {sorted(FLIP_TABLES)}, got '{dataset}'")
    table = FLIP_TABLES[dataset]
    if isinstance(table, Mapping):
        if category not in table:
            raise KeyError(f"no left/right table for category '{category}' in model.flip_table={dataset}")
        return table[category]
    return table


def permutation(groups: Sequence[Group], num_slots: int, visible: np.ndarray | None = None) -> np.ndarray:
    """After a mirror, slot i shows part perm[i]; a group is cycled (a pair swapped) only if every member is
    `visible` (None: always)."""
    perm = np.arange(num_slots)
    for group in groups:
        if max(group) >= num_slots:
            continue
        if visible is None or all(visible[i] for i in group):
            for k, i in enumerate(group):
                perm[i] = group[(k + 1) % len(group)]
    return perm


def flip_queries(kpts: Tensor, size: int, perm: np.ndarray) -> Tensor:
    """Mirrored letterboxed keypoints (S, 2) re-indexed: row i is the mirror of keypoint perm[i]."""
    return mirror_x(kpts, size)[torch.as_tensor(perm, device=kpts.device)]
