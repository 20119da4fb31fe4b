"""Datamodule base: split datasets built on demand, seeded loaders with the pair collate, a benchmark per split."""

from __future__ import annotations

import random
from abc import abstractmethod

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from corrlab.benchmarks.base import Benchmark, BenchmarkData
from corrlab.benchmarks.select import BenchmarkFactory, benchmark_factory, build_benchmark
from corrlab.datamodules.collate import collate_pairs
from corrlab.datamodules.sampling import EpochSampler, ResumableDataLoader, distributed_position
from corrlab.training.stop_signals import ignore_stop_signals

SPLITS = ("train", "val", "test")


def seed_worker(worker_id: int) -> None:
    """Give numpy and random in each loader worker the seed torch derived for it; leave SIGINT / SIGTERM to
    the main process (which saves a checkpoint and stops)."""
    ignore_stop_signals()
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class PairDataModule(L.LightningDataModule):
    """Subclasses implement `make_dataset(split)` and `benchmark_data(split)` (what the pairs of a split carry).

    Training batches use `batch_size`; validation and test use `eval_batch_size` (1 by default,
    since evaluation images keep their own sizes).  `benchmark`: the protocol that scores val / test, a
    factory from conf/benchmark (`benchmark: ${benchmark}` in the data configs); None takes
    conf/benchmark/<default_benchmark>.yaml.
    """

    name = "pairs"
    default_benchmark: str | None = None  # the conf/benchmark option used when none is chosen

    def __init__(
        self,
        batch_size: int = 8,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        benchmark: BenchmarkFactory | None = None,
    ) -> None:
        super().__init__()
        self.benchmark = benchmark
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
    def benchmark_data(self, split: str) -> BenchmarkData:
        """What a benchmark needs to know about the pairs of a split (names, ground truth, groups, facts)."""

    def make_benchmark(self, split: str) -> Benchmark:
        """The evaluation protocol of a split: the chosen benchmark, else the datamodule's default."""
        if self.benchmark is None and self.default_benchmark is None:
            raise ValueError(f"{type(self).__name__} has no default benchmark: choose one with benchmark=<name>")
        factory = self.benchmark if self.benchmark is not None else benchmark_factory(self.default_benchmark)
        return build_benchmark(factory, self.benchmark_data(split))

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

    def train_sampler(self, dataset: Dataset, rank: int, world_size: int) -> EpochSampler:
        """The order of the training pairs of each epoch (override to draw a subset per epoch, as MegaDepth does)."""
        return EpochSampler(dataset, shuffle=True, seed=self.seed, num_replicas=world_size, rank=rank)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        """Training (shuffle): `train_sampler`'s epoch-seeded order, resumable mid-epoch, workers re-created
        each epoch so they see the dataset's epoch.  Evaluation: in order, every pair once across DDP ranks.
        Every datamodule's training loader is this one (tests/test_resume.py)."""
        dataset = self.dataset(split)
        rank, world_size = distributed_position()
        if shuffle:
            sampler = self.train_sampler(dataset, rank, world_size)
        else:
            sampler = EpochSampler(dataset, shuffle=False, seed=self.seed, num_replicas=world_size, rank=rank)
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
