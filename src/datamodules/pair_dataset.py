"""Dataset of image pairs: samples follow the corrlab batch contract and every pair has a stable name."""

from __future__ import annotations

from abc import abstractmethod

from torch.utils.data import Dataset


class PairDataset(Dataset):
    """Subclasses implement __len__, __getitem__ and pair_names (in index order).

    Training-time randomness (augmentation, sampled views) should be a function of (seed, `epoch`,
    index), e.g. `np.random.default_rng([seed, self.epoch, index])`: then DDP ranks draw different
    samples and a run resumed mid-epoch sees exactly the same data.  The sampler calls `set_epoch`.
    """

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @abstractmethod
    def pair_names(self) -> list[str]:
        """The name of every pair, in index order."""
