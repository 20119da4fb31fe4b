"""The dense flow methods through eval.py's pipeline on the dataset fixtures (random weights: the path, the
protocol and the optim-iter override are what is tested; the numbers are not)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from corrlab.pipeline.evaluate import evaluate
from tests.conftest import compose_config
from tests.helpers.eth3d_fixture import write_eth3d
from tests.helpers.megadepth_fixture import write_megadepth

ETH3D_OVERRIDES = ["data.scenes=[lakeside]", "data.rates=[3]"]
FAST = ["allow_random_weights=true", "num_figures=0", "model.certainty=none", "model.sampler.num_matches=200"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["pwcnet_gocor", "glunet_gocor"])
def test_dense_flow_methods_on_the_eth3d_fixture(model, tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("CORRLAB_OPS", "cpp")
    root = write_eth3d(tmp_path_factory.mktemp("eth3d"))
    overrides = [f"model={model}", "data=eth3d", f"data.root={root}", "model.local_optim_iter=7", *FAST]
    cfg = compose_config("eval", [*overrides, *ETH3D_OVERRIDES], tmp_path)
    metrics = evaluate(cfg)["metrics"]
    assert metrics["num_pairs"] > 0 and math.isfinite(metrics["rate3/aepe"])


@pytest.mark.slow
def test_pwcnet_on_the_megadepth_fixture_through_sparse_matches(tmp_path_factory, tmp_path):
    root: Path = write_megadepth(tmp_path_factory.mktemp("megadepth"))
    overrides = ["model=pwcnet", "data=megadepth", f"data.root={root}", "data.eval_resize.size=256", *FAST]
    metrics = evaluate(compose_config("eval", overrides, tmp_path))["metrics"]
    assert metrics["num_pairs"] == 3 and all(math.isfinite(v) for v in metrics.values())
