"""Dataset of image pairs: samples follow the corrlab batch contract and every pair has a stable name."""

from __future__ import annotations

from abc import abstractmethod

from torch.utils.data import Dataset


class PairDataset(Dataset):
    """Subclasses implement __len__, __getitem__ and pair_names (in index order)."""

    @abstractmethod
    def pair_names(self) -> list[str]:
        """The name of every pair, in index order."""
