"""Centred letterbox (GeoAware-SC's `resize`): the padding arithmetic and Lanczos resampling by hand on odd sizes in
both orientations, keypoints mapped in and out exactly, the semantic protocol scoring in original pixels through
it, and GeoAware's Letterbox resampling with it."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from corrlab.benchmarks.semantic import SemanticBenchmark
from corrlab.datamodules.resize import ResizePolicy
from corrlab.datamodules.spair import SPairDataModule
from corrlab.geometry.scaling import to_original, to_resized
from corrlab.models.geoaware.letterbox import Letterbox
from tests.helpers.oracle_transfer import OracleTransfer
from tests.helpers.semantic_fixtures import write_spair

CENTRE = ResizePolicy("letterbox", 12, interpolation="pil_lanczos", pad="centre")


def random_8bit(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("height", "width", "content", "offset", "centre_in", "centre_out"),
    [
        # 5 x 9 -> long side 12, short round(12 * 5 / 9) = round(6.67) = 7; padding 5 rows: 2 above, 3 below
        (5, 9, (7, 12), (0, 2), (4.0, 2.0), (5.5, 5.0)),
        # 9 x 5 -> 12 x 7; padding 5 columns: 2 left, 3 right
        (9, 5, (12, 7), (2, 0), (2.0, 4.0), (5.0, 5.5)),
    ],
)
def test_centred_letterbox_by_hand(height, width, content, offset, centre_in, centre_out):
    array = random_8bit(height, width)
    image = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    boxed, scale, got_offset = CENTRE.apply(image)
    h, w = content
    expected = np.zeros((12, 12, 3), np.uint8)  # PIL Lanczos of the 8-bit image on a zero canvas at the offset
    expected[offset[1] : offset[1] + h, offset[0] : offset[0] + w] = np.asarray(
        Image.fromarray(array).resize((w, h), Image.Resampling.LANCZOS)
    )
    assert boxed.shape == (3, 12, 12) and got_offset.tolist() == list(offset)
    assert torch.equal((boxed * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(expected))
    assert scale.tolist() == pytest.approx([w / width, h / height])
    # the image centre lands on the canvas centre of the content; the top-left pixel corner on the offset
    points = torch.tensor([centre_in, [-0.5, -0.5], [width - 0.5, height - 0.5]], dtype=torch.float64)
    moved = to_resized(points, scale.double(), got_offset.double())
    corner = [offset[0] - 0.5, offset[1] - 0.5]
    expected_points = torch.tensor([centre_out, corner, [corner[0] + w, corner[1] + h]], dtype=torch.float64)
    assert torch.allclose(moved, expected_points, atol=1e-6)  # scale is float32 in batches
    assert torch.allclose(to_original(moved, scale.double(), got_offset.double()), points, atol=1e-12)


def test_bottom_right_stays_the_default_and_centre_is_recorded():
    assert ResizePolicy("letterbox", 12).offset(5, 9).tolist() == [0, 0]
    assert "pad" not in ResizePolicy("letterbox", 12).describe() and CENTRE.describe()["pad"] == "centre"
    with pytest.raises(ValueError, match="pad='centre'.*needs resize.mode=letterbox"):
        ResizePolicy("long", 12, pad="centre")
    with pytest.raises(ValueError, match=r"resize.pad must be one of \('bottom_right', 'centre'\)"):
        ResizePolicy("letterbox", 12, pad="center")
    with pytest.raises(ValueError, match="offset0 / offset1.*data=spair, pfpascal, ap10k"):
        CENTRE(torch.zeros(3, 5, 9))  # the scale-only contract cannot carry the offset


def test_geoaware_letterbox_resamples_with_lanczos_at_the_reference_offset():
    array = random_8bit(33, 50)  # 33 x 50 -> 84: short side round(55.44) = 55, offset int(14.5) = 14
    box = Letterbox(33, 50, 84)
    assert box.resized == (55, 84) and box.offset == (0, 14)
    expected = np.zeros((84, 84, 3), np.uint8)
    expected[14:69] = np.asarray(Image.fromarray(array).resize((84, 55), Image.Resampling.LANCZOS))
    boxed = box.image(torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    assert torch.equal((boxed * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(expected))


def test_semantic_scores_in_original_pixels_through_a_centred_letterbox(tmp_path):
    write_spair(tmp_path / "SPair-71k")
    shifts = {"cat": [0.0, 3.0, 7.0, 9.5, 15.0, 21.0], "car": [0.0, 3.0, 8.0, 9.0, 16.0]}  # no error at a threshold
    results = {}
    for name, resize in [("original", None), ("centred", {"mode": "letterbox", "size": 96, "pad": "centre"})]:
        dm = SPairDataModule(root=str(tmp_path / "SPair-71k"), resize=resize, benchmark=partial(SemanticBenchmark))
        benchmark = dm.make_benchmark("test")
        for batch in dm.test_dataloader():
            benchmark.update(batch, benchmark.predict(OracleTransfer(shifts), batch))
        results[name] = (benchmark.compute(), benchmark.records, batch)
    metrics, records, batch = results["centred"]
    assert batch["image0"].shape[-2:] == (96, 96) and batch["offset1"].abs().sum() > 0
    original = results["original"][2]  # the last pair: its keypoints come back to the annotated original pixels
    for side in (0, 1):
        valid = batch["kpts_valid"][0]
        back = to_original(batch[f"kpts{side}"][0][valid].double(), batch[f"scale{side}"][0], batch[f"offset{side}"][0])
        assert torch.allclose(back, original[f"kpts{side}"][0][valid].double(), atol=1e-4)
    # L = target bbox side 160 (cat), 150 (car): cat < 1.6 / 8 / 16 / 24 -> 1, 3, 5, 6 of 6; car -> 1, 2, 4, 5 of 5
    assert [records[0][f"pck@{a}"] for a in (0.01, 0.05, 0.1, 0.15)] == pytest.approx([1 / 6, 3 / 6, 5 / 6, 1])
    assert [records[1][f"pck@{a}"] for a in (0.01, 0.05, 0.1, 0.15)] == pytest.approx([1 / 5, 2 / 5, 4 / 5, 1])
    assert [r["threshold_px"] for r in records] == pytest.approx([160.0, 150.0], abs=1e-3)
    assert [r["mean_error_px"] for r in records] == pytest.approx(
        [r["mean_error_px"] for r in results["original"][1]], abs=1e-3
    )
    assert metrics == pytest.approx(results["original"][0])
