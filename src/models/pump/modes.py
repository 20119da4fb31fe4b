"""Build PUMP's matcher for one of its modes (single / multi / recursive) from a `matching` dict
(the keys of conf/model/pump.yaml's `matching`), shared by the LightningModule and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from corrlab.models.pump.matcher import PumpMatcher
from corrlab.models.pump.multi_scale import MultiScalePump
from corrlab.models.pump.recursive import RecursivePump
from corrlab.models.pump.single_scale import PyramidMatcher

MODES = ("single", "multi", "recursive")


def make_matcher(descriptor: nn.Module, matching: dict[str, Any]) -> Callable[[Tensor, Tensor], Tensor]:
    """images (3, H, W) x 2 -> (N, 6) reciprocal correspondences [x1, y1, x2, y2, score, code] in their pixels."""
    m = matching
    if m.get("mode", "single") not in MODES:
        raise ValueError(f"matching.mode must be one of {MODES}, got '{m.get('mode')}'")
    pyramid = PyramidMatcher(
        levels=m.get("levels", 99),
        min_shape=m.get("min_shape", 5),
        power=m.get("power", 1.5),
        border_norm=m.get("border_norm", 0.9),
        chunk_bytes=int(m.get("chunk_mb", 64) * 2**20),
        level0=m.get("level0", "mm"),
    )
    single = PumpMatcher(descriptor, pyramid)
    if m.get("mode", "single") == "single":
        return single
    if m["mode"] == "multi":
        return MultiScalePump(
            single,
            max_scale=m.get("max_scale", 4.0),
            max_rot=m.get("max_rot", 0.0),
            rot_step=m.get("rot_step", 45),
            levels=m.get("ms_levels", 0),
        )
    return RecursivePump(
        single,
        coarse_size=m.get("coarse_size", 512),
        fine_size=m.get("fine_size", 512),
        overlap=m.get("overlap", 0.5),
        score_thr=m.get("score_thr", 1.0),
        fast_thr=m.get("fast_thr", 0.1),
    )
