"""HPatches (hpatches-sequences-release layout): pairs (1, k) of each sequence with the official H_1_k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from src.benchmarks.homography import HomographyBenchmark
from src.datamodules.base import PairDataModule
from src.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from src.datamodules.image_io import read_image
from src.datamodules.pair_dataset import PairDataset
from src.datamodules.resize import ResizePolicy
from src.geometry.scaling import homography_to_resized

LARGE_SEQUENCES = (
    "i_contruction", "i_crownnight", "i_dc", "i_pencils", "i_whitebuilding", "v_artisans", "v_astronautis", "v_talent",
)  # fmt: skip
IMAGE_EXTENSIONS = (".ppm", ".png", ".jpg")
LAYOUT = """\
<root>/                      (hpatches-sequences-release)
  i_ajuntament/ 1.ppm ... 6.ppm  H_1_2 ... H_1_6     (illumination sequences, prefix i_)
  v_abstract/   1.ppm ... 6.ppm  H_1_2 ... H_1_6     (viewpoint sequences, prefix v_)
  ...
H_1_k: 3 lines of 3 numbers, mapping pixels of 1.ppm to pixels of k.ppm."""
HOW_TO_GET = """\
Download hpatches-sequences-release.tar.gz (about 1.3 GB) from
  http://icvl.ee.ic.ac.uk/vbalnt/hpatches/hpatches-sequences-release.tar.gz
  (mirror: https://huggingface.co/datasets/vbalnt/hpatches) and extract it: tar xzf hpatches-sequences-release.tar.gz"""


def read_homography(path: Path) -> torch.Tensor:
    """A 3x3 homography from a whitespace-separated text file; names the file when malformed."""
    try:
        H = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as error:
        raise UnreadableFileError(path, f"not a 3x3 homography ({error})") from error
    if H.shape != (3, 3):
        raise UnreadableFileError(path, f"expected 3x3 numbers, found shape {H.shape}")
    return torch.from_numpy(H)


def find_image(folder: Path, index: int) -> Path:
    for extension in IMAGE_EXTENSIONS:
        candidate = folder / f"{index}{extension}"
        if candidate.is_file():
            return candidate
    raise UnreadableFileError(folder / f"{index}.ppm", "no such image (tried .ppm, .png, .jpg)")


class HPatchesPairs(PairDataset):
    """Every (1, k) pair with an H_1_k file, in sorted sequence order."""

    def __init__(self, root: str | Path, subset: str, exclude_large: bool, resize: ResizePolicy) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetNotFoundError("HPatches", self.root, LAYOUT, HOW_TO_GET)
        sequences = sorted(p for p in self.root.iterdir() if p.is_dir() and p.name[:2] in ("i_", "v_"))
        if not sequences:
            raise DatasetNotFoundError("HPatches", self.root, LAYOUT, HOW_TO_GET, problem="has no i_*/v_* sequence folders")
        if exclude_large:
            sequences = [s for s in sequences if s.name not in LARGE_SEQUENCES]
        if subset != "all":
            sequences = [s for s in sequences if s.name.startswith(f"{subset}_")]
        self.pairs = [
            (sequence, k) for sequence in sequences for k in range(2, 7) if (sequence / f"H_1_{k}").is_file()
        ]
        self.resize = resize

    def __len__(self) -> int:
        return len(self.pairs)

    def pair_names(self) -> list[str]:
        return [f"{sequence.name}/1-{k}" for sequence, k in self.pairs]

    def __getitem__(self, index: int) -> dict:
        sequence, k = self.pairs[index]
        image0 = read_image(find_image(sequence, 1))
        image1 = read_image(find_image(sequence, k))
        H = read_homography(sequence / f"H_1_{k}")
        size0, size1 = torch.tensor(image0.shape[-2:]), torch.tensor(image1.shape[-2:])
        image0, scale0 = self.resize(image0)
        image1, scale1 = self.resize(image1)
        return {
            "image0": image0,
            "image1": image1,
            "H_0to1": homography_to_resized(H, scale0.double(), scale1.double()).float(),
            "name": f"{sequence.name}/1-{k}",
            "size0": size0,
            "size1": size1,
            "scale0": scale0,
            "scale1": scale1,
        }


class HPatchesDataModule(PairDataModule):
    """`data=hpatches`: an evaluation benchmark (val and test are the same pairs; no train split).

    subset: all | i | v.  exclude_large drops the 8 large sequences (108 sequences, 540 pairs remain).
    """

    name = "hpatches"

    def __init__(
        self,
        root: str,
        subset: str = "all",
        exclude_large: bool = True,
        resize: dict | None = None,
        ransac_threshold: float = 2.0,
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        if subset not in ("all", "i", "v"):
            raise ValueError(f"data.subset must be one of all, i, v; got '{subset}'")
        self.root = root
        self.subset = subset
        self.exclude_large = exclude_large
        self.resize = ResizePolicy(**(resize or {}))
        self.ransac_threshold = ransac_threshold

    def make_dataset(self, split: str) -> HPatchesPairs:
        if split == "train":
            raise ValueError("HPatches is an evaluation benchmark: it has no training split (train on data=synthetic or data=megadepth)")
        return HPatchesPairs(self.root, self.subset, self.exclude_large, self.resize)

    def make_benchmark(self, split: str) -> HomographyBenchmark:
        groups = ("all", "i", "v") if self.subset == "all" else ("all",)
        return HomographyBenchmark(
            name="hpatches",
            split=self.subset,
            pair_names=self.pair_names(split),
            resize=self.resize.describe(),
            groups=groups,
            group_of=_sequence_type if self.subset == "all" else None,
            ransac_threshold=self.ransac_threshold,
            extra_spec={"exclude_large": self.exclude_large, "excluded": list(LARGE_SEQUENCES) if self.exclude_large else []},
        )


def _sequence_type(name: str) -> str:
    """'i' or 'v' from a pair name 'i_xxx/1-k'."""
    return name[0]
