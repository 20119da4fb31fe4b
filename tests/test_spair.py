"""SPair-71k datamodule on a fixture in the official layout: batch contract, resize bookkeeping, flips that
swap left/right ids, lazy annotation loading, bad-input errors, verify()."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from corrlab.datamodules import spair
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.keypoint_groups import SPAIR_FLIP_PAIRS, flip_permutation
from corrlab.datamodules.keypoint_pairs import mirror
from corrlab.datamodules.spair import SPairDataModule
from tests.helpers.semantic_fixtures import write_spair


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "SPair-71k"
    write_spair(path)
    return path


def test_sample_follows_the_keypoint_batch_contract(root):
    pairs = write_spair(root)
    sample = SPairDataModule(root=str(root)).dataset("test")[1]
    car = pairs["car"]
    assert sample["name"] == car.name and sample["category"] == "car"
    assert (
        sample["kpts0"].shape == (30, 2)
        and sample["kpts_valid"].shape == (30,)
        and sample["kpts_valid"].dtype == torch.bool
    )
    assert sample["kpts_valid"].nonzero()[:, 0].tolist() == car.ids
    assert torch.allclose(sample["kpts0"][car.ids], torch.tensor(car.src_kps, dtype=torch.float32))
    assert torch.allclose(sample["kpts1"][car.ids], torch.tensor(car.trg_kps, dtype=torch.float32))
    assert not sample["kpts0"][~sample["kpts_valid"]].any()  # empty slots are zero
    assert sample["kpts_visible1"].nonzero()[:, 0].tolist() == sorted(car.ids + car.trg_visible_extra)
    assert sample["bbox1"].tolist() == car.trg_bbox and sample["size0"].tolist() == [160, 220]
    assert sample["scale1"].tolist() == [1.0, 1.0] and sample["image0"].shape == (3, 160, 220)
    assert {k: sample[k] for k in car.flags} == car.flags


def test_resize_scales_keypoints_and_boxes_with_the_pixel_centre_convention(root):
    pairs = write_spair(root)
    sample = SPairDataModule(root=str(root), resize={"mode": "long", "size": 100}).dataset("test")[0]
    cat = pairs["cat"]  # 160 x 200 -> 80 x 100: scale 0.5
    assert sample["image0"].shape == (3, 80, 100) and sample["scale0"].tolist() == [0.5, 0.5]
    assert sample["size0"].tolist() == [160, 200]
    expected = (cat.src_kps + 0.5) * 0.5 - 0.5
    assert torch.allclose(sample["kpts0"][cat.ids], torch.tensor(expected, dtype=torch.float32))
    assert sample["bbox0"].tolist() == [9.75, 4.75, 89.75, 74.75]  # (20, 10, 180, 150) resized


def test_flip_mirrors_x_and_swaps_left_right_ids(root):
    pairs = write_spair(root)
    dm = SPairDataModule(root=str(root), flip_probability=1.0, train_resize={"mode": "none"})
    flipped = dm.dataset("train")[0]
    plain = SPairDataModule(root=str(root), flip_probability=0.0, train_resize={"mode": "none"}).dataset("train")[0]
    cat = pairs["cat"]
    width = 200
    # cat ids 0<->1, 2<->3, 9<->10: annotated ids [0, 1, 2, 3, 9, 10] map onto themselves as a set
    swapped = {0: 1, 1: 0, 2: 3, 3: 2, 9: 10, 10: 9}
    for i, point in zip(cat.ids, cat.src_kps):
        assert flipped["kpts0"][swapped[i]].tolist() == pytest.approx([width - 1 - point[0], point[1]])
    assert flipped["kpts_valid"].nonzero()[:, 0].tolist() == cat.ids
    assert flipped["bbox0"].tolist() == [width - 1 - 180, 10, width - 1 - 20, 150]
    assert torch.equal(flipped["image0"], plain["image0"].flip(-1))
    visible = plain["kpts_visible1"].numpy()  # target-only id 11 becomes 12
    assert flipped["kpts_visible1"].numpy().tolist() == visible[flip_permutation(SPAIR_FLIP_PAIRS["cat"], 30)].tolist()
    assert flipped["kpts_visible1"][12] and not flipped["kpts_visible1"][11]


def test_mirroring_one_image_keeps_correspondences_semantic(root):
    pairs = write_spair(root)
    pair = SPairDataModule(root=str(root)).dataset("test").load(0)
    perm = np.arange(30)
    perm[[9, 10, 2, 20]] = [20, 2, 10, 9]  # a made-up left/right table: 9<->20, 10<->2
    one = mirror(pair, [True, False], perm, [200, 200])
    # the mirrored source's slots 2 and 10 hold ids 10 and 2 (both annotated in the target); its slot 20 holds
    # id 9, but id 20 is not annotated in the target, and its slot 9 holds the unannotated id 20
    assert one.valid.nonzero()[0].tolist() == [0, 1, 2, 3, 10]
    assert one.kpts0[10].tolist() == [199 - pairs["cat"].src_kps[2][0], pairs["cat"].src_kps[2][1]]  # id 2 -> slot 10
    assert np.array_equal(one.kpts1, pair.kpts1)


def test_training_batches_stack(root):
    dm = SPairDataModule(root=str(root), batch_size=1, train_resize={"mode": "fixed", "size": [64, 96]})
    batch = next(iter(dm.train_dataloader()))
    assert (
        batch["image0"].shape == (1, 3, 64, 96) and batch["kpts0"].shape == (1, 30, 2) and batch["category"] == ["cat"]
    )


def test_annotations_are_read_lazily(root, monkeypatch):
    for path in (root / "PairAnnotation" / "test").glob("*.json"):
        path.write_text('{"src_kps": [[1, 2]],\n  "trg_kps": oops}')
    monkeypatch.setattr(spair, "read_json", lambda path: pytest.fail(f"read {path} while building the index"))
    dataset = SPairDataModule(root=str(root)).dataset("test")  # the index is the pair names only
    assert dataset.names == ["000001-2010_000001-2010_000002:cat", "000002-2010_000003-2010_000004:car"]
    monkeypatch.undo()
    with pytest.raises(UnreadableFileError, match=r"000001-2010_000001-2010_000002:cat\.json.*line 2, column 14"):
        dataset[0]


def test_missing_key_names_file_and_key(root):
    path = next((root / "PairAnnotation" / "test").glob("*:car.json"))
    record = json.loads(path.read_text())
    del record["trg_bndbox"]
    path.write_text(json.dumps(record))
    with pytest.raises(UnreadableFileError, match=r":car\.json.*trg_bndbox"):
        SPairDataModule(root=str(root)).dataset("test")[1]


def test_missing_root_names_the_layout_and_the_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        SPairDataModule(root=str(tmp_path / "nowhere")).dataset("test")
    message = str(error.value)
    assert "PairAnnotation/{trn,val,test}" in message and "SPair-71k.tar.gz" in message and "data.root=" in message


def test_missing_image_is_named_or_skipped_and_counted(root):
    (root / "JPEGImages" / "car" / "2010_000004.jpg").unlink()
    with pytest.raises(UnreadableFileError, match=r"1 image\(s\).*car/2010_000004\.jpg.*skip_missing"):
        SPairDataModule(root=str(root)).dataset("test")
    dm = SPairDataModule(root=str(root), skip_missing=True)
    assert dm.pair_names("test") == ["000001-2010_000001-2010_000002:cat"]
    skipped = dm.make_benchmark("test").spec()["skipped"]
    assert skipped == {"count": 1, "names": ["000002-2010_000003-2010_000004:car"]}


def test_image_that_disagrees_with_its_annotation_is_named(root):
    path = root / "PairAnnotation" / "test" / "000001-2010_000001-2010_000002:cat.json"
    record = json.loads(path.read_text())
    record["src_imsize"] = [100, 100, 3]
    path.write_text(json.dumps(record))
    with pytest.raises(UnreadableFileError, match=r"2010_000001\.jpg.*\(160, 200\).*\(100, 100\)"):
        SPairDataModule(root=str(root)).dataset("test")[0]


def test_empty_split_and_bad_layout_lines_are_errors(root):
    (root / "Layout" / "large" / "val.txt").write_text("\n")
    with pytest.raises(ValueError, match="'val' split is empty"):
        SPairDataModule(root=str(root)).dataset("val")
    (root / "Layout" / "large" / "trn.txt").write_text("000001-2010_000001-2010_000002:cat\nnot a pair\n")
    with pytest.raises(UnreadableFileError, match=r"trn\.txt.*line 2"):
        SPairDataModule(root=str(root)).dataset("train")


def test_verify_reports_what_is_missing(root):
    assert spair.verify(root) == []
    (root / "ImageAnnotation" / "cat" / "2010_000002.json").unlink()
    (root / "Layout" / "large" / "val.txt").unlink()
    problems = spair.verify(root)
    assert any("val.txt" in p for p in problems)
    assert any("ImageAnnotation" in p and "cat/2010_000002.json" in p for p in problems)
    assert spair.verify(root / "nowhere") == [f"{root / 'nowhere'} does not exist"]


def test_fixture_image_is_the_shifted_crop(root):
    """The fixture's ground truth is exact: target pixel (x - dx, y - dy) shows source pixel (x, y)."""
    source = read_image(root / "JPEGImages" / "cat" / "2010_000001.jpg")
    target = read_image(root / "JPEGImages" / "cat" / "2010_000002.jpg")
    assert (source[:, 58:108, 66:166] - target[:, 50:100, 50:150]).abs().mean() < 0.02


def test_samples_carry_each_image_s_own_keypoints_mirrored_with_the_image(root):
    pairs = write_spair(root)
    cat = pairs["cat"]  # the target also shows id 11 at (5, 5), which the source lacks
    plain = SPairDataModule(root=str(root), flip_probability=0.0, train_resize={"mode": "none"}).dataset("train")[0]
    assert plain["kpts_image_valid1"].nonzero()[:, 0].tolist() == sorted(cat.ids + cat.trg_visible_extra)
    assert plain["kpts_image1"][11].tolist() == [5.0, 5.0] and not plain["kpts1"][11].any()
    assert torch.equal(plain["kpts_image1"][cat.ids], plain["kpts1"][cat.ids])
    assert torch.equal(plain["kpts_image_valid0"], plain["kpts_valid"])  # the source shows only the pair's ids
    flipped = SPairDataModule(root=str(root), flip_probability=1.0, train_resize={"mode": "none"}).dataset("train")[0]
    assert flipped["kpts_image1"][12].tolist() == [200 - 1 - 5.0, 5.0]  # id 11 becomes 12 (cat 11 <-> 12)
    assert flipped["kpts_image_valid1"][12] and not flipped["kpts_image_valid1"][11]
