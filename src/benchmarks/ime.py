"""IME's HPatches evaluation quirks (ufukefe/IME utils/Datasets/HPatches/eval_hpatches.py, used by DFM and GCM),
reproduced on request so numbers compare with the published GCM / DFM tables."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

DESCRIPTION = {
    "corners": "homography corners written [[0,0],[0,w-1],[h-1,0],[h-1,w-1]] as (x, y): x and y swapped "
    "(h, w of image 0; the typo image-matching-toolbox PR #22 fixed)",
    "subsets": "aggregates slice rows [start : start of the next subset) and the last boundary is the index of the last "
    "row, so the last pair of the list is left out of 'all' and of its subset (n - 1 of n pairs)",
    "mma_rounding": "per-pair MMA rounded to 3 decimals (np.around) before averaging",
}
MMA_DECIMALS = 3


def swapped_corners(height: int, width: int) -> Tensor:
    """IME's corner points (x, y) = (0,0), (0,w-1), (h-1,0), (h-1,w-1)."""
    h, w = height - 1, width - 1
    return torch.tensor([[0, 0], [0, w], [h, 0], [h, w]], dtype=torch.float64)


def left_out_pair(pair_names: Sequence[str]) -> str | None:
    """The pair IME's off-by-one slicing drops from every aggregate: the last of the evaluated list."""
    return pair_names[-1] if pair_names else None
