"""GCM's patch-descriptor distillation loss (arXiv 2403.05388): per pixel, the student's raw descriptor against the
frozen R2D2 teacher's, by cosine similarity; docs/gcm.md ("Distillation") says which form and why."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

FORMS = ("cosine_distance", "reference_abs_cosine")


class PatchDescriptorDistillationLoss(nn.Module):
    """sum over the views i and images b of mean over pixels p of d(F_s(p), F_t(p)), with
    `cosine_distance`: d = 1 - cos (the student's descriptor aligned with the teacher's; the default), or
    `reference_abs_cosine`: d = |cos| (utils/train/distillation_feature_loss.py as released, which drives the
    student orthogonal to the teacher).  The reduction is the reference's: sum over the batch of
    per-image pixel means (`sum / (W * H)`), summed over the two views; cos uses eps 1e-6 as nn.CosineSimilarity."""

    def __init__(self, form: str = "cosine_distance", eps: float = 1e-6) -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"unknown distillation loss form {form!r}; valid: {', '.join(FORMS)}")
        self.form = form
        self.eps = eps

    def forward(self, student: Sequence[Tensor], teacher: Sequence[Tensor]) -> Tensor:
        """`student`, `teacher`: one B x C x H x W raw descriptor map per view (same shapes)."""
        if len(student) != len(teacher) or not student:
            raise ValueError(f"need one teacher map per student map, got {len(student)} and {len(teacher)}")
        total = student[0].new_zeros(())
        for s, t in zip(student, teacher):
            if s.shape != t.shape:
                raise ValueError(f"student map {tuple(s.shape)} and teacher map {tuple(t.shape)} differ in shape")
            cos = F.cosine_similarity(s, t, dim=1, eps=self.eps)
            per_pixel = 1 - cos if self.form == "cosine_distance" else cos.abs()
            total = total + per_pixel.sum() / (s.shape[-2] * s.shape[-1])
        return total
