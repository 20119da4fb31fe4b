"""data_pairs: the Patch2Pix training-pair recipe on the MegaDepth fixture, and the released-file converter."""

from __future__ import annotations

import math
import shutil
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from corrlab.data_pairs import from_patch2pix, megadepth_pairs
from corrlab.datamodules.megadepth import MegaDepthDataModule
from corrlab.datamodules.posed_index import load_pair_list
from tests.helpers.megadepth_fixture import write_megadepth


@pytest.fixture(scope="module")
def megadepth_root(tmp_path_factory) -> Path:
    return write_megadepth(tmp_path_factory.mktemp("megadepth"))


def build(root: Path, out: Path, *extra: str) -> dict:
    return megadepth_pairs.run(["--root", str(root), "--out", str(out), *extra])


def test_recipe_filters_excludes_test_scenes_and_writes_a_validation_list(megadepth_root, tmp_path):
    summary = build(megadepth_root, tmp_path)
    train, meta = load_pair_list(tmp_path / "train.npz")
    # 0001: 10 ordered pairs pass overlap [0.35, 1) and aspect [1.3, 1.7]; 0015: 4; 0024 is an excluded test scene
    assert len(train) == 14 and set(train.pair_scenes()) == {"0001", "0015"}
    assert meta["recipe"] == {
        "min_overlap": 0.35,
        "max_overlap": 1.0,
        "max_scale_ratio": math.inf,
        "aspect_range": [1.3, 1.7],
        "max_sampson": 1.0,
    }
    assert meta["excluded_scenes"] == sorted(["0024", "0021", "0025", "1589", "0019", "0008", "0032", "0063"])
    val, val_meta = load_pair_list(tmp_path / "val.npz")
    assert val.pair_names() == ["0024/0024_00-0024_01", "0024/0024_01-0024_00"] and val_meta["split"] == "val"
    assert summary["train"]["pairs"] == 14 and summary["train"]["overlap_histogram"]["0.35-0.45"] == 6


def test_pairs_per_scene_is_a_seeded_draw(megadepth_root, tmp_path):
    names = []
    for seed, out in ((0, "a"), (0, "b"), (1, "c")):
        build(megadepth_root, tmp_path / out, "--pairs-per-scene", "3", "--seed", str(seed))
        index, _ = load_pair_list(tmp_path / out / "train.npz")
        assert (index.pair_scenes() == "0001").sum() == 3 and (index.pair_scenes() == "0015").sum() == 3
        names.append(index.pair_names())
    assert names[0] == names[1] and names[0] != names[2]


def test_sampson_check_rejects_pairs_with_a_wrong_pose(megadepth_root, tmp_path):
    """Image 1 of scene 0001 gets a pose pitched by 1 degree: its SfM matches no longer fit the GT F
    (mean squared Sampson distance 15-19 px^2), so the pairs (0,1), (1,2), (1,4) in both orders go."""
    root = Path(shutil.copytree(megadepth_root, tmp_path / "copy"))
    info = dict(np.load(root / "scene_info" / "0001.npz", allow_pickle=True))
    a = math.radians(1.0)
    pose = info["poses"][1].copy()
    pose[:3, :3] = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]]) @ pose[:3, :3]
    info["poses"][1] = pose
    np.savez(root / "scene_info" / "0001.npz", **info)
    build(root, tmp_path / "out")
    index, _ = load_pair_list(tmp_path / "out" / "train.npz")
    assert sorted(n for n in index.pair_names() if n.startswith("0001")) == sorted(
        ["0001/0001_00-0001_02", "0001/0001_02-0001_00", "0001/0001_02-0001_04", "0001/0001_04-0001_02"]
    )
    build(root, tmp_path / "nocheck", "--max-sampson", "-1")
    assert (load_pair_list(tmp_path / "nocheck" / "train.npz")[0].pair_scenes() == "0001").sum() == 10


def test_missing_scene_info_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["megadepth_pairs", "--root", str(tmp_path), "--out", str(tmp_path / "o")])
    assert megadepth_pairs.main() == 1
    assert "no scene_info folder" in capsys.readouterr().err


def test_patch2pix_release_file_converts_to_the_same_cameras(megadepth_root, tmp_path):
    """A file in Patch2Pix's released format (dict of argparse.Namespace, names without Undistorted_SfM/,
    R and t of camera 1 -> camera 2) converts to pairs whose T_0to1 and K match the scene_info."""
    info = np.load(megadepth_root / "scene_info" / "0001.npz", allow_pickle=True)
    pairs = []
    for i, j in [(0, 1), (2, 4)]:
        T = info["poses"][j] @ np.linalg.inv(info["poses"][i])
        pairs.append(
            Namespace(
                im1=f"0001/images/0001_0{i}.jpg",
                im2=f"0001/images/0001_0{j}.jpg",
                overlap=0.5,
                K1=info["intrinsics"][i],
                K2=info["intrinsics"][j],
                R=T[:3, :3],
                t=T[:3, 3],
                q=None,
                crop1=(0, 0),
                crop2=(0, 0),
            )
        )
    np.save(tmp_path / "p2p.npy", {"0001": {"ims": [], "pairs": pairs}})
    assert from_patch2pix.main([str(tmp_path / "p2p.npy"), "--out", str(tmp_path / "train.npz")]) == 0
    index, meta = load_pair_list(tmp_path / "train.npz")
    assert index.pair_names() == ["0001/0001_00-0001_01", "0001/0001_02-0001_04"] and "p2p.npy" in meta["source"]
    assert index.depths[0] == "phoenix/S6/zl548/MegaDepth_v1/0001/dense0/depths/0001_00.h5"
    K0, K1, T = index.cameras(1)
    assert np.allclose(T, info["poses"][4] @ np.linalg.inv(info["poses"][2])) and np.allclose(K1, info["intrinsics"][4])
    dm = MegaDepthDataModule(
        root=str(megadepth_root),
        train_pairs=str(tmp_path / "train.npz"),
        pairs_per_scene=None,
        load_depth=True,
        train_resize={"mode": "fixed", "size": [160, 240]},
    )
    assert dm.dataset("train")[1]["depth1"].shape == (160, 240)
    (tmp_path / "bad.npy").write_bytes(b"junk")
    assert from_patch2pix.main([str(tmp_path / "bad.npy"), "--out", str(tmp_path / "x.npz")]) == 1
