"""PWC-Net(-GOCor) training on synthetic flows: the PWC-Net paper's multi-scale loss by hand, gradients through the
local GOCor modules, and train.py model=pwcnet data=synthetic_flow end to end."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from corrlab.models.pwcnet.pwcnet import PWCNetConfig
from corrlab.modules.pwcnet import PWCNetMatcher


class ZeroFlows(nn.Module):
    """Stands in for PWC-Net: zero flows at levels 6..2 (1/64 .. 1/4), and the images it was given."""

    cfg = PWCNetConfig()

    def forward(self, target, source):
        self.inputs = (target, source)
        b, _, h, w = target.shape
        return [torch.zeros(b, 2, h // 2**level, w // 2**level, requires_grad=True) for level in (6, 5, 4, 3, 2)]


def test_multiscale_loss_by_hand():
    # GT (20, 0) everywhere -> (1, 0) after / div at every level; zero predictions: EPE 1 at each pixel, summed per
    # level: 0.32 x 1 + 0.08 x 4 + 0.02 x 16 + 0.01 x 64 + 0.005 x 256 = 2.88 for a 64 x 64 pair (per image, 2 images)
    module = PWCNetMatcher()
    module.net = ZeroFlows()
    images = torch.rand(2, 3, 64, 64)
    flow = torch.zeros(2, 64, 64, 2)
    flow[..., 0] = 20.0
    batch = {"image0": images, "image1": images.flip(0), "flow": flow, "flow_valid": torch.ones(2, 64, 64, dtype=bool)}
    losses = module.compute_losses(batch)
    assert losses["total"].item() == pytest.approx(2.88)
    assert [losses[f"level{i}"].item() for i in range(5)] == pytest.approx([0.32, 0.32, 0.32, 0.64, 1.28])
    target, source = module.net.inputs  # image 0 is the target, BGR as at inference
    assert torch.equal(target, images[:, [2, 1, 0]]) and torch.equal(source, images.flip(0)[:, [2, 1, 0]])
    with pytest.raises(ValueError, match="multiples of 64"):
        module.compute_losses({**batch, "image0": images[..., :48], "image1": images[..., :48]})


@pytest.mark.slow
def test_pwcnet_gocor_training_step_reaches_every_local_gocor(monkeypatch):
    monkeypatch.setenv("CORRLAB_OPS", "torch")
    from corrlab.datamodules.synthetic_flow import SyntheticFlowDataModule

    torch.manual_seed(0)
    pair = SyntheticFlowDataModule(image_size=[64, 64], num_val_pairs=1).dataset("val")[0]
    batch = {k: v[None] for k, v in pair.items() if isinstance(v, torch.Tensor)}
    module = PWCNetMatcher(gocor=True)
    losses = module.compute_losses(batch)
    assert set(losses) == {*(f"level{i}" for i in range(5)), "total"} and torch.isfinite(losses["total"])
    losses["total"].backward()
    for level in (6, 5, 4, 3, 2):
        assert getattr(module.net, f"local_corr_{level}").filter_optimizer.log_step_length.grad is not None
    assert module.net.conv1a[0].weight.grad.abs().sum() > 0  # the learned pyramid trains (no frozen backbone)


@pytest.mark.slow
def test_train_py_pwcnet_on_synthetic_flow(tmp_path, monkeypatch):
    monkeypatch.setenv("CORRLAB_OPS", "torch")
    from corrlab.pipeline.train import train
    from tests.conftest import compose_config

    overrides = [
        "model=pwcnet",
        "data=synthetic_flow",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "data.image_size=[64,64]",
        "data.num_train_pairs=4",
        "data.num_val_pairs=1",
        "data.batch_size=2",
        "~callbacks.progress_bar",
    ]
    cfg = compose_config("train", overrides, tmp_path)
    # the short schedule applied (conf/schedule/pwcnet_synthetic_flow.yaml), its cosine spanning the run's epochs
    assert cfg.model.optimizer.lr == 1e-3 and cfg.model.certainty == "none"
    assert cfg.model.scheduler._target_.endswith("CosineAnnealingLR") and cfg.model.scheduler.T_max == 1
    metrics = train(cfg)
    assert math.isfinite(metrics["val/aepe"]) and (tmp_path / "metrics.json").is_file()
