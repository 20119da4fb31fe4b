"""Bad input gives errors that name the file, the expected layout and how to get the data."""

from __future__ import annotations

import logging

import pytest
import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.benchmarks.homography import HomographyBenchmark
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.hpatches import HPatchesDataModule, expected_sequences
from corrlab.geometry.homography import warp_points
from corrlab.matches import Matches
from tests.helpers.hpatches_fixture import write_hpatches


def test_missing_root_names_layout_and_download(tmp_path):
    dm = HPatchesDataModule(root=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError) as error:
        dm.dataset("test")
    message = str(error.value)
    assert (
        "nowhere" in message
        and "H_1_2" in message
        and "hpatches-sequences-release.tar.gz" in message
        and "data.root=" in message
    )


def test_empty_root_is_not_a_silent_zero_pair_evaluation(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no i_\\*/v_\\* sequence folders"):
        HPatchesDataModule(root=str(tmp_path / "empty")).dataset("test")


def test_corrupt_image_and_homography_name_the_file(tmp_path):
    root = write_hpatches(tmp_path / "hp", num_images=2)
    (root / "i_fixture" / "1.ppm").write_bytes(b"not an image")
    (root / "v_fixture" / "H_1_2").write_text("1 0 0\n0 1\n")
    dataset = HPatchesDataModule(root=str(root)).dataset("test")
    with pytest.raises(UnreadableFileError, match="i_fixture/1.ppm"):
        dataset[0]
    with pytest.raises(UnreadableFileError, match="v_fixture/H_1_2"):
        dataset[1]


def test_hpatches_has_no_training_split(tmp_path):
    with pytest.raises(ValueError, match="no training split"):
        HPatchesDataModule(root=str(tmp_path)).dataset("train")


def test_missing_homography_is_reported_not_dropped_silently(tmp_path, caplog):
    root = write_hpatches(tmp_path / "hp", num_images=6, size=(60, 80))
    (root / "v_fixture" / "H_1_3").unlink()
    dm = HPatchesDataModule(root=str(root))
    with caplog.at_level(logging.WARNING):
        spec = dm.make_benchmark("test").spec()
    assert spec["incomplete"] == {
        "sequences": {"found": 2, "expected": 108},
        "pairs_left_out": [{"pair": "v_fixture/1-3", "reason": "no H_1_3 file"}],
    }
    assert spec["pairs"]["count"] == 9  # 2 sequences x 5 pairs, less the one without H
    assert "incomplete: 2 of 108 sequences; 1 pair(s) left out: v_fixture/1-3 (no H_1_3 file)" in caplog.text


def test_expected_sequence_counts_follow_the_subset():
    assert [expected_sequences(s, True) for s in ("all", "i", "v")] == [108, 52, 56]
    assert expected_sequences("all", False) == 116


def test_nan_homography_names_the_file(tmp_path):
    root = write_hpatches(tmp_path / "hp", num_images=2)
    (root / "i_fixture" / "H_1_2").write_text("1 0 0\n0 nan 0\n0 0 1\n")
    with pytest.raises(UnreadableFileError, match="i_fixture/H_1_2.*NaN"):
        HPatchesDataModule(root=str(root)).dataset("test")[0]


def homography_batch(H: torch.Tensor) -> dict:
    return {
        "image0": torch.zeros(1, 3, 40, 50),
        "name": ["seq/1-2"],
        "H_0to1": H[None],
        "scale0": torch.ones(1, 2),
        "scale1": torch.ones(1, 2),
        "size0": torch.tensor([[40, 50]]),
        "size1": torch.tensor([[40, 50]]),
    }


def grid_matches(H: torch.Tensor) -> Matches:
    ys, xs = torch.meshgrid(torch.arange(5.0, 40, 8), torch.arange(5.0, 50, 8), indexing="ij")
    kpts0 = torch.stack([xs.flatten(), ys.flatten()], -1)
    kpts1 = warp_points(H.double(), kpts0.double()).float()
    return Matches(kpts0, kpts1, torch.ones(len(kpts0)), torch.zeros(len(kpts0), dtype=torch.long))


def test_non_finite_ground_truth_homography_fails_naming_the_pair():
    data = BenchmarkData("fixture", "test", ["seq/1-2"], ground_truth=("H_0to1",), resize={})
    benchmark = HomographyBenchmark(data)
    H = torch.eye(3)
    H[1, 1] = float("nan")
    with pytest.raises(ValueError, match="seq/1-2.*not finite"):
        benchmark.update(homography_batch(H), grid_matches(torch.eye(3)))
