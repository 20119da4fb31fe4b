"""Epoch-seeded sharded sampling and the resumable training loader, without Lightning."""

from __future__ import annotations

import pytest
from torch.utils.data import Dataset

from corrlab.datamodules.sampling import EpochSampler, ResumableDataLoader


class Indices(Dataset):
    """Item i is i; remembers the epoch the sampler announced."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.epoch = -1

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def test_evaluation_shards_cover_every_item_once_without_padding():
    shards = [list(EpochSampler(Indices(7), shuffle=False, num_replicas=3, rank=r)) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert [len(EpochSampler(Indices(7), shuffle=False, num_replicas=3, rank=r)) for r in range(3)] == [3, 2, 2]


def test_training_shards_are_equal_disjoint_and_depend_on_seed_and_epoch():
    def shards(seed: int, epoch: int) -> list[list[int]]:
        out = []
        for rank in range(2):
            sampler = EpochSampler(Indices(9), shuffle=True, seed=seed, num_replicas=2, rank=rank)
            sampler.set_epoch(epoch)
            out.append(list(sampler))
        return out

    a, b = shards(0, 0)
    assert len(a) == len(b) == 4 and not set(a) & set(b)
    assert shards(0, 0) == [a, b]  # a function of (seed, epoch) only
    assert shards(0, 1) != [a, b] and shards(1, 0) != [a, b]


def test_set_epoch_reaches_the_dataset():
    dataset = Indices(4)
    EpochSampler(dataset, shuffle=True).set_epoch(5)
    assert dataset.epoch == 5


def loader(dataset: Dataset) -> ResumableDataLoader:
    return ResumableDataLoader(
        dataset, sampler=EpochSampler(dataset, shuffle=True, seed=3), batch_size=2, drop_last=True
    )


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_resumes_at_the_saved_batch_of_the_same_epoch(num_workers):
    dataset = Indices(10)
    first = loader(dataset)
    first.sampler.set_epoch(1)
    full = [b.tolist() for b in first]
    iterator = iter(first)
    consumed = [next(iterator).tolist() for _ in range(3)]
    state = first.state_dict()
    assert state == {"epoch": 1, "batches": 3} and consumed == full[:3]

    second = ResumableDataLoader(
        dataset,
        sampler=EpochSampler(dataset, shuffle=True, seed=3),
        batch_size=2,
        drop_last=True,
        num_workers=num_workers,
    )
    second.load_state_dict(state)
    second.sampler.set_epoch(1)
    assert [b.tolist() for b in second] == full[3:]
    assert len(second) == len(first) == 5  # the epoch length Lightning sees is unchanged
    assert [b.tolist() for b in second] == full  # the skip applies once


def test_saved_position_of_an_earlier_epoch_is_ignored():
    dataset = Indices(10)
    resumed = loader(dataset)
    resumed.load_state_dict({"epoch": 0, "batches": 5})  # saved at the end of epoch 0
    resumed.sampler.set_epoch(1)
    fresh = loader(Indices(10))
    fresh.sampler.set_epoch(1)
    assert [b.tolist() for b in resumed] == [b.tolist() for b in fresh]
