"""Files that may hold pickles load without running code: checkpoints with weights_only=True, official
index pickles through a restricted unpickler; a crafted pickle is refused and its code never runs."""

from __future__ import annotations

import argparse
import pickle
import random

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from corrlab.data_pairs import from_patch2pix
from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.eth3d_index import load_pairs_file
from corrlab.datamodules.megadepth_index import SCENE_INFO_KEYS, load_index_file
from corrlab.models.patch2pix.pipeline import load_ncnet_initialisation
from corrlab.models.pump import cli as pump_cli
from corrlab.pipeline.evaluate import load_weights
from corrlab.safe_loading import UnsafeFileError, load_npz, load_pickle
from tests.conftest import shared_data
from tests.helpers.tiny_matcher import TinyMatcher


class Marker:
    """Unpickling it creates the file `path` (a harmless stand-in for code in a malicious file)."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class OfficialTiny(TinyMatcher):
    """A module whose official format is its plain state_dict, loaded as the real modules do."""

    def load_official(self, path) -> None:
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def eval_cfg(**values):
    return OmegaConf.create({"ckpt_path": None, "weights": None, "allow_random_weights": False, **values})


def lightning_like(tmp_path, extra=None):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": TinyMatcher().state_dict(), "pytorch-lightning_version": "2.5", **(extra or {})}, path)
    return path


def test_ckpt_path_with_code_in_it_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "marker"
    path = lightning_like(tmp_path, {"callbacks": Marker(marker)})
    with pytest.raises(UnsafeFileError) as error:
        load_weights(TinyMatcher(), eval_cfg(ckpt_path=str(path)))
    message = str(error.value)
    assert str(path) in message and "io.open" in message and "weights_only=False" not in message
    assert not marker.exists()


def test_a_plain_corrlab_checkpoint_still_loads(tmp_path):
    module = TinyMatcher()
    path = lightning_like(tmp_path)
    (record,) = load_weights(module, eval_cfg(ckpt_path=str(path)))
    assert record["role"] == "ckpt_path" and record["format"].startswith("corrlab Lightning checkpoint")


def test_official_checkpoint_as_ckpt_path_says_use_weights(tmp_path):
    path = tmp_path / "PUMP.pt"
    torch.save(TinyMatcher().state_dict(), path)  # the official format: a bare state_dict
    with pytest.raises(ValueError, match="PUMP.pt' is not a corrlab .*use weights=<path>"):
        load_weights(TinyMatcher(), eval_cfg(ckpt_path=str(path)))


NOT_CHECKPOINTS = {
    **{f"random{seed}": random.Random(seed).randbytes(3000) for seed in range(8)},
    "tuple-opcode": b"t." + random.Random(0).randbytes(300),  # the unpickler pops a missing mark: IndexError
    "zip": b"PK\x03\x04" + random.Random(1).randbytes(300),
}


@pytest.mark.parametrize("content", list(NOT_CHECKPOINTS.values()), ids=list(NOT_CHECKPOINTS))
def test_random_bytes_as_weights_say_not_a_checkpoint_without_torch_advice(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError) as error:
        load_weights(OfficialTiny(), eval_cfg(weights=str(path)))
    message = str(error.value)
    assert str(path) in message and "not a valid checkpoint file" in message
    assert "weights_only=False" not in message and "Re-running" not in message
    with pytest.raises(SystemExit, match="--weights: not a valid checkpoint"):
        pump_cli.main(["--img1", "a.jpg", "--img2", "b.jpg", "--weights", str(path), "--output", str(tmp_path / "o")])


def test_ncnet_weights_checkpoint_with_code_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = lightning_like(tmp_path, {"loops": Marker(marker)})
    with pytest.raises(UnsafeFileError, match="model.ncnet_weights"):
        load_ncnet_initialisation(None, path)
    assert not marker.exists()


def test_scene_info_pickles_with_code_are_refused(tmp_path):
    marker = tmp_path / "marker"
    info = {key: np.array([f"{key}0", None], dtype=object) for key in SCENE_INFO_KEYS}
    loftr = tmp_path / "0015_0.1_0.3.npz"  # LoFTR's test-1500 format: a pickled dict under an .npz name
    loftr.write_bytes(pickle.dumps({**info, "pair_infos": np.array([Marker(marker)], dtype=object)}))
    d2net = tmp_path / "d2net.npz"  # D2-Net's scene_info: an .npz archive of object arrays
    np.savez(d2net, **{**info, "image_paths": np.array([Marker(marker)], dtype=object)})
    eth3d = tmp_path / "lakeside_every_5_rate_of_3"
    eth3d.write_bytes(pickle.dumps([{"source_image": Marker(marker)}]))
    patch2pix = tmp_path / "pairs.npy"
    np.save(patch2pix, np.array({"0015": {"pairs": [argparse.Namespace(im1=Marker(marker))]}}, dtype=object))
    with pytest.raises(UnsafeFileError, match="0015_0.1_0.3.npz.*refused to unpickle io.open"):
        load_index_file(loftr, ["pair_infos"])
    with pytest.raises(UnsafeFileError, match="d2net.npz.*io.open"):
        load_index_file(d2net, SCENE_INFO_KEYS)
    with pytest.raises(UnsafeFileError, match="rate_of_3.*io.open"):
        load_pairs_file(eth3d)
    assert from_patch2pix.main([str(patch2pix), "--out", str(tmp_path / "train.npz")]) == 1
    assert not marker.exists()
    assert list(load_index_file(d2net, ["depth_paths"])["depth_paths"]) == ["depth_paths0", None]  # plain entries load


def test_real_loftr_and_d2net_style_indices_load_as_numpy_reads_them():
    for path in [
        *sorted(shared_data("megadepth", "loftr_test1500_scene_info").glob("*.npz")),
        shared_data("megadepth", "loftr_pytorch_sample", "sample.npz"),
    ]:
        ours = load_pickle(path) if path.stem != "sample" else load_npz(path)
        reference = np.load(path, allow_pickle=True)
        reference = dict(reference) if not isinstance(reference, dict) else reference
        assert sorted(ours) == sorted(reference)
        assert all(repr(ours[k]) == repr(reference[k]) for k in reference), path


def test_dense_flow_model_zoo_file_with_code_is_refused(tmp_path):
    from corrlab.models.dense_flow.official import read_checkpoint

    marker = tmp_path / "marker"
    path = tmp_path / "GLUNet_GOCor_static.pth"
    torch.save({"state_dict": TinyMatcher().state_dict(), "args": Marker(marker)}, path)
    with pytest.raises(UnsafeFileError, match="GLUNet_GOCor_static.pth"):
        read_checkpoint(path)
    assert not marker.exists()
