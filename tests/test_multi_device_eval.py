"""eval.py devices=2: two gloo processes on CPU export the predictions of a tiny random model on synthetic pairs,
gathered into the run's single predictions.h5 in pair order; the numbers equal one device's."""

from __future__ import annotations

import json
from urllib.parse import quote

import h5py
import numpy as np
import pytest
from omegaconf import OmegaConf, open_dict

from corrlab.pipeline.evaluate import evaluate
from tests.conftest import compose_config

TINY = {"_target_": "tests.helpers.tiny_matcher.TinyMatcher", "dim": 8}
DATA = ["data=synthetic", "data.num_test_pairs=5", "data.image_size=[48,64]", "num_figures=0"]  # 5: shares 3 + 2


def run(tmp_path, name: str, *overrides: str) -> dict:
    cfg = compose_config("eval", ["allow_random_weights=true", "device=cpu", *DATA, *overrides], tmp_path / name)
    with open_dict(cfg):
        cfg.model = OmegaConf.create(TINY)
    return evaluate(cfg)


@pytest.mark.slow
def test_two_processes_export_one_cache_in_pair_order_with_one_devices_numbers(tmp_path):
    one = run(tmp_path, "one")
    two = run(tmp_path, "two", "devices=2")
    assert two["metrics"] == one["metrics"] and two["metrics"]["num_pairs"] == 5
    assert two["predictions"]["devices"] == 2 and two["predictions"]["predicted"] == 5
    with h5py.File(tmp_path / "one" / "predictions.h5") as a, h5py.File(tmp_path / "two" / "predictions.h5") as b:
        names = [json.loads(line)["name"] for line in (tmp_path / "one" / "per_pair.jsonl").read_text().splitlines()]
        # the pair order is neither the names' sorted order (an HDF5 group without track_order) nor the shards'
        # (rank 0's pairs 0, 2, 4, then rank 1's 1, 3): a merge in either order fails the next line
        assert names != sorted(names) and names != names[0::2] + names[1::2]
        assert list(b["match"]) == [quote(n, safe="") for n in names]  # the merged cache keeps the pair order
        for key in b["match"]:
            for field in ("kpts0", "kpts1", "scores"):
                np.testing.assert_array_equal(a["match"][key][field][()], b["match"][key][field][()])
    assert not list((tmp_path / "two").glob(".shards_*"))  # the shard files are gone


def test_several_devices_need_the_cache(tmp_path):
    with pytest.raises(ValueError, match="devices=2 gathers the predictions in predictions.h5"):
        run(tmp_path, "no_cache", "devices=2", "save_predictions=false")
