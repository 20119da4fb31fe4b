"""data=megadepth on a fixture written in the official D2-Net / LoFTR layouts (tests/helpers/megadepth_fixture.py)."""

from __future__ import annotations

import logging
import pickle
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.megadepth import MegaDepthDataModule
from corrlab.datamodules.megadepth_dataset import top_left_crop
from corrlab.datamodules.megadepth_index import megadepth1500_pairs, scene_info_pairs
from corrlab.datamodules.posed_index import load_pair_list, save_pair_list
from corrlab.datamodules.sampling import ResumableDataLoader
from corrlab.datamodules.scene_sampler import ScenePairSampler
from corrlab.geometry.depth import reproject_points
from tests.helpers.megadepth_fixture import write_megadepth

SMALL = {"mode": "fixed", "size": [160, 240]}


@pytest.fixture(scope="module")
def megadepth_root(tmp_path_factory) -> Path:
    return write_megadepth(tmp_path_factory.mktemp("megadepth"))


def datamodule(root: Path, **kwargs) -> MegaDepthDataModule:
    defaults = dict(
        aspect_range=[1.3, 1.7],
        crop_aspect=1.5,
        train_resize=SMALL,
        pairs_per_scene=3,
        batch_size=2,
        eval_resize={"mode": "long", "size": 240},
    )
    return MegaDepthDataModule(root=str(root), **{**defaults, **kwargs})


def writable_copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "copy"))


def test_scene_info_filters_by_overlap_and_aspect(megadepth_root):
    # scene 0001 overlaps (fixture): (0,4)=0.2 and (3,4)=0.3 fall below 0.35 -> 8 unordered pairs, both orders kept
    index = scene_info_pairs(megadepth_root / "scene_info" / "0001.npz")
    assert len(index) == 16 and len(set(index.pair_names())) == 16
    assert index.pair_name(0) == "0001/0001_00-0001_01" and index.overlap[0] == pytest.approx(0.6)
    # image 3 is portrait (w/h = 0.67): the aspect filter leaves pairs among 0, 1, 2, 4 -> (0,1) (0,2) (1,2) (1,4) (2,4)
    index = scene_info_pairs(megadepth_root / "scene_info" / "0001.npz", aspect_range=[1.3, 1.7])
    assert sorted(index.pair_names()) == sorted(
        f"0001/0001_0{a}-0001_0{b}" for a, b in [(0, 1), (0, 2), (1, 2), (1, 4), (2, 4)] for a, b in [(a, b), (b, a)]
    )
    assert len(scene_info_pairs(megadepth_root / "scene_info" / "0001.npz", min_overlap=0.5, max_overlap=0.9)) == 2 * 4


def test_relative_pose_is_world_to_camera_composition(megadepth_root):
    index = scene_info_pairs(megadepth_root / "scene_info" / "0001.npz")
    info = np.load(megadepth_root / "scene_info" / "0001.npz", allow_pickle=True)
    K0, K1, T = index.cameras(0)  # pair (0, 1)
    assert np.allclose(T, info["poses"][1] @ np.linalg.inv(info["poses"][0]))
    assert np.allclose(K0, info["intrinsics"][0]) and np.allclose(K1, info["intrinsics"][1])


def test_train_split_excludes_test_scenes_and_draws_per_scene_each_epoch(megadepth_root):
    dm = datamodule(megadepth_root)
    dataset = dm.dataset("train")
    assert set(dataset.index.pair_scenes()) == {"0001", "0015"}  # 0024 is one of Patch2Pix's excluded scenes
    assert len(dataset) == 10 + 4
    loader = dm.train_dataloader()
    sampler = loader.sampler
    assert isinstance(loader, ResumableDataLoader) and isinstance(sampler, ScenePairSampler)
    assert len(sampler) == 3 + 3 and len(loader) == 3
    epochs = [sampler.draw(e) for e in range(4)]
    for chosen in epochs:
        scenes = dataset.index.pair_scenes()[chosen]
        assert len(set(chosen.tolist())) == 6 and (scenes == "0001").sum() == 3 and (scenes == "0015").sum() == 3
    assert len({tuple(sorted(c.tolist())) for c in epochs}) > 1  # resampled across epochs
    assert np.array_equal(ScenePairSampler(dataset, dataset.index.pair_scenes(), 3, seed=0).draw(2), epochs[2])
    sampler.set_epoch(2)
    assert list(iter(sampler)) == epochs[2].tolist() == list(iter(sampler))  # the epoch, not the iteration, decides


def test_scene_sampler_shards_the_epoch_draw_across_ranks():
    scenes = ["a"] * 10 + ["b"] * 4
    dataset = list(range(len(scenes)))
    draw = ScenePairSampler(dataset, scenes, 2, seed=3).draw(1).tolist()
    ranks = [ScenePairSampler(dataset, scenes, 2, seed=3, num_replicas=3, rank=r) for r in range(3)]
    for sampler in ranks:
        sampler.set_epoch(1)
    assert [list(s) for s in ranks] == [draw[0:3:3], draw[1:3:3], draw[2:3:3]] and len(ranks[0]) == 1
    assert len(ScenePairSampler(dataset, scenes, None)) == 14


def test_training_batch_follows_the_contract(megadepth_root):
    dm = datamodule(megadepth_root, load_depth=True)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image0"].shape == (2, 3, 160, 240) and batch["image1"].shape == (2, 3, 160, 240)
    assert (
        batch["K0"].shape == (2, 3, 3) and batch["T_0to1"].shape == (2, 4, 4) and batch["T_0to1"].dtype == torch.float32
    )
    assert batch["depth0"].shape == (2, 160, 240) and len(batch["name"]) == 2
    assert {"size0", "size1", "scale0", "scale1"} <= batch.keys()


def test_top_left_crop_is_the_largest_3_to_2_window():
    assert top_left_crop(240, 320, 1.5) == (212, 318)  # 4:3 -> crop the height (w = 3k with k = 106)
    assert top_left_crop(240, 400, 1.5) == (240, 360)  # wider than 3:2 -> crop the width
    assert top_left_crop(240, 360, 1.5) == (240, 360)


def test_cropped_resized_cameras_and_depth_agree_with_the_pixels(megadepth_root):
    """Depth reprojection through the batch K0, T_0to1, K1 lands on the same scene point: colours agree and
    depth is consistent, for a 4:3 image cropped to 3:2 and resized (0001 pair 1-2)."""
    dm = datamodule(megadepth_root, load_depth=True)
    dataset = dm.dataset("train")
    i = dataset.index.pair_names().index("0001/0001_01-0001_02")
    sample = dataset[i]
    assert sample["size1"].tolist() == [212, 318]
    assert torch.allclose(sample["scale1"], torch.tensor([240 / 318, 160 / 212]))
    ys, xs = torch.meshgrid(torch.arange(8, 152, 4.0), torch.arange(8, 232, 4.0), indexing="ij")
    kpts0 = torch.stack([xs.ravel(), ys.ravel()], 1)
    kpts1, valid = reproject_points(
        kpts0, sample["depth0"], sample["K0"], sample["T_0to1"], sample["K1"], sample["depth1"]
    )
    assert valid.float().mean() > 0.5

    def colours(image, points):
        h, w = image.shape[-2:]
        grid = torch.stack([(points[:, 0] + 0.5) / w * 2 - 1, (points[:, 1] + 0.5) / h * 2 - 1], -1)
        return F.grid_sample(image[None], grid[None, None], align_corners=False)[0, :, 0].t()

    error = (colours(sample["image0"], kpts0[valid]) - colours(sample["image1"], kpts1[valid])).abs().mean()
    shuffled = (
        (colours(sample["image0"], kpts0[valid]) - colours(sample["image1"], kpts1[valid].roll(7, 0))).abs().mean()
    )
    assert error < 0.013 and shuffled > 3 * error  # measured 0.0087; a 0.5 px offset of kpts1 gives 0.018


def test_test_split_reads_the_loftr_index_at_the_eval_resolution(megadepth_root):
    dm = datamodule(megadepth_root)
    dataset = dm.dataset("test")
    assert dataset.pair_names() == ["0015/0015_00-0015_01", "0015/0015_00-0015_02", "0015/0015_01-0015_02"]
    sample = dataset[0]
    assert max(sample["image0"].shape[-2:]) == 240 and "depth0" not in sample
    spec = dm.make_benchmark("test").spec()
    assert (
        spec["pairs"]["count"] == 3
        and spec["index_files"] == ["0015_0.1_0.3.npz"]
        and spec["skipped_pairs"]["count"] == 0
    )
    assert spec["estimator"]["threshold_px"] == 0.5 and spec["estimator"]["confidence"] == 0.99999
    assert spec["resize"] == {"mode": "long", "size": 240, "divisible_by": 1}


def test_val_split_is_a_seeded_subset_or_a_pair_list(megadepth_root, tmp_path):
    assert len(datamodule(megadepth_root, val_max_pairs=2).dataset("val")) == 2
    names = datamodule(megadepth_root, val_max_pairs=2, seed=5).pair_names("val")
    assert names == datamodule(megadepth_root, val_max_pairs=2, seed=5).pair_names("val")
    path = save_pair_list(
        tmp_path / "val.npz", scene_info_pairs(megadepth_root / "scene_info" / "0024.npz"), {"split": "val"}
    )
    dm = datamodule(megadepth_root, val_pairs=str(path))
    assert dm.pair_names("val") == ["0024/0024_00-0024_01", "0024/0024_01-0024_00"]
    assert dm.make_benchmark("val").spec()["dataset"] == "megadepth"


def test_pair_list_round_trip_and_training_from_it(megadepth_root, tmp_path):
    index = scene_info_pairs(megadepth_root / "scene_info" / "0001.npz", aspect_range=[1.3, 1.7])
    path = save_pair_list(tmp_path / "train.npz", index, {"recipe": {"min_overlap": 0.35}})
    loaded, meta = load_pair_list(path)
    assert meta["format"] == "corrlab-posed-pairs/1" and meta["recipe"] == {"min_overlap": 0.35}
    assert loaded.pair_names() == index.pair_names()
    for i in range(len(index)):
        assert all(np.allclose(a, b) for a, b in zip(loaded.cameras(i), index.cameras(i)))
    dm = datamodule(megadepth_root, train_pairs=str(path), pairs_per_scene=None)
    assert len(dm.train_dataloader().sampler) == 10
    assert torch.equal(dm.dataset("train")[0]["T_0to1"], datamodule(megadepth_root).dataset("train")[0]["T_0to1"])


def test_malformed_pair_list_names_the_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UnreadableFileError, match="bad.npz"):
        load_pair_list(bad)
    np.savez(tmp_path / "other.npz", pairs=np.zeros((1, 2)))
    with pytest.raises(UnreadableFileError, match="other.npz.*missing arrays"):
        load_pair_list(tmp_path / "other.npz")


def test_missing_root_names_layout_and_how_to_prepare(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        MegaDepthDataModule(root=str(tmp_path / "nowhere")).dataset("train")
    message = str(error.value)
    assert "nowhere" in message and "scene_info/<scene>.npz" in message
    assert "corrlab-data verify megadepth" in message and "python -m corrlab.data_pairs.megadepth_pairs" in message
    with pytest.raises(DatasetNotFoundError, match="MegaDepth-1500 index"):
        MegaDepthDataModule(root=str(tmp_path)).dataset("test")


def test_missing_image_is_named_or_skipped_and_counted(megadepth_root, tmp_path):
    root = writable_copy(megadepth_root, tmp_path)
    (root / "Undistorted_SfM" / "0015" / "images" / "0015_02.jpg").unlink()
    with pytest.raises(UnreadableFileError, match=r"0015_02\.jpg.*2 of 3 pairs.*on_missing=skip"):
        datamodule(root).dataset("test")
    dm = datamodule(root, on_missing="skip")
    assert dm.pair_names("test") == ["0015/0015_00-0015_01"]
    skipped = dm.make_benchmark("test").spec()["skipped_pairs"]
    assert skipped == {"count": 2, "names": ["0015/0015_00-0015_02", "0015/0015_01-0015_02"]}


def test_missing_depth_matters_only_for_training_with_load_depth(megadepth_root, tmp_path):
    root = writable_copy(megadepth_root, tmp_path)
    (root / "phoenix/S6/zl548/MegaDepth_v1/0015/dense0/depths/0015_01.h5").unlink()
    assert len(datamodule(root).dataset("train")) == 14 and len(datamodule(root, load_depth=True).dataset("test")) == 3
    with pytest.raises(UnreadableFileError, match=r"0015_01\.h5"):
        datamodule(root, load_depth=True).dataset("train")
    assert len(datamodule(root, load_depth=True, on_missing="skip").dataset("train")) == 10 + 2


def test_everything_missing_is_an_error_not_an_empty_evaluation(megadepth_root, tmp_path):
    with pytest.raises(UnreadableFileError, match="nothing left to load"):
        datamodule(megadepth_root, test_root=str(tmp_path), on_missing="skip").dataset("test")
    with pytest.raises(ValueError, match="'train' split is empty"):
        datamodule(megadepth_root, scenes=["9999"]).dataset("train")


def test_corrupt_image_is_substituted_in_training_but_fails_evaluation(megadepth_root, tmp_path, caplog):
    root = writable_copy(megadepth_root, tmp_path)
    (root / "Undistorted_SfM" / "0015" / "images" / "0015_00.jpg").write_bytes(b"garbage")
    with pytest.raises(UnreadableFileError, match=r"0015_00\.jpg"):
        datamodule(root).dataset("test")[0]
    train = datamodule(root).dataset("train")
    broken = train.index.pair_names().index("0015/0015_00-0015_01")
    with caplog.at_level(logging.WARNING):
        sample = train[broken]
    assert sample["name"] != "0015/0015_00-0015_01" and "0015_00.jpg" in caplog.text


def test_malformed_scene_info_names_the_file(megadepth_root, tmp_path):
    root = writable_copy(megadepth_root, tmp_path)
    (root / "scene_info" / "0001.npz").write_bytes(b"\x00garbage")
    with pytest.raises(UnreadableFileError, match=r"0001\.npz"):
        datamodule(root).dataset("train")
    info = dict(np.load(megadepth_root / "scene_info" / "0015.npz", allow_pickle=True))
    del info["overlap_matrix"]
    np.savez(root / "scene_info" / "0015.npz", **info)
    with pytest.raises(UnreadableFileError, match=r"0015\.npz.*overlap_matrix"):
        scene_info_pairs(root / "scene_info" / "0015.npz")
    index_file = root / "megadepth_test_1500_scene_info" / "0015_0.1_0.3.npz"
    content = pickle.loads(index_file.read_bytes())
    content["pair_infos"].append(((np.array([0, 99]), 0.5, None)))
    index_file.write_bytes(pickle.dumps(content))
    with pytest.raises(UnreadableFileError, match=r"0015_0\.1_0\.3\.npz.*not listed"):
        megadepth1500_pairs(root / "megadepth_test_1500_scene_info")


def test_scene_tracks_are_never_loaded(tmp_path):
    """Building the training index reads overlap/cameras only: a scene whose SfM tracks take ~40 MB
    once unpickled costs a few MB at most."""
    n = 4
    tracks = np.array([{k: [1.0, 2.0] for k in range(60_000)} for _ in range(n)], dtype=object)
    overlap = np.full((n, n), 0.5)
    np.savez(
        tmp_path / "0100.npz",
        image_paths=np.array([f"Undistorted_SfM/0100/images/{i}.jpg" for i in range(n)], dtype=object),
        depth_paths=np.array([f"d/{i}.h5" for i in range(n)], dtype=object),
        intrinsics=np.array([np.eye(3)] * n + [None], dtype=object)[:-1],
        poses=np.array([np.eye(4)] * n + [None], dtype=object)[:-1],
        overlap_matrix=overlap,
        scale_ratio_matrix=overlap,
        points3D_id_to_2D=tracks,
        points3D_id_to_ndepth=tracks,
    )
    tracemalloc.start()
    index = scene_info_pairs(tmp_path / "0100.npz")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(index) == 12 and peak < 5e6
