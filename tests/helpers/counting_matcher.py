"""TinyMatcher that counts its forward calls and loads weights per role (tests of the prediction cache)."""

from __future__ import annotations

from pathlib import Path

import torch

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
        for role in sorted(paths, reverse=True):  # student, then teacher
            self.load_state_dict(torch.load(paths[role], weights_only=True))
            self.note_weights(paths[role], "test state_dict", role)
