"""Dataset of image pairs: samples follow the corrlab batch contract and every pair has a stable name."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path, PurePath

from torch.utils.data import Dataset


def image_id(path: str | PurePath, root: str | Path | None = None, variant: str = "") -> str:
    """A stable identity of one image as a batch shows it: its path relative to the dataset root (POSIX
    separators), with `#variant` when the pixels are not the file's own (e.g. `#mirrored`).  Methods key
    per-image caches by it; two samples with the same id show the same pixels (under one resize config)."""
    path = PurePath(path)
    if root is not None:
        path = path.relative_to(root)
    return path.as_posix() + (f"#{variant}" if variant else "")


class PairDataset(Dataset):
    """Subclasses implement __len__, __getitem__ and pair_names (in index order).

    Every sample carries `image0_id` / `image1_id` (see `image_id`) beside the pair `name`.

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
