"""GCM's patch-descriptor distillation (arXiv 2403.05388; AlexHan5832/GCM utils/train/dstltrain.py): the student
`Student_Quad_L2Net_ConfCFS` (the network whose released weights are dstl_r2d2.pt) learns the raw descriptor map
of a frozen R2D2 teacher (r2d2_WASF_N16.pt) on R2D2-style pairs.  The trained student goes where dstl_r2d2.pt
would: `eval.py model=gcm weights=<this run's last.ckpt>` (docs/gcm.md)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from corrlab.losses.gcm_distillation import PatchDescriptorDistillationLoss
from corrlab.matches import Matches
from corrlab.models.gcm.dense_nn import dense_nn_matches
from corrlab.models.gcm.student import student_quad_l2net_confcfs
from corrlab.models.r2d2.checkpoint import load_official
from corrlab.models.r2d2.patchnet import R2D2Net
from corrlab.modules.base import MatchingModule

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MATCHING_KEYS = ("stride", "mutual")


def imagenet_normalise(images: Tensor) -> Tensor:
    """B x 3 x H x W in [0, 1] -> R2D2's input (torchvision Normalize with ImageNet mean / std)."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def load_frozen_teacher(path: str | Path) -> R2D2Net:
    """The released R2D2 network of `path` in eval mode with every parameter frozen."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.teacher_weights: no R2D2 teacher file at '{path}' (GCM distils naver/r2d2's "
            "models/r2d2_WASF_N16.pt; set model.teacher_weights=<path to it>)"
        )
    teacher = load_official(path)
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher.eval()


class GCMDistill(MatchingModule):
    """`teacher_weights`: a naver/r2d2 `.pt` (a pickle: trusted sources only).  `loss`: PatchDescriptorDistillationLoss
    options (`form`).  `matching`: the validation matcher, dense mutual NN of the student's descriptors (`stride`
    of the query grid, `mutual`).  The teacher stays in eval mode (BatchNorm running statistics untouched) and
    receives no gradient; only the student's parameters reach the optimiser."""

    requires_weights = True

    def __init__(
        self,
        teacher_weights: str,
        loss: dict | None = None,
        matching: dict | None = None,
        optimizer=None,
        scheduler=None,
    ) -> None:
        super().__init__(optimizer=optimizer, scheduler=scheduler)
        self.save_hyperparameters(logger=False, ignore=["optimizer", "scheduler"])
        self.student = student_quad_l2net_confcfs()
        self.teacher = load_frozen_teacher(teacher_weights)
        self.loss = PatchDescriptorDistillationLoss(**(loss or {}))
        self.matching = {"stride": 8, "mutual": True, **(matching or {})}
        unknown = sorted(set(self.matching) - set(MATCHING_KEYS))
        if unknown:
            raise TypeError(f"unknown GCMDistill matching options {unknown} (valid: {', '.join(MATCHING_KEYS)})")

    def train(self, mode: bool = True) -> GCMDistill:
        """Lightning switches the whole module to training mode; the teacher stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    # --- training -------------------------------------------------------------------------
    def compute_losses(self, batch: dict) -> dict[str, Tensor]:
        """Each view through both networks separately (the reference's per-image forward, so BatchNorm's batch
        statistics are per view); `cosine`: the mean per-pixel cos(student, teacher), logged for monitoring."""
        views = [imagenet_normalise(batch["image0"]), imagenet_normalise(batch["image1"])]
        student = [self.student.features(view) for view in views]
        with torch.no_grad():
            teacher = [self.teacher.features(view) for view in views]
        total = self.loss(student, teacher)
        cosine = torch.stack(
            [torch.nn.functional.cosine_similarity(s.detach(), t, dim=1).mean() for s, t in zip(student, teacher)]
        ).mean()
        return {"total": total, "cosine": cosine}

    # --- matching (validation) ------------------------------------------------------------
    @torch.no_grad()
    def match(self, batch: dict) -> Matches:
        """Dense NN matches of the student's descriptors, pair by pair, in batch pixels, unit scores."""
        parts = []
        for b in range(batch["image0"].shape[0]):
            desc0 = self.student.features(imagenet_normalise(batch["image0"][b : b + 1]))[0]
            desc1 = self.student.features(imagenet_normalise(batch["image1"][b : b + 1]))[0]
            kpts0, kpts1 = dense_nn_matches(desc0, desc1, **self.matching)
            n = len(kpts0)
            parts.append(
                Matches(kpts0, kpts1, kpts0.new_ones(n), torch.full((n,), b, dtype=torch.long, device=kpts0.device))
            )
        return Matches.concat(parts)
