"""PF-Pascal datamodule on a fixture with the weakalign/NCNet CSVs: keypoints, image-size threshold, the training
CSV (keypoints from .mat, flip column), CSV errors with file and line, verify()."""

from __future__ import annotations

import pytest
import torch

from corrlab.datamodules import pfpascal
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.pfpascal import PFPascalDataModule
from tests.helpers.oracle_transfer import OracleTransfer
from tests.helpers.semantic_fixtures import write_pfpascal


@pytest.fixture
def root(tmp_path):
    write_pfpascal(tmp_path / "pf-pascal")
    return tmp_path / "pf-pascal"


def test_test_csv_gives_keypoints_in_order_and_the_class_name(root):
    pairs = write_pfpascal(root)
    dataset = PFPascalDataModule(root=str(root)).dataset("test")
    assert dataset.pair_names() == ["2009_000001-2009_000002:cat", "2009_000003-2009_000004:bottle"]
    sample = dataset[1]
    source, target = pairs[5]
    assert sample["category"] == "bottle" and sample["kpts0"].shape == (20, 2)
    assert sample["kpts_valid"].tolist() == [True] * 3 + [False] * 17
    assert torch.allclose(sample["kpts0"][:3], torch.tensor(source, dtype=torch.float32))
    assert torch.allclose(sample["kpts1"][:3], torch.tensor(target, dtype=torch.float32))
    assert sample["bbox1"].tolist() == [-0.5, -0.5, 139.5, 169.5]  # the image frame of a 170 x 140 image


def test_protocol_uses_the_longer_image_side(root):
    dm = PFPascalDataModule(root=str(root))
    benchmark = dm.make_benchmark("test")
    shift = {"cat": [0.0, 8.0, 9.0, 20.0], "bottle": [0.0, 7.0, 8.0]}
    for batch in dm.test_dataloader():
        benchmark.update(batch, benchmark.predict(OracleTransfer(shift), batch))
    records = benchmark.records
    assert [r["threshold_px"] for r in records] == [180.0, 170.0]  # 150 x 180 and 170 x 140 targets
    # alpha 0.05: thresholds 9 (cat) and 8.5 (bottle), strict: 2 of 4 and 3 of 3
    assert [r["pck@0.05"] for r in records] == pytest.approx([2 / 4, 1.0])
    assert benchmark.spec()["threshold_base"] == "max(H, W) of image 1 (target)"
    assert "geo/pck@0.1" not in benchmark.compute()  # PF-Pascal has no geometry-aware groups


def test_training_csv_reads_mat_keypoints_and_the_flip_column(root):
    pairs = write_pfpascal(root)
    dataset = PFPascalDataModule(root=str(root), flip_probability=0.0, train_resize={"mode": "none"}).dataset("train")
    source, target = pairs[8]
    plain, mirrored = dataset[0], dataset[1]
    assert dataset.pair_names() == ["2009_000001-2009_000002:cat", "2009_000001-2009_000002:cat/mirrored"]
    assert plain["kpts_valid"].tolist() == [True] * 4 + [False] * 16  # the 5th .mat keypoint is NaN
    assert torch.allclose(plain["kpts0"][:4], torch.tensor(source, dtype=torch.float32))
    assert torch.allclose(mirrored["kpts0"][:4, 0], torch.tensor(179 - source[:, 0], dtype=torch.float32))
    assert torch.allclose(mirrored["kpts1"][:4, 0], torch.tensor(179 - target[:, 0], dtype=torch.float32))
    assert torch.equal(mirrored["image1"], plain["image1"].flip(-1))


def test_csv_errors_name_file_and_line(root):
    csv = root / "test_pairs_pf_pascal.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([lines[0], lines[1], lines[2].replace(";", ";x", 1)]) + "\n")
    dataset = PFPascalDataModule(root=str(root)).dataset("test")
    with pytest.raises(UnreadableFileError, match=r"test_pairs_pf_pascal\.csv.*line 3, column XA"):
        dataset[1]
    csv.write_text("\n".join([lines[0], lines[1].replace(",8,", ",21,")]) + "\n")
    with pytest.raises(UnreadableFileError, match=r"line 2: class must be 1\.\.20"):
        PFPascalDataModule(root=str(root)).dataset("test")
    csv.write_text("\n".join([lines[0], "a.jpg,b.jpg"]) + "\n")
    with pytest.raises(UnreadableFileError, match="line 2: expected 7 columns"):
        PFPascalDataModule(root=str(root)).dataset("test")


def test_missing_csv_and_missing_folder_explain_the_layout(root, tmp_path):
    (root / "val_pairs_pf_pascal.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"no 'val' pair CSV \(tried .*val_pairs_pf_pascal\.csv"):
        PFPascalDataModule(root=str(root)).dataset("val")
    with pytest.raises(DatasetNotFoundError, match="PF-dataset-PASCAL.zip"):
        PFPascalDataModule(root=str(tmp_path / "nowhere")).dataset("test")


def test_verify_reports_what_is_missing(root):
    assert pfpascal.verify(root) == []
    (root / "PF-dataset-PASCAL" / "JPEGImages" / "2009_000004.jpg").unlink()
    (root / "PF-dataset-PASCAL" / "Annotations" / "cat" / "2009_000002.mat").unlink()
    problems = pfpascal.verify(root)
    assert any("test CSV" in p and "2009_000004.jpg" in p for p in problems)
    assert any("train CSV" in p and "cat/2009_000002.mat" in p for p in problems)
