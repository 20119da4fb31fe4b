"""The real-image SPair pairs of tests/helpers/real_spair.py (the fidelity and speed benches' input): SPair's
layout as our loader reads it, and keypoints that land on the same photo pixels in every image (mirrors too)."""

from __future__ import annotations

import json

import cv2
import numpy as np

from corrlab.datamodules.spair import SPairDataModule
from tests.conftest import shared_data
from tests.helpers.real_spair import CATEGORIES, TEST_PAIRS, partner, write_real_spair


def patch(image: np.ndarray, xy: list[float], size: int = 15) -> np.ndarray:
    """size x size grey patch centred on a pixel-edge-convention point (getRectSubPix uses pixel centres)."""
    return cv2.getRectSubPix(image, (size, size), (xy[0] - 0.5, xy[1] - 0.5)).astype(np.float64)


def test_keypoints_of_a_mirrored_image_sit_on_the_partners_photo_pixels(tmp_path):
    root = tmp_path / "SPair-71k"
    names = write_real_spair(root, shared_data(), categories=("car",))
    assert len(names) == len(TEST_PAIRS)
    plain, mirrored = CATEGORIES["car"].views[0], CATEGORIES["car"].views[2]  # both at scale 1
    images, kps = [], []
    for view in (plain, mirrored):
        images.append(cv2.imread(str(root / "JPEGImages" / "car" / f"{view.name}.jpg"), cv2.IMREAD_GRAYSCALE))
        kps.append(json.loads((root / "ImageAnnotation" / "car" / f"{view.name}.json").read_text())["kps"])
    swap = partner("car", CATEGORIES["car"].num_ids)
    exact, shifted = [], []
    for i, xy in kps[0].items():
        other = kps[1][str(swap[int(i)])]
        if xy is None or other is None:
            continue
        reference = patch(images[0], xy)
        exact.append(np.abs(patch(images[1], other)[:, ::-1] - reference).mean())
        shifted.append(np.abs(patch(images[1], [other[0] + 1, other[1]])[:, ::-1] - reference).mean())
    assert len(exact) >= 15
    assert np.median(exact) < 3.0  # JPEG noise only (grey levels)
    assert np.median(exact) < 0.5 * np.median(shifted)  # a one-pixel error would show


def test_our_loader_reads_the_pairs_with_their_mirror_flags(tmp_path):
    root = tmp_path / "SPair-71k"
    write_real_spair(root, shared_data(), categories=("cat",))
    data = SPairDataModule(str(root))
    data.setup("test")
    batches = list(data.test_dataloader())
    assert [b["name"][0].split("-", 1)[1] for b in batches] == [
        "2011_000101-2011_000102:cat",
        "2011_000101-2011_000103:cat",
        "2011_000104-2011_000102:cat",
        "2011_000103-2011_000104:cat",
    ]
    assert [tuple(b["image1"].shape[-2:]) for b in batches] == [(288, 384), (360, 480), (288, 384), (480, 528)]
    assert all(int(b["kpts_valid"].sum()) >= 8 for b in batches)
