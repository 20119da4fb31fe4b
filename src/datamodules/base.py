"""Datamodule base: split datasets built on demand, seeded loaders with the pair collate, a benchmark per split."""

from __future__ import annotations

import random
from abc import abstractmethod

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from corrlab.benchmarks.base import Benchmark
from corrlab.datamodules.collate import collate_pairs
from corrlab.datamodules.sampling import EpochSampler, ResumableDataLoader, distributed_position

SPLITS = ("train", "val", "test")


def seed_worker(worker_id: int) -> None:
    """Give numpy and random in each loader worker the seed torch derived for it."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class PairDataModule(L.LightningDataModule):
    """Subclasses implement `make_dataset(split)` and `make_benchmark(split)`.

    Training batches use `batch_size`; validation and test use `eval_batch_size` (1 by default,
    since evaluation images keep their own sizes).
    """

    name = "pairs"
    main_metric = "mma@3"  # the validation metric checkpoints follow (higher is better)
    scoring_options: tuple[str, ...] = ()  # options that change only the scoring, not what a method sees or predicts

    def __init__(
        self,
        batch_size: int = 8,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self._datasets: dict[str, Dataset] = {}

    @abstractmethod
    def make_dataset(self, split: str) -> Dataset:
        """The dataset of a split ("train", "val" or "test")."""

    @abstractmethod
    def make_benchmark(self, split: str) -> Benchmark:
        """The evaluation protocol of a split."""

    def dataset(self, split: str) -> Dataset:
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}', expected one of {SPLITS}")
        if split not in self._datasets:
            dataset = self.make_dataset(split)
            if len(dataset) == 0:
                raise ValueError(f"{self.name}: the '{split}' split is empty; check the dataset root and split options")
            self._datasets[split] = dataset
        return self._datasets[split]

    def pair_names(self, split: str) -> list[str]:
        """Names of the pairs of a split (for protocol fingerprints)."""
        return list(self.dataset(split).pair_names())

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        """Training (shuffle): epoch-seeded order, resumable mid-epoch, workers re-created each epoch so
        they see the dataset's epoch.  Evaluation: in order, every pair once across DDP ranks."""
        dataset = self.dataset(split)
        rank, world_size = distributed_position()
        sampler = EpochSampler(dataset, shuffle=shuffle, seed=self.seed, num_replicas=world_size, rank=rank)
        options = dict(
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate_pairs,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(self.seed),
            drop_last=shuffle,
        )
        if shuffle:
            return ResumableDataLoader(dataset, seed=self.seed, **options)
        return DataLoader(dataset, persistent_workers=self.num_workers > 0, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)
