"""Real image pairs with approximate correspondences (PUMP's SfM120k format), served as random
overlapping crops for the unsupervised DeepMatching loss (their H_0to1 is NaN: no ground truth)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.image_io import read_image_array, to_tensor
from corrlab.datamodules.overlap_crop import (
    choose_windows,
    dominant_quarter_turns,
    flip_corres,
    scale_rotation,
    swap_corres,
)
from corrlab.datamodules.pair_dataset import PairDataset

LAYOUT = """\
<root>/
  list_pairs.txt               one pair per line: "<image 1> <image 2>", paths relative to <root>/ims
  ims/...                      the images (any sub-folders)
  corres/<name1>_<name2>.npy   float array (N, 4) [x1, y1, x2, y2] or (N, 6) [..., score, scale_rot_code],
                               <nameK> = file name of image K; only used to pick overlapping crops"""
HOW_TO_GET = """\
PUMP's training pairs: SfM120k images (http://cmp.felk.cvut.cz/cnnimageretrieval/data/train/ims/ims.tar.gz,
extract into <root>/ims) and their correspondences (https://download.europe.naverlabs.com/corres.tar.gz,
extract in <root>); list_pairs.txt ships with the correspondences.  Any other image pairs work once their
approximate correspondences are written in this layout (e.g. from depth + poses, or from a matcher)."""


def read_pair_list(root: Path) -> list[tuple[str, str]]:
    """Pairs of list_pairs.txt; a missing file or a malformed line raises with the expected layout."""
    path = root / "list_pairs.txt"
    if not path.is_file():
        raise DatasetNotFoundError("aligned real pairs", root, LAYOUT, HOW_TO_GET)
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise UnreadableFileError(path, f"line {number} should hold two image paths, got {len(fields)} fields")
        pairs.append((fields[0], fields[1]))
    return pairs


class AlignedRealPairs(PairDataset):
    """`num_pairs` random crops per epoch from the pairs of `root` (see LAYOUT).

    For each draw: pick a pair, swap the images (p_swap) and mirror both (p_flip), choose the best
    of 5 windows around random correspondences (scale-adapted: the side seen larger gets the larger
    window; overlap scored by inter * min(IoU)), jitter the scale by up to (1 + scale_jitter), undo a
    dominant 90-degree rotation, resize both windows to crop x crop, add Gaussian pixel noise
    (`noise`, in [0, 1] units) to image 1.  Pairs whose correspondences never overlap give black crops.
    """

    def __init__(
        self,
        root: str | Path,
        num_pairs: int,
        crop: int = 256,
        p_swap: float = 0.5,
        p_flip: float = 0.5,
        scale_jitter: float = 0.5,
        noise: float = 25 / 255,
    ) -> None:
        self.root = Path(root)
        self.pairs = read_pair_list(self.root)
        if not self.pairs:
            raise DatasetNotFoundError(
                "aligned real pairs", self.root, LAYOUT, HOW_TO_GET, problem="has no pairs in list_pairs.txt"
            )
        self.num_pairs = num_pairs
        self.crop = crop
        self.p_swap = p_swap
        self.p_flip = p_flip
        self.log_jitter = abs(np.log1p(scale_jitter))
        self.noise = noise

    def __len__(self) -> int:
        return self.num_pairs

    def pair_names(self) -> list[str]:
        return [self._name(i) for i in range(self.num_pairs)]

    def _name(self, index: int) -> str:
        a, b = self.pairs[index % len(self.pairs)]
        return f"real/{Path(a).stem}_{Path(b).stem}/{index:05d}"

    def corres_path(self, a: str, b: str) -> Path:
        return self.root / "corres" / f"{Path(a).name}_{Path(b).name}.npy"

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = self.pairs[index % len(self.pairs)]
        path = self.corres_path(a, b)
        try:
            corres = np.load(path).astype(np.float64)
        except (OSError, ValueError) as error:
            raise UnreadableFileError(path, f"correspondences missing or unreadable ({error})") from error
        if corres.ndim != 2 or corres.shape[1] not in (4, 6):
            raise UnreadableFileError(path, f"expected an (N, 4) or (N, 6) array, got shape {corres.shape}")
        return read_image_array(self.root / "ims" / a), read_image_array(self.root / "ims" / b), corres

    def __getitem__(self, index: int) -> dict:
        draw = int(torch.randint(0, 2**62, ()).item())  # crops are random per call: the id names the draw
        rng = np.random.default_rng(draw)
        image1, image2, corres = self.load(index)
        if rng.random() < self.p_swap:
            image1, image2, corres = image2, image1, swap_corres(corres)
        if rng.random() < self.p_flip:
            corres = flip_corres(corres, image1.shape[1], image2.shape[1])
            image1, image2 = image1[:, ::-1], image2[:, ::-1]
        crop0, crop1, _ = self.crops(image1, image2, corres, rng)
        if self.noise > 0:
            crop1 = np.clip(crop1 + rng.normal(0, self.noise * 255, crop1.shape), 0, 255)
        size = torch.tensor([self.crop, self.crop])
        return {
            "image0": to_tensor(crop0.round().astype(np.uint8)),
            "image1": to_tensor(crop1.round().astype(np.uint8)),
            "H_0to1": torch.full((3, 3), float("nan")),
            "name": self._name(index),
            "image0_id": f"{self._name(index)}/draw{draw}/crop0",
            "image1_id": f"{self._name(index)}/draw{draw}/crop1",
            "size0": size,
            "size1": size.clone(),
            "scale0": torch.ones(2),
            "scale1": torch.ones(2),
        }

    def crops(self, image1: np.ndarray, image2: np.ndarray, corres: np.ndarray, rng: np.random.Generator):
        """The two overlapping crop x crop windows (float RGB; black when nothing overlaps), the
        windows ((rows, cols) slices of each image) and the quarter turns applied to crop 2."""
        black = np.zeros((self.crop, self.crop, 3))
        if len(corres) == 0:
            return black, black, None
        scale, rotation = scale_rotation(corres, rng)
        jitter = float(np.exp(rng.uniform(-self.log_jitter, self.log_jitter)))
        windows = choose_windows(corres, scale, self.crop, image1.shape[:2], image2.shape[:2], rng, jitter=jitter)
        if windows is None:
            return black, black, None
        (rows1, cols1), (rows2, cols2) = windows
        crop1 = cv2.resize(
            np.ascontiguousarray(image1[rows1, cols1]), (self.crop, self.crop), interpolation=cv2.INTER_AREA
        )
        crop2 = cv2.resize(
            np.ascontiguousarray(image2[rows2, cols2]), (self.crop, self.crop), interpolation=cv2.INTER_AREA
        )
        turns = dominant_quarter_turns(rotation)
        if turns:
            crop2 = np.rot90(crop2, k=turns)  # the reference's rotate_img_90 by 90 * turns degrees
        return crop1.astype(np.float64), np.ascontiguousarray(crop2).astype(np.float64), (windows, turns)
