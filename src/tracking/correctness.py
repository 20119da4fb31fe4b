"""Which predicted matches are right, from whatever ground truth the batch carries (for figures)."""

from __future__ import annotations

from torch import Tensor

from corrlab.geometry.epipolar import fundamental_from_pose, symmetric_epipolar_distance
from corrlab.geometry.homography import transfer_error
from corrlab.matches import Matches

DEFAULT_THRESHOLD_PX = 3.0


def match_correctness(
    batch: dict, b: int, matches: Matches, threshold_px: float = DEFAULT_THRESHOLD_PX
) -> Tensor | None:
    """Bool (N,) for pair b: homography transfer error, else symmetric epipolar distance, <= threshold
    (batch pixels); None when the batch has no geometric ground truth."""
    if "H_0to1" in batch:
        return transfer_error(batch["H_0to1"][b].to(matches.kpts0), matches.kpts0, matches.kpts1) <= threshold_px
    if all(k in batch for k in ("K0", "K1", "T_0to1")):
        F = fundamental_from_pose(batch["K0"][b], batch["K1"][b], batch["T_0to1"][b])
        return symmetric_epipolar_distance(matches.kpts0, matches.kpts1, F.to(matches.kpts0)) <= threshold_px
    return None
