"""Per-epoch resampling of at most k pairs per scene, reproducible from (seed, epoch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class ScenePairSampler(Sampler[int]):
    """Each epoch draws min(k, n_s) pairs of every scene s without replacement (all pairs when k is
    None), then shuffles the union.  The draw depends only on (seed, epoch): Lightning calls
    `set_epoch` before each epoch, and every iteration moves on to the next epoch, so behind a
    distributed wrapper (which does not forward set_epoch) every rank still draws the same pairs.
    """

    def __init__(self, pair_scenes: Sequence[str] | np.ndarray, pairs_per_scene: int | None, seed: int = 0) -> None:
        scenes = np.asarray(pair_scenes)
        _, inverse = np.unique(scenes, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse) if len(scenes) else np.zeros(0, np.int64)
        self.groups = np.split(order, np.cumsum(counts)[:-1]) if len(scenes) else []
        self.pairs_per_scene = pairs_per_scene
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        k = self.pairs_per_scene
        return sum(len(g) if k is None else min(k, len(g)) for g in self.groups)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self, epoch: int) -> np.ndarray:
        """The pair indices of an epoch, in the order they are served."""
        rng = np.random.default_rng([self.seed, epoch])
        k = self.pairs_per_scene
        chosen = [g if k is None or len(g) <= k else rng.choice(g, size=k, replace=False) for g in self.groups]
        selection = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
        return rng.permutation(selection)

    def __iter__(self) -> Iterator[int]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        return iter(self.indices(epoch).tolist())
