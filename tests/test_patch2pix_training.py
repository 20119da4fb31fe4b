"""Patch2Pix / NCNet training: the losses against hand-computed values, identical gradients with regressor
checkpointing, epipolar supervision on the real MegaDepth pair, and train.py / eval.py end to end on fixtures."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning import seed_everything

from corrlab.datamodules.collate import collate_pairs
from corrlab.datamodules.megadepth import MegaDepthDataModule
from corrlab.datamodules.megadepth_dataset import MegaDepthPairs
from corrlab.datamodules.megadepth_index import pair_info_pairs
from corrlab.datamodules.resize import ResizePolicy
from corrlab.geometry.depth import reproject_points
from corrlab.geometry.epipolar import fundamental_from_pose
from corrlab.losses.ncnet_weak import NCNetWeakLoss, matching_score
from corrlab.losses.patch2pix import Patch2PixLoss, squared_sampson
from corrlab.models.patch2pix.refinement import chunk_bounds, regress_matches
from corrlab.modules.ncnet import NCNet
from corrlab.modules.patch2pix import Patch2Pix
from corrlab.pipeline.evaluate import MissingWeightsError, evaluate
from corrlab.pipeline.instantiate import instantiate, instantiate_method
from corrlab.pipeline.train import train
from tests.conftest import compose_config, shared_data
from tests.helpers.megadepth_fixture import write_megadepth, write_real_pair

RECTIFIED = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # x1^T F x0 = y0 - y1
TINY_TRAINING = [
    "trainer=cpu",
    "logger=csv",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "data=megadepth",
    "data.train_resize.size=[64,96]",
    "data.pairs_per_scene=1",
    "data.batch_size=2",
    "data.val_max_pairs=1",
    "data.val_resize={mode: long, size: 96}",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
]


@pytest.fixture(scope="module")
def megadepth_root(tmp_path_factory) -> Path:
    return write_megadepth(tmp_path_factory.mktemp("megadepth"))


@pytest.fixture(scope="module")
def posed_batch(megadepth_root) -> dict:
    """Two training pairs of the MegaDepth fixture at 64 x 96 (K0, K1, T_0to1 in the batch frame)."""
    datamodule = MegaDepthDataModule(
        root=str(megadepth_root), train_resize={"mode": "fixed", "size": [64, 96]}, pairs_per_scene=2, batch_size=2
    )
    return next(iter(datamodule.train_dataloader()))


def rows(dy: list[float]) -> torch.Tensor:
    """Matches (x0, y0, x1, y1) with y1 - y0 = dy (squared Sampson under RECTIFIED = dy^2 / 2)."""
    dy_t = torch.tensor(dy)
    return torch.stack(
        [torch.full_like(dy_t, 10.0), torch.full_like(dy_t, 20.0), torch.full_like(dy_t, 30.0), 20.0 + dy_t], dim=1
    )


def test_squared_sampson_is_the_reference_formula():
    torch.manual_seed(0)
    F = torch.randn(3, 3, dtype=torch.float64)
    matches = torch.rand(50, 4, dtype=torch.float64) * 100
    x0 = torch.cat([matches[:, :2], torch.ones(50, 1, dtype=torch.float64)], 1)
    x1 = torch.cat([matches[:, 2:], torch.ones(50, 1, dtype=torch.float64)], 1)
    line1, line0 = x0 @ F.T, x1 @ F  # F x0 and F^T x1
    expected = (line1 * x1).sum(1) ** 2 / (line1[:, 0] ** 2 + line1[:, 1] ** 2 + line0[:, 0] ** 2 + line0[:, 1] ** 2)
    torch.testing.assert_close(squared_sampson(matches, F), expected)
    torch.testing.assert_close(squared_sampson(rows([2.0, 10.0]), RECTIFIED), torch.tensor([2.0, 50.0]))


def test_patch2pix_loss_matches_hand_computation():
    anchors, mid, fine = (
        rows([2, 8, 12, 1]),
        rows([1, 4, 3, 10]),
        rows([0, 1, 2, 3]),
    )  # d: [2,32,72,.5] [.5,8,4.5,50] [0,.5,2,4.5]
    mid_p, fine_p = torch.tensor([0.9, 0.6, 0.2, 0.7]), torch.tensor([0.8, 0.3, 0.6, 0.1])
    # a second pair whose mid outputs are all far (no fine positive): skipped entirely
    far = rows([20, 20, 20, 20])
    losses = Patch2PixLoss()(
        [anchors, anchors], [mid, far], [fine, far], [mid_p, mid_p], [fine_p, fine_p], [RECTIFIED] * 2
    )
    cls_mid = (
        -math.log(0.9) / 3 - math.log(0.6) / 3 - math.log(0.8) - math.log(0.7) / 3
    ) / 4  # 3 positives, 1 negative
    cls_fine = (-math.log(0.8) - math.log(0.7) - math.log(0.6) - math.log(0.9)) / 4  # 2 and 2: weight 1
    epi_mid, epi_fine = (0.5 + 8 + 50) / 3, (0 + 2) / 2
    assert losses["valid_pairs"] == 1
    for name, value in (("cls_mid", cls_mid), ("cls_fine", cls_fine), ("epi_mid", epi_mid), ("epi_fine", epi_fine)):
        assert losses[name].item() == pytest.approx(value, rel=1e-5), name
    assert losses["total"].item() == pytest.approx(10 * (cls_mid + cls_fine) + epi_mid + epi_fine, rel=1e-5)
    nothing = Patch2PixLoss()([anchors], [far], [far], [mid_p], [fine_p], [RECTIFIED])
    assert nothing["valid_pairs"] == 0 and nothing["total"] == 0


def test_loss_gradients_flow_to_mid_through_fine_coordinates():
    mid = rows([1.0, 2.0]).requires_grad_(True)
    fine = mid + torch.tensor([0.0, 0.0, 0.0, 0.5])
    losses = Patch2PixLoss(cls_weight=0.0)(
        [rows([1.0, 2.0])], [mid], [fine], [torch.tensor([0.5, 0.5])], [torch.tensor([0.5, 0.5])], [RECTIFIED]
    )
    (grad,) = torch.autograd.grad(losses["total"], mid)
    # d/dy1 of mean(dy^2/2) over 2 matches, for the mid term (dy = 1, 2) and the fine term (dy = 1.5, 2.5)
    assert grad[:, 3].tolist() == pytest.approx([(1 + 1.5) / 2, (2 + 2.5) / 2])


def test_chunks_follow_the_reference():
    assert chunk_bounds(3200, 1200) == [(0, 1200), (1200, 2400), (2400, 3200)]
    assert chunk_bounds(2401, 1200) == [(0, 1200), (1200, 2401)]  # a lone last match joins the previous chunk
    assert chunk_bounds(1201, 1200) == [(0, 1201)] and chunk_bounds(0, 1200) == []


def test_batchnorm_statistics_are_per_micro_batch_in_training_only():
    torch.manual_seed(0)
    net = Patch2Pix(max_side=None).net
    levels = net.patch_features(net.features(torch.rand(1, 3, 64, 96)))
    matches = torch.rand(8, 4) * 60
    run = lambda chunk: regress_matches(net.regress_mid, levels, levels, net.patch_strides, 0, matches, 16, chunk)[1]  # noqa: E731
    with torch.no_grad():
        net.train()
        assert not torch.allclose(run(8), run(4))
        net.eval()
        torch.testing.assert_close(run(8), run(4))


def gradients(module: Patch2Pix, batch: dict) -> tuple[dict, dict, dict]:
    torch.manual_seed(0)  # the same proposals are sampled
    module.train()
    module.zero_grad()
    losses = module.compute_losses(batch)
    losses["total"].backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return losses, grads, {n: b.clone() for n, b in module.named_buffers()}


@pytest.mark.slow
def test_checkpointed_regressors_give_identical_gradients_and_statistics(posed_batch):
    torch.manual_seed(0)
    loss = Patch2PixLoss(
        cls_thresholds=(2000.0, 2000.0), epi_thresholds=(2000.0, 2000.0)
    )  # positives with random weights
    plain = Patch2Pix(proposals=1, regr_batch=3, loss=loss)  # 8 anchors per pair: micro-batches 3, 3, 2
    checkpointed = copy.deepcopy(plain)
    checkpointed.checkpoint_regressors = True
    losses, grads, buffers = gradients(plain, posed_batch)
    losses_c, grads_c, buffers_c = gradients(checkpointed, posed_batch)
    assert losses["valid_pairs"] == 2 and torch.equal(losses["total"], losses_c["total"])
    assert grads.keys() == grads_c.keys() and all(k.startswith("net.regress_") for k in grads)
    assert len(grads) == 2 * len(list(plain.net.regress_mid.parameters()))
    assert all(torch.equal(grads[k], grads_c[k]) for k in grads)
    assert all(torch.equal(buffers[k], buffers_c[k]) for k in buffers)  # running statistics updated once


@pytest.mark.slow
def test_real_megadepth_pair_trains_with_epipolar_supervision():
    root = shared_data("megadepth", "loftr_pytorch_sample")
    dataset = MegaDepthPairs(
        root,
        pair_info_pairs(root / "sample.npz", scene="sample"),
        ResizePolicy("fixed", (96, 144)),
        crop_aspect=1.5,
        load_depth=True,
        on_missing="skip",
    )
    sample = dataset[0]
    # the supervision's frame: depth-reprojected pixels lie on their epipolar lines (squared Sampson << 5 px^2)
    ys, xs = torch.meshgrid(torch.arange(0, 96, 4.0), torch.arange(0, 144, 4.0), indexing="ij")
    grid = torch.stack([xs.ravel(), ys.ravel()], 1)
    kpts1, valid = reproject_points(
        grid, sample["depth0"], sample["K0"], sample["T_0to1"], sample["K1"], sample["depth1"]
    )
    F = fundamental_from_pose(sample["K0"].double(), sample["K1"].double(), sample["T_0to1"].double())
    distances = squared_sampson(torch.cat([grid[valid], kpts1[valid]], 1).double(), F)
    assert valid.sum() > 100 and distances.median() < 0.05
    torch.manual_seed(0)
    module = Patch2Pix(proposals=4, regr_batch=16)
    batch = collate_pairs([sample, sample])
    before = copy.deepcopy(module.state_dict())
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=5e-4)
    losses = module.compute_losses(batch)
    assert torch.isfinite(losses["total"]) and losses["valid_pairs"] >= 1
    losses["total"].backward()
    optimizer.step()
    changed = {k for k, v in module.state_dict().items() if not torch.equal(v, before[k]) and v.is_floating_point()}
    assert any(k.startswith("net.regress_mid.fc") for k in changed) and any(
        k.startswith("net.regress_fine.conv.0") for k in changed
    )
    assert not any(k.startswith(("net.consensus.", "net.backbone.layer3.0.conv")) for k in changed)


def test_ncnet_weak_loss_scores_by_hand():
    corr = torch.tensor([0.0, 1.0, 2.0, 3.0]).reshape(1, 1, 1, 2, 1, 2)  # image 0: 2 cells, image 1: 2 cells
    soft = lambda a, b: math.exp(b) / (math.exp(a) + math.exp(b))  # noqa: E731
    by_1 = (soft(0, 2) + soft(1, 3)) / 2  # best image-0 cell of each image-1 cell
    by_0 = (soft(0, 1) + soft(2, 3)) / 2
    assert matching_score(corr).item() == pytest.approx((by_1 + by_0) / 2)
    assert NCNetWeakLoss()(corr, corr * 0)["total"].item() == pytest.approx(0.5 - (by_1 + by_0) / 2)


def test_ncnet_training_updates_only_the_consensus(posed_batch):
    torch.manual_seed(0)
    module = NCNet(max_side=None).train()
    assert not module.net.backbone.training
    with torch.no_grad():  # a consensus filter that passes the correlation through (Xavier init mostly zeroes it)
        for layer in (module.net.consensus.conv[0], module.net.consensus.conv[2]):
            layer.weight.normal_(0, 0.01)
            layer.weight[:, :, 1, 1, 1, 1] += 1.0
    same = dict(posed_batch, image1=posed_batch["image0"])  # identical images: positives beat rolled negatives
    losses = module.compute_losses(same)
    assert losses["total"] < 0 and losses["score_positive"] > losses["score_negative"]
    losses["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.net.consensus.parameters())
    assert all(p.grad is None for p in module.net.backbone.parameters())
    with pytest.raises(ValueError, match="batch size >= 2"):
        module.compute_losses({k: v[:1] for k, v in posed_batch.items() if torch.is_tensor(v)})


def test_paper_experiments_compose(tmp_path):
    cfg = compose_config(
        "train", ["experiment=patch2pix_paper", "model.ncnet_weights=ncn.pth", "data.train_pairs=pairs.npz"], tmp_path
    )
    assert cfg.model._target_ == "corrlab.modules.patch2pix.Patch2Pix" and cfg.seed == 1
    assert (
        cfg.model.optimizer.lr == 5e-4
        and list(cfg.model.scheduler.milestones) == [5]
        and cfg.model.scheduler.gamma == 0.2
    )
    assert cfg.trainer.max_epochs == 25 and cfg.data.batch_size == 4 and list(cfg.data.train_resize.size) == [320, 480]
    assert (cfg.model.proposals, cfg.model.anchor_shift, cfg.model.io_thres, cfg.model.max_side) == (400, 8, 0.25, 1024)
    assert list(cfg.model.loss.cls_thresholds) == [50.0, 5.0] and cfg.model.loss.cls_weight == 10.0
    cfg = compose_config("train", ["experiment=ncnet_pretrain", "model.backbone.weights=r34.pth"], tmp_path)
    assert cfg.model._target_ == "corrlab.modules.ncnet.NCNet" and cfg.model.train_pool == 1
    assert cfg.trainer.max_epochs == 5 and cfg.data.batch_size == 16 and list(cfg.data.train_resize.size) == [400, 400]


@pytest.mark.slow
def test_train_and_eval_cli_path_on_the_megadepth_fixture(megadepth_root, tmp_path):
    """NCNet pre-training -> Patch2Pix training initialised from it -> eval.py on its checkpoint."""
    ncnet_cfg = compose_config(
        "train", ["model=ncnet", *TINY_TRAINING, f"data.root={megadepth_root}"], tmp_path / "ncnet"
    )
    train(ncnet_cfg)
    ncnet_ckpt = tmp_path / "ncnet" / "checkpoints" / "last.ckpt"
    p2p_cfg = compose_config(
        "train",
        [
            "model=patch2pix",
            *TINY_TRAINING,
            f"data.root={megadepth_root}",
            "model.proposals=2",
            "model.regr_batch=8",
            f"model.ncnet_weights={ncnet_ckpt}",
            "model.checkpoint_regressors=true",
        ],
        tmp_path / "p2p",
    )
    metrics = train(p2p_cfg)
    assert "val/pose_auc@10" in metrics and "val/num_matches" in metrics
    trained = torch.load(tmp_path / "p2p" / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    pretrained = torch.load(ncnet_ckpt, weights_only=False)["state_dict"]
    assert torch.equal(trained["net.consensus.conv.0.weight"], pretrained["net.consensus.conv.0.weight"])
    eval_cfg = compose_config(
        "eval",
        [
            "model=patch2pix",
            "data=megadepth",
            f"data.root={megadepth_root}",
            "data.eval_resize.size=160",
            f"ckpt_path={tmp_path / 'p2p' / 'checkpoints' / 'last.ckpt'}",
            "num_figures=1",
        ],
        tmp_path / "eval",
    )
    summary = evaluate(eval_cfg)
    assert summary["num_pairs"] == 3 and "pose_auc@10" in summary["metrics"]


@pytest.mark.slow
def test_train_cli_path_on_the_real_megadepth_pair(tmp_path):
    """`python train.py model=patch2pix data=megadepth` on the real MegaDepth pair of ../shared/data, laid out
    as D2-Net's undistorted MegaDepth (portrait images: the aspect filter is off); validation on the same pair."""
    root = write_real_pair(tmp_path / "megadepth", shared_data("megadepth", "loftr_pytorch_sample"))
    overrides = [
        "model=patch2pix",
        *TINY_TRAINING,
        f"data.root={root}",
        "data.aspect_range=null",
        "data.batch_size=1",
        "data.train_resize.size=[160,240]",
        "data.val_resize={mode: long, size: 240}",
        "model.proposals=64",
        "model.regr_batch=128",
        "model.max_side=240",
        "trainer.log_every_n_steps=1",
    ]
    cfg = compose_config("train", overrides, tmp_path / "run")
    seed_everything(cfg.seed, workers=True, verbose=False)  # train() seeds, then builds the data and the model
    instantiate(cfg.data)
    initial = instantiate_method(cfg.model).state_dict()
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "config.yaml").is_file() and json.loads((run / "metrics.json").read_text()) == pytest.approx(metrics)
    assert metrics["val/num_pairs"] == 1 and 0 <= metrics["val/pose_auc@10"] <= 1
    with open(next((run / "csv").rglob("metrics.csv")), newline="") as handle:
        steps = [row for row in csv.DictReader(handle) if row["train/total"]]
    assert len(steps) == 1 and math.isfinite(float(steps[0]["train/total"]))  # one optimiser step, a finite loss
    assert float(steps[0]["train/valid_pairs"]) == 1 and float(steps[0]["train/skipped_steps"]) == 0
    trained = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert not torch.equal(trained["net.regress_fine.fc.0.weight"], initial["net.regress_fine.fc.0.weight"])
    assert torch.equal(trained["net.consensus.conv.0.weight"], initial["net.consensus.conv.0.weight"])


def test_ncnet_checkpoint_initialises_patch2pix(tmp_path):
    ncnet = NCNet()
    torch.save(
        {"pytorch-lightning_version": "2", "state_dict": {f"net.{k}": v for k, v in ncnet.net.state_dict().items()}},
        tmp_path / "n.ckpt",
    )
    model = Patch2Pix(ncnet_weights=str(tmp_path / "n.ckpt"))
    assert torch.equal(model.net.consensus.conv[0].weight, ncnet.net.consensus.conv[0].weight)
    assert torch.equal(model.net.backbone.conv1.weight, ncnet.net.backbone.conv1.weight) and model.pretrained_backbone
    with pytest.raises(FileNotFoundError, match="model.ncnet_weights"):
        Patch2Pix(ncnet_weights=str(tmp_path / "absent.ckpt"))


@pytest.mark.slow
def test_eval_on_hpatches_refuses_random_weights_unless_allowed(tmp_path):
    root = shared_data("hpatches", "partial_pairs")
    overrides = ["model=patch2pix", "data=hpatches", f"data.root={root}", "model.max_side=128", "num_figures=1"]
    with pytest.raises(MissingWeightsError):
        evaluate(compose_config("eval", overrides, tmp_path / "refused"))
    summary = evaluate(compose_config("eval", [*overrides, "allow_random_weights=true"], tmp_path / "allowed"))
    assert summary["num_pairs"] == 3 and 0 <= summary["metrics"]["mma@3"] <= 1
    assert (
        json.loads((tmp_path / "allowed" / "summary.json").read_text())["weights"] == "random initialisation (allowed)"
    )
    assert np.isfinite(summary["metrics"]["mma@10"])


class OtherRanks:
    """A stand-in strategy for rank 0 of 2: reduce_boolean_decision combines this rank's decision with the
    other rank's, as DDP's all-reduce would."""

    def __init__(self, other_rank_decision: bool) -> None:
        self.other = other_rank_decision
        self.calls = 0

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        self.calls += 1
        return (decision and self.other) if all else (decision or self.other)


@pytest.mark.parametrize(
    ("valid_here", "none_on_other_rank", "expected"),
    [(0, True, "skip"), (0, False, "zero"), (2, True, "loss"), (2, False, "loss")],
)
def test_step_without_a_valid_pair_is_decided_across_ranks(monkeypatch, valid_here, none_on_other_rank, expected):
    """Every rank skips only when no rank has a valid pair; a rank without one otherwise steps with a zero loss
    (a rank returning None alone would leave the others waiting in DDP's gradient all-reduce)."""
    module = Patch2Pix(max_side=None)
    strategy = OtherRanks(none_on_other_rank)
    monkeypatch.setattr(Patch2Pix, "trainer", property(lambda self: type("T", (), {"strategy": strategy})()))
    monkeypatch.setattr(Patch2Pix, "log", lambda *a, **k: None)
    monkeypatch.setattr(Patch2Pix, "log_dict", lambda *a, **k: None)
    weight = module.net.regress_fine.fc[0].weight
    total = (weight.sum() * 0 + 3.0) if valid_here else torch.zeros(())
    monkeypatch.setattr(
        module, "compute_losses", lambda batch: {"total": total, "valid_pairs": torch.tensor(float(valid_here))}
    )
    loss = module.training_step({"image0": torch.zeros(2, 3, 8, 8)}, 0)
    assert strategy.calls == 1
    if expected == "skip":
        assert loss is None
    elif expected == "zero":
        assert loss.item() == 0 and loss.requires_grad
        loss.backward()
        trainable = [p for p in module.parameters() if p.requires_grad]
        assert all(p.grad is not None and not p.grad.any() for p in trainable)  # every DDP bucket gets its zeros
    else:
        assert loss is total


def test_sync_batchnorm_is_refused_with_the_setting_to_change():
    module = Patch2Pix(max_side=None)
    torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    with pytest.raises(ValueError, match="trainer.sync_batchnorm=false"):
        module.on_fit_start()
