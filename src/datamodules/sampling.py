"""Epoch-seeded, rank-sharded sampling and a DataLoader that resumes mid-epoch at the exact batch.

Exact resume needs three things, all here or in the datasets: the order of an epoch is a function of
(seed, epoch) (EpochSampler), the position within the epoch is saved in checkpoints (ResumableDataLoader,
whose state_dict/load_state_dict Lightning calls), and a sample's randomness is a function of
(seed, epoch, index) (PairDataset.set_epoch, forwarded by the sampler).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def distributed_position() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(DistributedSampler):
    """One rank's indices for an epoch.

    Shuffled: the epoch's order (`epoch_order`, by default a permutation drawn from (seed, epoch); subclasses
    may draw a subset, e.g. ScenePairSampler) trimmed to a multiple of the world size so every rank gets the
    same number of samples (and DDP the same number of steps).  Not shuffled: the dataset in order, split
    across ranks without padding, so evaluation scores every sample exactly once (DistributedSampler would
    repeat some to even the shares).  `start` skips the first indices of the next iteration (set by
    ResumableDataLoader).  `set_epoch` (called by Lightning before each epoch) is forwarded to the dataset
    when it has one.  Being a DistributedSampler, Lightning keeps it instead of injecting its own.
    """

    def __init__(self, dataset: Dataset, shuffle: bool, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=shuffle)
        self.start = 0

    def epoch_size(self) -> int:
        """Samples in one epoch, over all ranks (before trimming to the world size)."""
        return len(self.dataset)

    def epoch_order(self) -> torch.Tensor:
        """Every rank's indices of the current epoch, in order (a function of (seed, epoch) only)."""
        return torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.seed + self.epoch))

    def indices(self) -> list[int]:
        """This rank's indices for the current epoch, from the beginning."""
        if self.shuffle:
            order = self.epoch_order()
            order = order[: len(order) - len(order) % self.num_replicas]
        else:
            order = torch.arange(len(self.dataset))
        return order[self.rank :: self.num_replicas].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        if self.shuffle:
            return self.epoch_size() // self.num_replicas
        return len(range(self.rank, len(self.dataset), self.num_replicas))

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A 63-bit seed for (seed, epoch, rank) (loader worker seeds derive from it)."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class ResumableDataLoader(DataLoader):
    """Training DataLoader that Lightning can checkpoint mid-epoch.

    `state_dict()` is (epoch, batches handed out this epoch); after `load_state_dict`, the next
    iteration of that same epoch skips those batches at the sampler (no data is loaded for them).  The
    iterator is created lazily at the first batch, i.e. after Lightning's `set_epoch`, and the worker
    seeds are re-derived from (seed, epoch, rank) every epoch, so a resumed run sees the same data.
    """

    def __init__(self, dataset: Dataset, sampler: Any, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("generator", torch.Generator())
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.seed = seed
        self.batches_yielded = 0
        self._resume: dict[str, int] | None = None

    def __iter__(self) -> Iterator[Any]:
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        sampler = self.sampler
        if not isinstance(sampler, EpochSampler):  # e.g. Lightning's overfit_batches swapped it out
            yield from super().__iter__()
            return
        resume, self._resume = self._resume, None
        skip = resume["batches"] if resume is not None and resume["epoch"] == sampler.epoch else 0
        self.generator.manual_seed(epoch_seed(self.seed, sampler.epoch, sampler.rank))
        sampler.start = skip * self.batch_size
        self.batches_yielded = skip
        try:
            for batch in super().__iter__():
                self.batches_yielded += 1
                yield batch
        finally:
            sampler.start = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(getattr(self.sampler, "epoch", 0)), "batches": self.batches_yielded}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._resume = {"epoch": int(state_dict["epoch"]), "batches": int(state_dict["batches"])}
