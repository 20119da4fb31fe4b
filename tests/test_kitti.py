"""KITTI-2012 / 2015 optical flow: the official 16-bit PNG flow format, the layout, the masks, the catalog entry, and
the protocol's AEPE (per image, then averaged) and Fl (pooled outlier rate) against values computed by hand."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from corrlab.datamodules.catalog import get as catalog_entry
from corrlab.datamodules.collate import collate_pairs
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.kitti import KITTIFlowDataModule, read_kitti_flow, write_kitti_flow
from corrlab.matches import Matches
from tests.helpers.kitti_fixture import encode_flow, smooth_pair, write_kitti, write_rgb16_png


def test_flow_png_decodes_as_the_devkit_encodes(tmp_path):
    # stored R, G, B by hand: u = (R - 32768) / 64, v = (G - 32768) / 64, valid = B
    rgb = np.array([[[33408, 32848, 1], [32608, 32768, 1], [40000, 20000, 0]]])  # u 10, -2.5; v 1.25, 0; invalid
    write_rgb16_png(tmp_path / "f.png", rgb)
    flow, valid = read_kitti_flow(tmp_path / "f.png")
    assert flow.shape == (1, 3, 2) and flow.dtype == np.float32
    np.testing.assert_array_equal(flow[0], [[10.0, 1.25], [-2.5, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(valid, [[True, True, False]])


def test_write_kitti_flow_is_the_official_encoding(tmp_path):
    flow = np.array([[[10.0, 1.25], [-2.5, 0.0], [511.984375, -512.0]]])
    valid = np.array([[True, True, True]])
    write_kitti_flow(tmp_path / "f.png", flow, valid)
    stored_bgr = cv2.imread(str(tmp_path / "f.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(stored_bgr[..., ::-1], encode_flow(flow, valid))
    decoded, decoded_valid = read_kitti_flow(tmp_path / "f.png")
    np.testing.assert_array_equal(decoded, flow)
    assert decoded_valid.all()


def test_a_file_that_is_not_a_kitti_flow_map_is_named(tmp_path):
    cv2.imwrite(str(tmp_path / "eight_bit.png"), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(UnreadableFileError, match="eight_bit.png.*16-bit"):
        read_kitti_flow(tmp_path / "eight_bit.png")
    write_rgb16_png(tmp_path / "bad_valid.png", np.array([[[32768, 32768, 2]]]))
    with pytest.raises(UnreadableFileError, match="bad_valid.png.*only 0 and 1"):
        read_kitti_flow(tmp_path / "bad_valid.png")


def hand_pairs():
    """Two pairs whose errors are chosen so that every reduction gives a different number (see the test)."""
    gt_a = np.zeros((2, 3, 2))
    gt_a[0, 0], gt_a[0, 1], gt_a[0, 2], gt_a[1, 0] = (10, 0), (100, 0), (0, 0), (-2.5, 1.25)
    valid_a = np.array([[True, True, True], [True, False, False]])
    gt_b = np.zeros((2, 3, 2))
    gt_b[1, 1], gt_b[1, 2] = (200, 0), (20, 0)
    valid_b = np.array([[False, False, False], [False, True, True]])
    return {"000000": (gt_a, valid_a, valid_a), "000001": (gt_b, valid_b, valid_b)}


def predicted_flows() -> dict[str, np.ndarray]:
    """Predicted flows: NaN at the pixels without ground truth (they must not count)."""
    a = np.full((2, 3, 2), np.nan)
    a[0, 0] = (14, 0)  # EPE 4, |gt| 10: 4 > 3 and 0.4 > 0.05 -> outlier
    a[0, 1] = (100, 4)  # EPE 4, |gt| 100: 0.04 <= 0.05 -> inlier
    a[0, 2] = (3, 4)  # EPE 5, |gt| 0 -> outlier
    a[1, 0] = (-0.5, 1.25)  # EPE 2 -> inlier
    b = np.full((2, 3, 2), np.nan)
    b[1, 1] = (200, 3.5)  # EPE 3.5, |gt| 200: 0.0175 -> inlier
    b[1, 2] = (23, 0)  # EPE 3, not > 3 -> inlier
    return {"000000": a, "000001": b}


def test_aepe_per_image_and_fl_pooled_by_hand(tmp_path):
    root = write_kitti(tmp_path / "kitti", 2015, hand_pairs())
    data = KITTIFlowDataModule(str(root), year=2015)
    benchmark = data.make_benchmark("test")
    records = []
    for sample in data.dataset("test"):
        batch = collate_pairs([sample])
        flow = torch.from_numpy(predicted_flows()[sample["name"]]).float()[None]
        py, px = torch.meshgrid(torch.arange(2.0), torch.arange(3.0), indexing="ij")
        warp = flow + torch.stack([px, py], -1)[None]
        empty = Matches.empty(torch.device("cpu"))
        records += benchmark.update(batch, Matches(empty.kpts0, empty.kpts1, empty.scores, empty.batch_idx, warp=warp))
    metrics = benchmark.compute()
    # image A: EPE 4, 4, 5, 2 -> 3.75, 2 outliers of 4; image B: 3.5, 3 -> 3.25, 0 of 2
    assert [r["aepe"] for r in records] == pytest.approx([3.75, 3.25], abs=1e-6)
    assert [r["fl"] for r in records] == pytest.approx([50.0, 0.0])
    assert metrics["aepe"] == pytest.approx(3.5, abs=1e-6)  # per image then mean (pooled would be 21.5 / 6)
    assert metrics["fl"] == pytest.approx(100 * 2 / 6)  # pooled (the mean of per-image Fl would be 25)
    assert metrics["num_pairs"] == 2 and benchmark.main_metric == "fl" and benchmark.mode == "min"
    assert benchmark.spec()["protocol"] == "kitti_flow" and benchmark.spec()["dataset"] == "kitti2015"


@pytest.mark.parametrize(("mask", "expected"), [("occ", "occ"), ("noc", "noc"), ("only_occ", "occ & ~noc")])
def test_the_mask_chooses_the_ground_truth_pixels(tmp_path, mask, expected):
    flow, occ, noc = smooth_pair(4, 6, (1.5, -0.25))
    root = write_kitti(tmp_path / "kitti", 2012, {"000007": (flow, occ, noc)})
    sample = KITTIFlowDataModule(str(root), year=2012, mask=mask).dataset("val")[0]
    want = {"occ": occ, "noc": noc, "occ & ~noc": occ & ~noc}[expected]
    np.testing.assert_array_equal(sample["flow_valid"].numpy(), want)
    assert want.sum() > 0 and (occ & ~noc).sum() > 0 and noc.sum() < occ.sum()
    np.testing.assert_array_equal(sample["flow"].numpy()[want], np.tile([1.5, -0.25], (want.sum(), 1)))
    assert sample["image0_id"] == "training/colored_0/000007_10.png" and sample["name"] == "000007"
    assert tuple(sample["image1"].shape) == (3, 4, 6)


def test_missing_dataset_and_missing_files_are_explained(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"(?s)training/flow_occ.*data_scene_flow\.zip"):
        KITTIFlowDataModule(str(tmp_path / "nowhere"), year=2015).dataset("test")
    root = write_kitti(tmp_path / "kitti", 2015, hand_pairs())
    (root / "training/image_2/000001_11.png").unlink()
    with pytest.raises(UnreadableFileError, match="000001_11.png.*1 of 2 pairs"):
        KITTIFlowDataModule(str(root), year=2015).dataset("test")
    skipping = KITTIFlowDataModule(str(root), year=2015, on_missing="skip")
    assert skipping.dataset("test").pair_names() == ["000000"]
    assert skipping.benchmark_data("test").extra_spec["skipped"] == {"count": 1, "names": ["000001"]}
    with pytest.raises(ValueError, match="occ.*noc.*only_occ"):
        KITTIFlowDataModule(str(root), year=2015, mask="all")
    with pytest.raises(ValueError, match="no training split"):
        KITTIFlowDataModule(str(root), year=2015).dataset("train")


@pytest.mark.parametrize("year", [2012, 2015])
def test_catalog_verify_checks_the_official_layout(tmp_path, year):
    entry = catalog_entry(f"kitti{year}")
    count = {2012: 194, 2015: 200}[year]
    pair = smooth_pair(1, 2, (0, 0))
    root = write_kitti(tmp_path / "kitti", year, {f"{i:06d}": pair for i in range(count)})
    assert entry.verify(root).ok(), entry.verify(root).format()
    (root / "training/flow_noc/000005_10.png").unlink()
    report = entry.verify(root)
    assert not report.ok() and "training/flow_noc/000005_10.png" in report.format()
    assert f"{'colored_0' if year == 2012 else 'image_2'}/<id>_10.png" in entry.layout


@pytest.mark.slow
def test_eval_pwcnet_gocor_on_the_kitti2015_fixture(tmp_path_factory, tmp_path, monkeypatch):
    from corrlab.pipeline.evaluate import evaluate
    from tests.conftest import compose_config

    monkeypatch.setenv("CORRLAB_OPS", "torch")  # the tiny frames need no compiled kernel (nor its first build)
    pairs = {"000000": smooth_pair(40, 96, (2.5, 0.5)), "000001": smooth_pair(40, 96, (-4.0, 1.0))}
    root = write_kitti(tmp_path_factory.mktemp("kitti"), 2015, pairs)
    overrides = [
        "model=pwcnet_gocor",
        "data=kitti2015",
        f"data.root={root}",
        "allow_random_weights=true",
        "num_figures=0",
        "model.certainty=none",
        "model.sampler.num_matches=100",
    ]
    metrics = evaluate(compose_config("eval", overrides, tmp_path))["metrics"]
    assert metrics["num_pairs"] == 2
    assert math.isfinite(metrics["aepe"]) and 0.0 <= metrics["fl"] <= 100.0
