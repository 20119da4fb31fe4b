"""HPatches: the GCM evaluation layout is detected and gives the same pairs; the short480 error frame."""

from __future__ import annotations

import pytest
import torch

from corrlab.datamodules.catalog import get
from corrlab.datamodules.hpatches import HPatchesDataModule
from corrlab.geometry.homography import warp_points
from corrlab.matches import Matches
from corrlab.modules.base import MatchingModule
from tests.conftest import shared_data
from tests.helpers.hpatches_fixture import write_hpatches
from tests.helpers.hpatches_gcm_fixture import write_hpatches_gcm


class ShiftedGroundTruth(MatchingModule):
    """A grid of image-0 points matched to H_0to1 of them plus `shift` pixels of the *original* image 1."""

    requires_weights = False

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = shift

    def match(self, batch: dict) -> Matches:
        parts = []
        for b in range(batch["image0"].shape[0]):
            h, w = batch["image0"].shape[-2:]
            grid = torch.stack(
                torch.meshgrid(torch.arange(20.0, w - 20, 15), torch.arange(20.0, h - 20, 15), indexing="xy"), -1
            ).reshape(-1, 2)
            kpts1 = warp_points(batch["H_0to1"][b].double(), grid.double()).float()
            kpts1[:, 0] += self.shift * batch["scale1"][b][0]
            parts.append(Matches(grid, kpts1, torch.ones(len(grid)), torch.full((len(grid),), b)))
        return Matches.concat(parts)


def evaluate(dm: HPatchesDataModule, module: MatchingModule) -> dict:
    benchmark = dm.make_benchmark("test")
    for batch in dm.test_dataloader():
        benchmark.update(batch, benchmark.predict(module, batch))
    return benchmark.summary()


def test_gcm_layout_gives_the_release_pairs_and_fingerprint(tmp_path):
    release = HPatchesDataModule(root=str(write_hpatches(tmp_path / "release")))
    gcm = HPatchesDataModule(root=str(write_hpatches_gcm(tmp_path / "gcm")))
    complete = get("hpatches").verify(write_hpatches_gcm(tmp_path / "gcm6", num_images=6))
    assert (
        gcm.pair_names("test")
        == release.pair_names("test")
        == ["i_fixture/1-2", "i_fixture/1-3", "v_fixture/1-2", "v_fixture/1-3"]
    )
    assert gcm.dataset("test").layout == "gcm" and release.dataset("test").layout == "release"
    a, b = gcm.dataset("test")[3], release.dataset("test")[3]
    assert torch.equal(a["image1"], b["image1"]) and torch.equal(a["H_0to1"], b["H_0to1"])
    exact = ShiftedGroundTruth(0.0)
    assert evaluate(gcm, exact)["protocol"]["fingerprint"] == evaluate(release, exact)["protocol"]["fingerprint"]
    assert "gcm layout" in complete.checks[0].what and not complete.checks[0].ok  # 2 sequences, not 108
    assert complete.checks[1].ok and complete.checks[2].ok and complete.checks[2].detail == "10 of 10 present"


def test_short480_measures_errors_in_the_short_side_480_frame(tmp_path):
    """Matches off by 1.4 original pixels: 1.4 px at resolution=original; the fixture's short side is 240,
    so 2.8 px in the short480 frame.  Hence mma@1 = 0 in both, mma@2 = 1 vs 0, and mma@3 = 1 in both."""
    root = str(write_hpatches(tmp_path / "hp"))
    shifted = ShiftedGroundTruth(1.4)
    original = evaluate(HPatchesDataModule(root=root), shifted)
    short = evaluate(HPatchesDataModule(root=root, resolution="short480"), shifted)
    assert original["metrics"]["mma@1"] == 0 and original["metrics"]["mma@2"] == 1
    assert short["metrics"]["mma@2"] == 0 and short["metrics"]["mma@3"] == 1
    spec = short["protocol"]["spec"]
    assert spec["resolution"] == "short480" and spec["error_frame"]["resize"]["size"] == 480
    assert spec["resize"] == {"mode": "short", "size": 480, "divisible_by": 1}  # resize: null follows the resolution
    assert "pixel centres at integer coordinates" in spec["pixel_convention"]
    assert original["protocol"]["fingerprint"] != short["protocol"]["fingerprint"]
    exact = evaluate(
        HPatchesDataModule(root=root, resolution="short480", resize={"mode": "none"}), ShiftedGroundTruth(0.0)
    )
    assert exact["metrics"]["mma@1"] == 1 and exact["metrics"]["hacc@1"] == 1


def test_unknown_resolution_is_refused(tmp_path):
    with pytest.raises(ValueError, match="original, short480"):
        HPatchesDataModule(root=str(tmp_path), resolution="short240")


def test_real_pairs_at_short480():
    root = shared_data("hpatches", "partial_pairs")
    summary = evaluate(HPatchesDataModule(root=str(root), resolution="short480"), ShiftedGroundTruth(0.0))
    assert (
        summary["metrics"]["num_pairs"] == 3 and summary["metrics"]["mma@1"] == 1 and summary["metrics"]["hacc@1"] == 1
    )
