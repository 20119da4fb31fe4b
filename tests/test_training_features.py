"""Training options: non-finite guard, precision, accumulation, clipping, checkpointing, compile, estimates."""

from __future__ import annotations

import json
import logging

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf, open_dict
from torch import nn

from corrlab.losses.ap_loss import APLoss
from corrlab.pipeline.train import train
from corrlab.training.nonfinite_guard import NonFiniteTrainingError
from corrlab.training.progress import PairsPerSecondColumn
from corrlab.training.run_estimate import SavedTensorMeter, estimate_line
from corrlab.training.speedups import ActivationCheckpointingUnavailable, enable_activation_checkpointing
from tests.helpers.tiny_matcher import TinyMatcher
from tests.helpers.training import csv_metric, tiny_run_config

WEIGHTS: list[dict[str, torch.Tensor]] = []


class WeightRecorder(L.Callback):
    """Test-only: the weights at the start and after every training batch, in WEIGHTS."""

    def on_train_start(self, trainer, pl_module):
        WEIGHTS.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.on_train_start(trainer, pl_module)


def weights_changed() -> list[bool]:
    """For each recorded batch: did it change any weight?"""
    return [not all(torch.equal(a[k], b[k]) for k in a) for a, b in zip(WEIGHTS, WEIGHTS[1:])]


def flaky_config(tmp_path, *overrides, **model):
    cfg = tiny_run_config(
        tmp_path,
        "trainer.limit_val_batches=0",
        *overrides,
        callbacks={"weights": {"_target_": f"{__name__}.WeightRecorder"}},
    )
    with open_dict(cfg):
        cfg.model._target_ = "tests.helpers.flaky_matcher.FlakyMatcher"
        cfg.model.update(OmegaConf.create(model))
    WEIGHTS.clear()
    return cfg


@pytest.mark.slow
def test_nonfinite_guard_skips_the_step_and_dumps_the_batch(tmp_path):
    train(flaky_config(tmp_path, "trainer.max_steps=4", nan_loss_steps=[1], nan_grad_steps=[2]))
    assert weights_changed() == [True, False, False, True]  # steps 1 and 2 left every weight as it was
    assert csv_metric(tmp_path, "train/skipped_steps") == {0: 0.0, 1: 1.0, 2: 2.0, 3: 2.0}
    nan_loss = json.loads((tmp_path / "nonfinite" / "step0000001_rank0.json").read_text())
    nan_grad = json.loads((tmp_path / "nonfinite" / "step0000002_rank0.json").read_text())
    assert len(nan_loss["pairs"]) == 2 and all(name.startswith("train/") for name in nan_loss["pairs"])
    assert nan_loss["loss"] == ["nan"] and nan_loss["loss_components"]["train/nce"] == "nan"
    assert nan_loss["nonfinite_gradients"] == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"]
    assert nan_grad["loss"][0] != "nan" and nan_grad["nonfinite_gradients"] == ["net.0.weight"]
    assert nan_grad["pairs"] != nan_loss["pairs"]


def test_nonfinite_guard_stops_a_diverged_run(tmp_path):
    cfg = flaky_config(
        tmp_path, "trainer.max_steps=4", "callbacks.nonfinite_guard.max_consecutive=2", nan_loss_steps=[0, 1, 2, 3]
    )
    with pytest.raises(NonFiniteTrainingError, match="2 optimizer steps in a row"):
        train(cfg)


NEEDS_CUDA = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 autocast needs CUDA")]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("precision", "accelerator", "dtype"),
    [
        ("32", "cpu", torch.float32),
        ("bf16-mixed", "cpu", torch.bfloat16),
        pytest.param("16-mixed", "gpu", torch.float16, marks=NEEDS_CUDA),
    ],  # Lightning turns 16-mixed into bf16 on CPU
)
def test_precision(tmp_path, precision, accelerator, dtype, monkeypatch):
    seen = []
    describe = TinyMatcher.describe
    monkeypatch.setattr(
        TinyMatcher, "describe", lambda self, image: seen.append(self.net(image).dtype) or describe(self, image)
    )
    train(
        tiny_run_config(
            tmp_path,
            "trainer.max_steps=2",
            "trainer.limit_val_batches=0",
            f"trainer.precision={precision}",
            f"trainer.accelerator={accelerator}",
        )
    )
    assert seen and set(seen) == {dtype}
    assert all(v == v for v in csv_metric(tmp_path, "train/total").values())  # finite losses


def test_gradient_accumulation_steps_once_per_group(tmp_path):
    cfg = flaky_config(tmp_path, "trainer.max_epochs=1", "trainer.accumulate_grad_batches=2")
    train(cfg)
    assert weights_changed() == [False, True, False, True]  # weights move after batches 2 and 4 only
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2


def test_gradient_clipping_bounds_the_update(tmp_path):
    def first_update_norm(clip: str) -> float:
        cfg = flaky_config(tmp_path / clip, "trainer.max_steps=1", f"trainer.gradient_clip_val={clip}")
        with open_dict(cfg):
            cfg.model.optimizer = OmegaConf.create({"_target_": "torch.optim.SGD", "_partial_": True, "lr": 1.0})
        train(cfg)
        return float(torch.cat([(WEIGHTS[1][k] - WEIGHTS[0][k]).flatten() for k in WEIGHTS[0]]).norm())

    assert 0 < first_update_norm("0.001") <= 0.001 * (1 + 1e-4)  # lr 1: the update is the clipped gradient
    assert first_update_norm("null") > 0.01  # control: unclipped, the same step is larger


def test_activation_checkpointing_keeps_gradients_and_saves_memory():
    class Checkpointable(TinyMatcher):
        activation_checkpointing_blocks = (nn.Sequential,)

    torch.manual_seed(0)
    plain, wrapped = TinyMatcher(dim=16), Checkpointable(dim=16)
    wrapped.load_state_dict(plain.state_dict())
    assert enable_activation_checkpointing(wrapped) == 1
    assert list(wrapped.state_dict()) == list(plain.state_dict())
    image = torch.rand(2, 3, 48, 64)
    saved, grads = {}, {}
    for name, model in (("plain", plain), ("wrapped", wrapped)):
        with SavedTensorMeter(list(model.parameters())) as meter:
            loss = model.describe(image).square().sum()
        loss.backward()
        saved[name] = meter.bytes
        grads[name] = [p.grad for p in model.parameters()]
    assert saved["wrapped"] < saved["plain"]
    for a, b in zip(grads["plain"], grads["wrapped"]):
        torch.testing.assert_close(a, b)
    with pytest.raises(ActivationCheckpointingUnavailable, match="TinyMatcher does not offer"):
        enable_activation_checkpointing(TinyMatcher())


def test_activation_checkpointing_flag_reaches_the_model(tmp_path):
    with pytest.raises(ActivationCheckpointingUnavailable):
        train(tiny_run_config(tmp_path, "activation_checkpointing=true"))


@pytest.mark.slow
def test_compile_flag_compiles_the_network(tmp_path, monkeypatch, caplog):
    compiled = []
    original = nn.Module.compile
    # the eager backend: dynamo traces the model but skips inductor's C++ code generation (~20 s here)
    monkeypatch.setattr(
        nn.Module, "compile", lambda self, **kw: compiled.append(type(self).__name__) or original(self, backend="eager")
    )
    with caplog.at_level(logging.INFO, logger="corrlab.pipeline.train"):
        train(tiny_run_config(tmp_path, "compile=true", "trainer.max_steps=2", "trainer.limit_val_batches=1"))
    assert compiled == ["Sequential"] and "torch.compile: net" in caplog.text


def test_saved_tensor_meter_counts_activations_not_parameters():
    weight = nn.Parameter(torch.ones(1000))
    x = torch.rand(1000, requires_grad=True)
    with SavedTensorMeter([weight]) as meter:
        y = torch.sin(x)  # saves x: 4000 bytes
        z = y * weight  # saves y (4000 bytes) and the parameter (excluded)
        (z * 2).sum()  # a constant factor saves nothing
    assert meter.bytes == 8000


def test_estimate_line():
    line = estimate_line(TinyMatcher(dim=16), 3 * 1024**2, 8)
    params = sum(p.numel() for p in TinyMatcher(dim=16).parameters())
    assert params == 3 * 16 * 25 + 16 + 16 * 16 * 9 + 16 == 3536
    assert line.startswith(
        "model: 3.5 K parameters (3.5 K trainable, 13.8 KiB); activations 3.0 MiB per batch of 8 pairs"
    )


def test_pairs_per_second_column():
    class Task:
        id, speed, finished_speed = 1, 2.5, None

    assert str(PairsPerSecondColumn({1: 8}).render(Task())) == "20.0 pairs/s"
    assert str(PairsPerSecondColumn({}).render(Task())) == "-- pairs/s"


def test_ap_loss_of_nan_scores_is_nan_not_an_index_error():
    scores = torch.tensor([[0.9, float("nan"), 0.2], [0.8, 0.1, 0.3]])
    labels = torch.tensor([[True, False, False], [True, False, False]])
    ap = APLoss(num_bins=5)(scores, labels)
    assert ap[0].isnan() and ap[1] == pytest.approx(1.0)  # the finite row is unaffected


def test_nonfinite_guard_catches_nan_scores_born_in_the_forward_pass(tmp_path):
    cfg = flaky_config(tmp_path, "trainer.max_steps=3")
    with open_dict(cfg):
        cfg.model._target_ = "tests.helpers.flaky_matcher.OverflowingAPMatcher"
        cfg.model.overflow_steps = [1]
    train(cfg)
    assert weights_changed() == [True, False, True]  # the overflowing step changed nothing
    dump = json.loads((tmp_path / "nonfinite" / "step0000001_rank0.json").read_text())
    assert dump["loss"] == ["nan"] and len(dump["pairs"]) == 2
    assert csv_metric(tmp_path, "train/skipped_steps") == {0: 0.0, 1: 1.0, 2: 1.0}
