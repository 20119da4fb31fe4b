"""TinyMatcher that counts its forward calls and loads weights per role (tests of the prediction cache)."""

from __future__ import annotations

from pathlib import Path

import torch

from corrlab.matches import Matches
from tests.helpers.tiny_matcher import TinyMatcher


class CountingMatcher(TinyMatcher):
    """`calls` counts match() calls in this process.  Official weights: {student, teacher} files holding
    the state_dict (the teacher's is loaded last and wins); `init` (a model argument) loads one first."""

    calls = 0
    weight_roles = ("student", "teacher")
    mixed_precision = True

    def __init__(self, dim: int = 16, init: str | None = None) -> None:
        super().__init__(dim=dim)
        if init:
            self.load_state_dict(torch.load(init, weights_only=True))
            self.note_weights(init, "test state_dict", "model.init")

    def match(self, batch: dict):
        CountingMatcher.calls += 1
        return super().match(batch)

    def load_official(self, paths: dict[str, Path]) -> None:
        if not isinstance(paths, dict):
            raise ValueError(
                f"{type(self).__name__} loads one file per role: give weights.<role>=<path> for student, teacher"
            )
        for role in sorted(paths, reverse=True):  # student, then teacher
            self.load_state_dict(torch.load(paths[role], weights_only=True))
            self.note_weights(paths[role], "test state_dict", role)


class DenseCountingMatcher(CountingMatcher):
    """A dense warp at half resolution (its warp_frame the image-0 size): cell centres shifted by the network's
    first two channels, certainty from the third (weights-dependent numbers, for the cache's dense path)."""

    def match(self, batch: dict) -> Matches:
        CountingMatcher.calls += 1
        image0 = batch["image0"]
        features = self.net[0](image0)[:, :3]  # stride 2: the half-resolution grid
        _, _, h, w = features.shape
        ys, xs = torch.meshgrid(
            torch.arange(h, device=image0.device), torch.arange(w, device=image0.device), indexing="ij"
        )
        centres = torch.stack([xs, ys], -1).float() * 2 + 0.5
        warp = centres + 3 * torch.tanh(features[:, :2].permute(0, 2, 3, 1))
        return Matches.dense(warp, torch.sigmoid(features[:, 2]), warp_frame=tuple(image0.shape[-2:]))
