"""The semantic benchmarks own their parameters (benchmark.convention / threshold / alphas): today's summaries are
reproduced through them, they are recorded in the spec, and the old data.<key> spellings name the new key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from corrlab.config.overrides import UnknownConfigKeyError, check_overrides
from corrlab.config.schema import CONFIG_DIR
from corrlab.datamodules.spair import SPairDataModule
from corrlab.pipeline.evaluate import evaluate
from tests.conftest import compose_config
from tests.helpers.semantic_fixtures import write_pfpascal, write_spair

RECORDED = json.loads((Path(__file__).parent / "data" / "semantic_summaries_70d8935.json").read_text())["runs"]
# errors along x (original pixels) per valid keypoint of each category, as recorded
SHIFTS = {
    "spair": {"cat": [0.0, 3.0, 8.0, 9.0, 16.0, 20.0], "car": [0.0, 3.0, 8.0, 9.0, 16.0]},
    "pfpascal": {"cat": [0.0, 3.0, 8.0, 12.0], "bottle": [0.0, 5.0, 9.0]},
}
# the runs recorded before the move, written with the new keys (the old ones were data.<same key>)
RUNS = {
    "spair_default": ("spair", []),
    "spair_dm_image": (
        "spair",
        ["benchmark.convention=densematching", "benchmark.threshold=image", "benchmark.alphas=[0.02,0.05,0.1]"],
    ),
    "pfpascal_default": ("pfpascal", ["benchmark.alphas=[0.03,0.05,0.1]"]),
    "pfpascal_dm": ("pfpascal", ["benchmark.convention=densematching", "benchmark.alphas=[0.03,0.05]"]),
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("semantic")
    write_spair(base / "SPair-71k")
    write_pfpascal(base / "pf-pascal")
    return {"spair": base / "SPair-71k", "pfpascal": base / "pf-pascal"}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_summaries_recorded_before_the_move_are_reproduced(roots, tmp_path, run):
    data, protocol = RUNS[run]
    overrides = ["model=sift", f"data={data}", f"data.root={roots[data]}", "num_figures=0", "save_predictions=false"]
    cfg = compose_config("eval", [*overrides, *protocol], tmp_path)
    with open_dict(cfg):
        cfg.model = OmegaConf.create(
            {"_target_": "tests.helpers.oracle_transfer.OracleTransfer", "shift_px": SHIFTS[data]}
        )
    summary = evaluate(cfg)
    assert summary["metrics"] == RECORDED[run]["metrics"]  # exactly
    spec = {k: v for k, v in summary["protocol"]["spec"].items() if k not in ("root", "pairs_csv")}
    expected = dict(RECORDED[run]["spec"], benchmark="pfpascal_pck" if data == "pfpascal" else "semantic_pck")
    assert json.loads(json.dumps(spec)) == expected
    recorded = json.loads((tmp_path / "summary.json").read_text())["data"]["benchmark"]
    assert recorded["convention"] == ("densematching" if "dm" in run else "geoaware")


def test_each_dataset_defaults_to_its_threshold_base(tmp_path):
    spair = compose_config("eval", ["data=spair"], tmp_path)
    pascal = compose_config("eval", ["data=pfpascal"], tmp_path)
    assert (spair.benchmark.name, spair.benchmark.threshold) == ("semantic_pck", "bbox")
    assert (pascal.benchmark.name, pascal.benchmark.threshold) == ("pfpascal_pck", "image")
    assert "convention" not in spair.data and "alphas" not in pascal.data


@pytest.mark.parametrize(
    ("override", "new"),
    [
        ("data.convention=densematching", "benchmark.convention=densematching"),
        ("data.alphas=[0.1]", "benchmark.alphas=[0.1]"),
    ],
)
def test_an_old_data_key_names_the_new_one(override, new):
    message = re.escape(f"'{override.split('=')[0]}' moved: write {new} ")
    with pytest.raises(UnknownConfigKeyError, match=message):
        check_overrides(CONFIG_DIR, "eval", ["data=spair", override])


def test_the_datamodule_refuses_the_moved_options(tmp_path):
    with pytest.raises(TypeError, match=r"data.threshold moved to the benchmark: write benchmark.threshold=image"):
        SPairDataModule(root=str(tmp_path), threshold="image")
