"""eval.py / train.py end to end on the MegaDepth and ETH3D fixtures (SIFT, and a depth-supervised tiny model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import open_dict

from corrlab.geometry.depth import reproject_points
from corrlab.pipeline.evaluate import evaluate
from corrlab.pipeline.train import train
from tests.conftest import compose_config
from tests.helpers.eth3d_fixture import write_eth3d
from tests.helpers.megadepth_fixture import write_megadepth
from tests.helpers.paths import PROJECT_ROOT
from tests.helpers.tiny_matcher import TinyMatcher

ETH3D_OVERRIDES = ["data.scenes=[lakeside,delivery_area]", "data.rates=[3,5]"]


@pytest.fixture(scope="module")
def megadepth_root(tmp_path_factory) -> Path:
    return write_megadepth(tmp_path_factory.mktemp("megadepth"))


@pytest.fixture(scope="module")
def eth3d_root(tmp_path_factory) -> Path:
    return write_eth3d(tmp_path_factory.mktemp("eth3d"))


def test_sift_on_megadepth_fixture(megadepth_root, tmp_path):
    cfg = compose_config(
        "eval",
        ["model=sift", "data=megadepth", f"data.root={megadepth_root}", "data.eval_resize.size=360", "num_figures=1"],
        tmp_path,
    )
    summary = evaluate(cfg)
    metrics = summary["metrics"]
    assert metrics["num_pairs"] == 3 and metrics["pose_auc@20"] > 0.8 and metrics["num_inliers"] > 50
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert (
        on_disk["protocol"]["spec"]["protocol"] == "relative_pose"
        and on_disk["protocol"]["spec"]["pairs"]["count"] == 3
    )
    records = [json.loads(line) for line in (tmp_path / "per_pair.jsonl").read_text().splitlines()]
    assert [r["name"] for r in records] == ["0015/0015_00-0015_01", "0015/0015_00-0015_02", "0015/0015_01-0015_02"]
    assert len(list((tmp_path / "figures").glob("*.png"))) == 1


def test_sift_on_eth3d_fixture(eth3d_root, tmp_path):
    cfg = compose_config(
        "eval", ["model=sift", "data=eth3d", f"data.root={eth3d_root}", "num_figures=0", *ETH3D_OVERRIDES], tmp_path
    )
    metrics = evaluate(cfg)["metrics"]
    assert metrics["num_pairs"] == 8 and metrics["pck@5"] > 0.9 and metrics["rate3/aepe"] < 2
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert set(on_disk["per_scene"]) == {"rate3", "rate5"} and "target" in on_disk["protocol"]["spec"]["direction"]


class DepthSupervisedTinyMatcher(TinyMatcher):
    """The test-only tiny matcher trained from depth + pose ground truth instead of a homography."""

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        d0, d1 = self.describe(batch["image0"]), self.describe(batch["image1"])
        _, c, h, w = d0.shape
        points = self.grid(h, w, d0.device)
        losses = []
        for b in range(d0.shape[0]):
            target, valid = reproject_points(
                points, batch["depth0"][b], batch["K0"][b], batch["T_0to1"][b], batch["K1"][b], batch["depth1"][b]
            )
            cell = ((target - 1.5) / 4).round().long()
            ok = valid & (cell[:, 0] >= 0) & (cell[:, 0] < w) & (cell[:, 1] >= 0) & (cell[:, 1] < h)
            logits = d0[b].reshape(c, -1).t()[ok] @ d1[b].reshape(c, -1) / 0.1
            losses.append(F.cross_entropy(logits, cell[ok, 1] * w + cell[ok, 0]))
        total = torch.stack(losses).mean()
        return {"total": total, "nce": total.detach()}


@pytest.mark.slow
def test_training_on_megadepth_with_depth_supervision(megadepth_root, tmp_path):
    cfg = compose_config(
        "train",
        [
            "model=sift",
            "trainer=cpu",
            "logger=csv",
            "trainer.max_epochs=2",
            "trainer.limit_val_batches=1",
            "trainer.log_every_n_steps=1",
            "data=megadepth",
            f"data.root={megadepth_root}",
            "data.train_resize.size=[64,96]",
            "data.pairs_per_scene=2",
            "data.batch_size=2",
            "data.load_depth=true",
            "data.val_max_pairs=1",
            "data.val_resize={mode: long, size: 96}",
            "~callbacks.progress_bar",
        ],
        tmp_path,
    )
    with open_dict(cfg):
        cfg.model = {
            "_target_": "tests.test_eval_geometric.DepthSupervisedTinyMatcher",
            "dim": 8,
            "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
        }
    train(cfg)
    metrics = (tmp_path / "csv").rglob("metrics.csv")
    rows = next(metrics).read_text()
    assert "train/nce" in rows and "val/pose_auc@10" in rows and "val/score" in rows


@pytest.mark.slow
@pytest.mark.parametrize("data", ["megadepth", "eth3d"])
def test_eval_cli_on_fixtures(data, megadepth_root, eth3d_root, tmp_path):
    overrides = (
        [f"data.root={megadepth_root}", "data.eval_resize.size=360"]
        if data == "megadepth"
        else [f"data.root={eth3d_root}", *ETH3D_OVERRIDES]
    )
    result = subprocess.run(
        [sys.executable, "eval.py", "model=sift", f"data={data}", *overrides, f"hydra.run.dir={tmp_path}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["num_pairs"] == (3 if data == "megadepth" else 8)
