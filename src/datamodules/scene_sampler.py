"""Per-epoch resampling of at most k pairs per scene, reproducible from (seed, epoch), resumable mid-epoch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from corrlab.datamodules.sampling import EpochSampler


class ScenePairSampler(EpochSampler):
    """Each epoch draws min(k, n_s) pairs of every scene s without replacement (all pairs when k is None),
    then shuffles the union; the draw depends only on (seed, epoch).  As an EpochSampler it is sharded
    across DDP ranks and served by ResumableDataLoader, so a run resumes mid-epoch at the exact batch."""

    def __init__(
        self,
        dataset: Dataset,
        pair_scenes: Sequence[str] | np.ndarray,
        pairs_per_scene: int | None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        super().__init__(dataset, shuffle=True, seed=seed, num_replicas=num_replicas, rank=rank)
        scenes = np.asarray(pair_scenes)
        if len(scenes) != len(dataset):
            raise ValueError(f"{len(scenes)} pair scenes for a dataset of {len(dataset)} pairs")
        _, inverse = np.unique(scenes, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse) if len(scenes) else np.zeros(0, np.int64)
        self.groups = np.split(order, np.cumsum(counts)[:-1]) if len(scenes) else []
        self.pairs_per_scene = pairs_per_scene

    def epoch_size(self) -> int:
        k = self.pairs_per_scene
        return sum(len(g) if k is None else min(k, len(g)) for g in self.groups)

    def draw(self, epoch: int) -> np.ndarray:
        """The pair indices of an epoch over all ranks, in the order they are served."""
        rng = np.random.default_rng([self.seed, epoch])
        k = self.pairs_per_scene
        chosen = [g if k is None or len(g) <= k else rng.choice(g, size=k, replace=False) for g in self.groups]
        selection = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
        return rng.permutation(selection)

    def epoch_order(self) -> torch.Tensor:
        return torch.from_numpy(self.draw(self.epoch).astype(np.int64))
