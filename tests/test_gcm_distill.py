"""GCM's patch-descriptor distillation: the loss against hand-computed values, the frozen teacher, R2D2-style
pairs, one training step through train.py on synthetic pairs and on a folder of images, and the trained student
evaluated by eval.py model=gcm where dstl_r2d2.pt would go."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from corrlab.losses.gcm_distillation import PatchDescriptorDistillationLoss
from corrlab.models.gcm.dense_nn import dense_nn_matches
from corrlab.models.gcm.official import load_student
from corrlab.models.gcm.student import student_quad_l2net_confcfs
from corrlab.models.r2d2.patchnet import quad_l2net_confcfs
from corrlab.modules.gcm_distill import GCMDistill
from corrlab.pipeline.evaluate import evaluate
from corrlab.pipeline.train import train
from tests.conftest import compose_config
from tests.helpers.cli import run_cli

TINY = ["data.image_size=[48,48]", "data.short_side=[48,96]", "data.num_val_pairs=1", "data.num_train_pairs=2"]


def write_teacher(path: Path) -> Path:
    """A seeded random Quad_L2Net_ConfCFS in naver/r2d2's format (`module.` keys, `net` string)."""
    torch.manual_seed(0)
    state = {f"module.{k}": v for k, v in quad_l2net_confcfs().state_dict().items()}
    torch.save({"net": "Quad_L2Net_ConfCFS()", "state_dict": state}, path)
    return path


def hand_pair() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Two views, each 2 images (identical) x 2 channels x 1 x 2 pixels with known cosines:
    view 0: (1, 0) vs (1, 1) -> 1/sqrt(2); (0, 2) vs (1, 0) -> 0.  view 1: (1, 1) vs (-1, -1) -> -1; (3, 4) vs (4, 3) -> 0.96."""
    s0, t0 = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]]), torch.tensor([[[1.0, 1.0]], [[1.0, 0.0]]])
    s1, t1 = torch.tensor([[[1.0, 3.0]], [[1.0, 4.0]]]), torch.tensor([[[-1.0, 4.0]], [[-1.0, 3.0]]])
    twice = lambda x: torch.stack([x, x])  # noqa: E731
    return [twice(s0), twice(s1)], [twice(t0), twice(t1)]


def test_distillation_loss_against_hand_computed_values():
    student, teacher = hand_pair()
    # per view: mean over the 2 pixels, summed over the 2 images of the batch, summed over the views
    distance = 2 * ((1 - 1 / math.sqrt(2)) + 1) / 2 + 2 * ((1 + 1) + (1 - 0.96)) / 2
    absolute = 2 * (1 / math.sqrt(2) + 0) / 2 + 2 * (1 + 0.96) / 2
    assert PatchDescriptorDistillationLoss()(student, teacher).item() == pytest.approx(distance, abs=1e-6)
    reference = PatchDescriptorDistillationLoss("reference_abs_cosine")(student, teacher)
    assert reference.item() == pytest.approx(absolute, abs=1e-6)
    with pytest.raises(ValueError, match="cosine_distance, reference_abs_cosine"):
        PatchDescriptorDistillationLoss("l2")


def test_the_teacher_is_frozen_through_a_training_step(tmp_path):
    module = GCMDistill(str(write_teacher(tmp_path / "teacher.pt")))
    before = {k: v.clone() for k, v in module.teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in module.student.state_dict().items()}
    module.train()
    assert module.student.training and not module.teacher.training
    assert not any(p.requires_grad for p in module.teacher.parameters())
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    assert sum(p.numel() for group in optimizer.param_groups for p in group["params"]) == 290_627
    torch.manual_seed(1)
    batch = {"image0": torch.rand(2, 3, 24, 24), "image1": torch.rand(2, 3, 24, 24)}
    losses = module.compute_losses(batch)
    losses["total"].backward()
    optimizer.step()
    assert all(p.grad is None for p in module.teacher.parameters())
    for key, value in module.teacher.state_dict().items():  # weights and BatchNorm running statistics
        assert torch.equal(value, before[key]), key
    assert not torch.equal(module.student.state_dict()["ops.0.weight"], student_before["ops.0.weight"])
    assert not torch.equal(module.student.state_dict()["ops.1.running_mean"], student_before["ops.1.running_mean"])


def test_missing_teacher_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.teacher_weights.*r2d2_WASF_N16.pt"):
        GCMDistill(str(tmp_path / "absent.pt"))


def test_dense_nn_matches_recover_a_known_shift():
    """Random descriptors and their copy shifted by (3, 2) pixels: every mutual match is the shift."""
    torch.manual_seed(0)
    desc1 = torch.randn(16, 20, 24)
    desc0 = desc1[:, 2:, 3:]  # pixel (x, y) of image 0 is pixel (x + 3, y + 2) of image 1
    kpts0, kpts1 = dense_nn_matches(desc0, desc1, stride=4)
    assert len(kpts0) == len(range(2, 18, 4)) * len(range(2, 21, 4))
    assert torch.equal(kpts1 - kpts0, torch.tensor([3.0, 2.0]).expand_as(kpts0))


def test_r2d2_pairs_scale_and_distort_view1_only():
    from corrlab.datamodules.r2d2_pairs import R2D2PairsDataModule

    one = {"image_size": (64, 64), "num_train_pairs": 4, "train_photos": ("brick.png",)}
    data = R2D2PairsDataModule(**one, pixel_noise=0.0, color_jitter=(0, 0, 0, 0))
    pairs = data.dataset("train")
    zooms = [pairs.sample_zoom(np.random.default_rng(i)) for i in range(2000)]
    # short side log-uniform in [256, 1024]: zoom = short side / 64, median 512 / 64
    assert min(zooms) >= 4 and max(zooms) <= 16 and np.median(zooms) == pytest.approx(8, rel=0.05)
    item = pairs[0]
    assert item["image0"].shape == (3, 64, 64) and torch.isfinite(item["H_0to1"]).all()
    jittered = R2D2PairsDataModule(**one).dataset("train")[0]
    assert torch.equal(jittered["image0"], item["image0"]) and not torch.equal(jittered["image1"], item["image1"])
    assert torch.equal(jittered["image1"] * 255, (jittered["image1"] * 255).round())  # uint8 grid, as PIL


@pytest.mark.slow
def test_one_training_step_through_train_py_on_synthetic_pairs(tmp_path):
    teacher = write_teacher(tmp_path / "teacher.pt")
    args = ["experiment=gcm_distill", "trainer=cpu", "logger=csv", "trainer.max_steps=1", "trainer.max_epochs=-1"]
    args += ["~callbacks.progress_bar", "~callbacks.model_summary", "trainer.enable_progress_bar=false"]
    run_cli("train.py", [*args, *TINY, f"model.teacher_weights={teacher}", f"hydra.run.dir={tmp_path / 'run'}"])
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 1
    released = torch.load(teacher, weights_only=True)["state_dict"]
    for key, value in released.items():  # the teacher saved unchanged, running statistics included
        assert torch.equal(checkpoint["state_dict"][key.replace("module.", "teacher.")], value), key


@pytest.mark.slow
def test_training_on_a_folder_of_images_then_eval_py_model_gcm_takes_the_checkpoint(tmp_path):
    folder = tmp_path / "images" / "nested"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(2):  # smooth random photos
        image = cv2.GaussianBlur(rng.uniform(0, 255, (90, 120, 3)).astype(np.uint8), (0, 0), 2)
        cv2.imwrite(str(folder / f"photo{k}.png"), image)
    overrides = ["experiment=gcm_distill", "trainer=cpu", "logger=csv", "trainer.max_steps=1", "trainer.max_epochs=-1"]
    overrides += ["~callbacks.progress_bar", f"data.root={tmp_path / 'images'}", *TINY]
    overrides += [f"model.teacher_weights={write_teacher(tmp_path / 'teacher.pt')}"]
    cfg = compose_config("train", overrides, tmp_path / "train")
    train(cfg)
    train_set = cfg.data.root
    assert train_set == str(tmp_path / "images")
    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    trained = torch.load(checkpoint, weights_only=True)["state_dict"]

    student = student_quad_l2net_confcfs()
    load_student(student, checkpoint)  # where dstl_r2d2.pt goes
    for key, value in student.state_dict().items():
        assert torch.equal(value, trained[f"student.{key}"]), key

    eval_overrides = ["model=gcm", "model/gcm=avg_r2d2_95", f"weights={checkpoint}", "num_figures=0"]
    eval_overrides += ["data=synthetic", "data.num_test_pairs=1", "data.image_size=[128,128]"]
    summary = evaluate(compose_config("eval", eval_overrides, tmp_path / "eval"))
    assert summary["num_pairs"] == 1 and summary["weights"][0]["file"] == str(checkpoint.resolve())
