"""Bad annotations name their file; `corrlab-data verify` parses what loading parses, for the splits asked."""

from __future__ import annotations

import json
import random

import pytest

from corrlab.datamodules import pfpascal, spair
from corrlab.datamodules.catalog import get
from corrlab.datamodules.catalog.cli import main as data_cli
from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.pfpascal import PFPascalDataModule
from corrlab.datamodules.spair import SPairDataModule
from tests.helpers.hpatches_fixture import write_hpatches
from tests.helpers.megadepth_fixture import write_megadepth
from tests.helpers.semantic_fixtures import write_pfpascal, write_spair

CAT_PAIR = "000001-2010_000001-2010_000002:cat"


@pytest.fixture
def spair_root(tmp_path):
    write_spair(tmp_path / "SPair-71k")
    return tmp_path / "SPair-71k"


@pytest.fixture
def pascal_root(tmp_path):
    write_pfpascal(tmp_path / "pf-pascal")
    return tmp_path / "pf-pascal"


def null_keypoint(path):
    record = json.loads(path.read_text())
    record["src_kps"][1] = None
    path.write_text(json.dumps(record))


def test_null_keypoint_in_spair_names_the_file(spair_root):
    null_keypoint(spair_root / "PairAnnotation" / "test" / f"{CAT_PAIR}.json")
    with pytest.raises(UnreadableFileError, match=rf"{CAT_PAIR}\.json.*keypoint 1 is None, expected \[x, y\]"):
        SPairDataModule(root=str(spair_root)).dataset("test")[0]


def test_pfpascal_csv_of_random_bytes_names_the_file(pascal_root):
    (pascal_root / "test_pairs_pf_pascal.csv").write_bytes(random.Random(0).randbytes(2000) + b"\xff\xfe")
    with pytest.raises(UnreadableFileError, match=r"test_pairs_pf_pascal\.csv.*not a text CSV"):
        PFPascalDataModule(root=str(pascal_root)).dataset("test")


def test_spair_verify_parses_annotations_and_checks_only_the_asked_split(spair_root):
    assert spair.verify(spair_root) == []
    null_keypoint(spair_root / "PairAnnotation" / "test" / f"{CAT_PAIR}.json")
    (problem,) = spair.verify(spair_root)
    assert problem.startswith("test.txt: 1 pair annotation(s) do not load") and "keypoint 1 is None" in problem
    assert spair.verify(spair_root, ["val"]) == []
    (spair_root / "Layout" / "large" / "trn.txt").unlink()
    assert spair.verify(spair_root, ["val"]) == [] and len(spair.verify(spair_root, ["train"])) == 1
    assert data_cli(["verify", "spair", str(spair_root), "--split", "val"]) == 0
    assert data_cli(["verify", "spair", str(spair_root), "--split", "test"]) == 1
    assert data_cli(["verify", "spair", str(spair_root), "--split", "tset"]) == 2


def test_a_folder_in_place_of_an_annotation_fails_verify(spair_root):
    path = spair_root / "ImageAnnotation" / "cat" / "2010_000001.json"
    path.unlink()
    path.mkdir()
    problems = spair.verify(spair_root, ["test"])
    assert any("cat/2010_000001.json" in p for p in problems)


def test_pfpascal_val_csv_without_keypoints_needs_the_mat_files(pascal_root):
    """NCNet's val CSV has no XA..YB columns: its keypoints come from the .mat files, as the training CSV's."""
    (pascal_root / "val_pairs_pf_pascal.csv").write_text(
        "source_image,target_image,class\n"
        "PF-dataset-PASCAL/JPEGImages/2009_000001.jpg,PF-dataset-PASCAL/JPEGImages/2009_000002.jpg,8\n"
    )
    assert pfpascal.verify(pascal_root, ["val"]) == []
    (pascal_root / "PF-dataset-PASCAL" / "Annotations" / "cat" / "2009_000002.mat").unlink()
    (problem,) = pfpascal.verify(pascal_root, ["val"])
    assert "for the val CSV (it has no keypoint columns)" in problem and "cat/2009_000002.mat" in problem
    assert pfpascal.verify(pascal_root, ["test"]) == []


def test_pfpascal_verify_parses_the_csv_coordinates(pascal_root):
    csv = pascal_root / "test_pairs_pf_pascal.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([lines[0], lines[1].replace(";", ";x", 1), lines[2]]) + "\n")
    (problem,) = pfpascal.verify(pascal_root, ["test"])
    assert "the test CSV: 1 pair annotation(s) do not load" in problem and "line 2, column XA" in problem


def test_hpatches_verify_parses_the_homographies(tmp_path):
    root = write_hpatches(tmp_path / "hp", num_images=6, size=(40, 50))
    (root / "v_fixture" / "H_1_4").write_text("1 0 0\n0 nan 0\n0 0 1\n")
    (root / "i_fixture" / "H_1_2").unlink()
    (root / "i_fixture" / "H_1_2").mkdir()
    check = get("hpatches").verify(root).checks[-1]
    assert not check.ok and check.num_missing == 1 and "v_fixture/H_1_4" in check.missing[0]
    assert check.detail == "8 of 9 present files parse"  # the folder H_1_2 is not a file: its own check fails


def test_megadepth_verify_parses_scene_infos(tmp_path):
    root = write_megadepth(tmp_path / "megadepth")
    assert get("megadepth").verify(root).ok("train")
    (root / "scene_info" / "9999.npz").mkdir()  # a folder in place of a scene info: it used to pass
    report = get("megadepth").verify(root)
    check = next(c for c in report.checks if c.what == "scene_info files parse")
    assert not report.ok("train") and check.num_missing == 1 and "9999.npz" in check.missing[0]
