"""Semantic keypoint pairs (SPair-71k, PF-Pascal, AP-10K): one record per pair, parsed lazily, turned into
batch samples with resize bookkeeping and an optional left/right-aware horizontal flip."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.keypoint_groups import Group, flip_permutation
from corrlab.datamodules.pair_dataset import PairDataset, image_id
from corrlab.datamodules.resize import ResizePolicy
from corrlab.geometry.scaling import to_resized


@dataclass
class KeypointPair:
    """One annotated pair in original-image pixels (pixel centres at integer coordinates).

    kpts0/kpts1: (S, 2) with S keypoint slots indexed by keypoint id; only `valid` slots (visible in
    both images) hold coordinates.  visible0/visible1: (S,) which ids are visible in each image.
    bbox0/bbox1: (4,) x1, y1, x2, y2, or None for the image frame.  image_size0/1: (H, W) the annotation
    states.  mirrored: the index asks for both images mirrored (the weakalign training CSV's flip column).
    image_kpts0/image_kpts1: (S, 2) each image's own annotation, coordinates at every `visible` slot (also those
    the other image lacks: GeoAware-SC's self-flip term uses them); None when only the pair annotation exists.
    """

    name: str
    image0: Path
    image1: Path
    kpts0: np.ndarray
    kpts1: np.ndarray
    valid: np.ndarray
    visible0: np.ndarray
    visible1: np.ndarray
    bbox0: np.ndarray | None
    bbox1: np.ndarray | None
    category: str
    image_size0: tuple[int, int] | None = None
    image_size1: tuple[int, int] | None = None
    flags: dict[str, int] = field(default_factory=dict)
    mirrored: bool = False
    image_kpts0: np.ndarray | None = None
    image_kpts1: np.ndarray | None = None


def scatter_slots(ids: Sequence[int], points: Sequence[Sequence[float]], num_slots: int, path: Path) -> np.ndarray:
    """(num_slots, 2) array with `points` at rows `ids`; ids out of range or a point that is not [x, y]
    (e.g. null) name the file."""
    out = np.zeros((num_slots, 2))
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= num_slots):
        raise UnreadableFileError(path, f"keypoint id {int(ids.max())} outside 0..{num_slots - 1} (data.max_keypoints)")
    for number, point in enumerate(points):
        if not (
            isinstance(point, (list, tuple)) and len(point) == 2 and all(isinstance(v, (int, float)) for v in point)
        ):
            raise UnreadableFileError(path, f"keypoint {number} is {point!r}, expected [x, y] numbers")
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) != len(ids):
        raise UnreadableFileError(path, f"{len(points)} keypoints but {len(ids)} keypoint ids")
    out[ids] = points
    return out


def flip_side(kpts: np.ndarray, visible: np.ndarray, bbox: np.ndarray, width: int, perm: np.ndarray | None):
    """Mirror keypoints and bbox of an image of `width` (x -> W - 1 - x) and re-index ids by `perm`."""
    kpts = kpts.copy()
    kpts[:, 0] = width - 1 - kpts[:, 0]
    bbox = np.array([width - 1 - bbox[2], bbox[1], width - 1 - bbox[0], bbox[3]])
    if perm is not None:
        kpts, visible = kpts[perm], visible[perm]
    return kpts, visible, bbox


def mirror(pair: KeypointPair, flips: Sequence[bool], perm: np.ndarray | None, widths: Sequence[int]) -> KeypointPair:
    """The pair with image 0 and/or 1 mirrored (annotations only; bboxes must be set)."""
    kpts, visible, bbox = [pair.kpts0, pair.kpts1], [pair.visible0, pair.visible1], [pair.bbox0, pair.bbox1]
    own = [pair.image_kpts0, pair.image_kpts1]
    annotated = [pair.valid, pair.valid]  # slots holding coordinates, per image
    for side, (flip, width) in enumerate(zip(flips, widths)):
        if flip:
            if own[side] is not None:
                own[side] = flip_side(own[side], visible[side], bbox[side], width, perm)[0]
            kpts[side], visible[side], bbox[side] = flip_side(kpts[side], visible[side], bbox[side], width, perm)
            annotated[side] = annotated[side] if perm is None else annotated[side][perm]
    return replace(
        pair,
        kpts0=kpts[0],
        kpts1=kpts[1],
        valid=annotated[0] & annotated[1],
        visible0=visible[0],
        visible1=visible[1],
        bbox0=bbox[0],
        bbox1=bbox[1],
        mirrored=False,
        image_kpts0=own[0],
        image_kpts1=own[1],
    )


def missing_images(image_paths: Sequence[tuple[Path, Path]]) -> list[Path]:
    """The image files referenced by an index that do not exist (each checked once)."""
    exists: dict[Path, bool] = {}
    missing = []
    for pair in image_paths:
        for path in pair:
            if path not in exists:
                exists[path] = path.is_file()
                if not exists[path]:
                    missing.append(path)
    return missing


class KeypointPairDataset(PairDataset):
    """Subclasses give the index (`names`, image paths) and parse one record with `load(index)`.

    flip_probability (training only): each image is mirrored independently with this probability; ids are
    re-indexed by the category's left/right pairs (`flip_pairs(category)`).  When a dataset has no id
    semantics (flip_pairs is None) both images are mirrored together, which keeps slot i <-> slot i.
    """

    root: Path  # image ids are image paths relative to it

    def __init__(
        self,
        names: Sequence[str],
        resize: ResizePolicy,
        num_slots: int,
        flip_probability: float = 0.0,
        flip_pairs: Callable[[str], Sequence[Group]] | None = None,
    ) -> None:
        self.names = list(names)
        self.resize = resize
        self.num_slots = num_slots
        self.flip_probability = flip_probability
        self.flip_pairs = flip_pairs

    @abstractmethod
    def load(self, index: int) -> KeypointPair:
        """The annotation record of pair `index` (reads its annotation files now, not before)."""

    def __len__(self) -> int:
        return len(self.names)

    def load_problems(self, label: str, limit: int = 3) -> list[str]:
        """Parse every pair's annotations as loading does (no image decoded): one problem per failing file,
        the first `limit` named, for verify."""
        errors = []
        for index in range(len(self)):
            try:
                self.load(index)
            except (UnreadableFileError, OSError, ValueError) as error:
                errors.append(str(error))
        if not errors:
            return []
        more = f" ... and {len(errors) - limit} more" if len(errors) > limit else ""
        return [f"{label}: {len(errors)} pair annotation(s) do not load: " + "; ".join(errors[:limit]) + more]

    def pair_names(self) -> list[str]:
        return list(self.names)

    def random_flips(self, category: str) -> tuple[list[bool], np.ndarray | None]:
        """Which images to mirror (training augmentation) and the id permutation a mirror applies."""
        if self.flip_pairs is None:
            return [bool(torch.rand(()) < self.flip_probability)] * 2, None
        flips = [bool(torch.rand(()) < self.flip_probability) for _ in range(2)]
        return flips, flip_permutation(self.flip_pairs(category), self.num_slots)

    def __getitem__(self, index: int) -> dict:
        pair = self.load(index)
        images = [read_image(pair.image0), read_image(pair.image1)]
        for image, path, stated in zip(images, (pair.image0, pair.image1), (pair.image_size0, pair.image_size1)):
            if stated is not None and tuple(image.shape[-2:]) != tuple(stated):
                raise UnreadableFileError(
                    path, f"image is {tuple(image.shape[-2:])} (H, W) but its annotation says {tuple(stated)}"
                )
        frames = [np.array([-0.5, -0.5, im.shape[-1] - 0.5, im.shape[-2] - 0.5]) for im in images]
        pair = replace(
            pair,
            bbox0=frames[0] if pair.bbox0 is None else pair.bbox0,
            bbox1=frames[1] if pair.bbox1 is None else pair.bbox1,
        )
        widths, mirrored = [image.shape[-1] for image in images], [pair.mirrored] * 2
        if pair.mirrored:
            pair = mirror(pair, mirrored, None, widths)
        if self.flip_probability > 0:
            flips, perm = self.random_flips(pair.category)
            pair = mirror(pair, flips, perm, widths)
            mirrored = [a != b for a, b in zip(mirrored, flips)]
        images = [image.flip(-1) if odd else image for image, odd in zip(images, mirrored)]
        sample = {"name": pair.name, "category": pair.category, **pair.flags}
        valid = torch.from_numpy(pair.valid.copy())
        for side, (image, path, odd) in enumerate(zip(images, (pair.image0, pair.image1), mirrored)):
            sample[f"image{side}_id"] = image_id(path, self.root, "mirrored" if odd else "")
            size = torch.tensor(image.shape[-2:])
            resized, scale, offset = self.resize.apply(image)
            kpts = torch.from_numpy(getattr(pair, f"kpts{side}")).double()
            bbox = torch.from_numpy(getattr(pair, f"bbox{side}")).double().reshape(2, 2)
            sample[f"image{side}"] = resized
            sample[f"size{side}"] = size
            sample[f"scale{side}"] = scale
            sample[f"offset{side}"] = offset
            moved = to_resized(kpts, scale.double(), offset.double())
            sample[f"kpts{side}"] = (moved * valid[:, None]).float()  # 0 in empty slots
            sample[f"bbox{side}"] = to_resized(bbox, scale.double(), offset.double()).reshape(4).float()
            sample[f"kpts_visible{side}"] = torch.from_numpy(getattr(pair, f"visible{side}").copy())
            own = getattr(pair, f"image_kpts{side}")
            # the image's own keypoints (0 where it has none); only the pair's when no image annotation exists
            own_valid = valid if own is None else sample[f"kpts_visible{side}"]
            own = kpts if own is None else torch.from_numpy(own).double()
            own = to_resized(own, scale.double(), offset.double())
            sample[f"kpts_image{side}"] = (own * own_valid[:, None]).float()
            sample[f"kpts_image_valid{side}"] = own_valid.clone()
        sample["kpts_valid"] = valid
        return sample
