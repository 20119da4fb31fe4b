"""Collate that stacks same-shape tensors and keeps strings, None and ragged tensors as lists."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch


def collate_pairs(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch a list of sample dicts of the corrlab batch contract."""
    keys = samples[0].keys()
    for i, sample in enumerate(samples[1:], 1):
        if sample.keys() != keys:
            raise KeyError(f"sample {i} has keys {sorted(sample.keys())}, sample 0 has {sorted(keys)}")
    batch: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in samples]
        first = values[0]
        if isinstance(first, np.ndarray):
            values = [torch.from_numpy(v) for v in values]
            first = values[0]
        if isinstance(first, torch.Tensor) and all(v.shape == first.shape for v in values):
            batch[key] = torch.stack(values)
        elif (
            isinstance(first, numbers.Number)
            and not isinstance(first, bool)
            and all(isinstance(v, numbers.Number) for v in values)
        ):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch
