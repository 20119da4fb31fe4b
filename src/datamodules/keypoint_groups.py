"""Keypoint-id groups of SPair-71k and AP-10K: left/right pairs for flipping, geometry-aware groups.

Facts taken from GeoAware-SC (`utils/utils_geoware.py`, SPAIR_FLIP_TRN / SPAIR_GEO_AWARE / AP10K_FLIP /
AP10K_GEO_AWARE), rewritten as tuples of ids; singletons are left out since they never swap and never
make a keypoint geometry-aware.  For 'bus' the training flip table (ids 10-29) is used: GeoAware's test-time
table pairs the unused ids 8/9 with 18/19, which its own left/right labels (SPAIR_LR) contradict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Group = tuple[int, ...]

_CONSECUTIVE_9 = tuple((i, i + 1) for i in range(0, 18, 2))  # (0,1) (2,3) ... (16,17)
_VEHICLE_SIDES = ((10, 20), (13, 23), (11, 21), (14, 24), (12, 22), (15, 25), (16, 17), (26, 27), (18, 19), (28, 29))
_HOOFED_FLIP = ((0, 1), (2, 3), (4, 5), (6, 7), (9, 10), (11, 12), (15, 16), (17, 18), (19, 20))

SPAIR_FLIP_PAIRS: dict[str, tuple[Group, ...]] = {
    "aeroplane": tuple((i, i + 1) for i in range(4, 22, 2)),
    "bicycle": ((2, 3), (6, 7), (9, 10)),
    "bird": ((1, 2), (4, 5), (7, 8), (10, 11), (12, 13), (14, 15)),
    "boat": ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12)),
    "bottle": ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9)),
    "bus": ((0, 1), (2, 3), (5, 6), *_VEHICLE_SIDES),
    "car": ((0, 1), (2, 3), (6, 7), *_VEHICLE_SIDES),
    "cat": ((0, 1), (2, 3), (4, 5), (6, 7), (9, 10), (11, 12)),
    "chair": tuple((i, i + 1) for i in range(0, 14, 2)),
    "cow": _HOOFED_FLIP,
    "dog": ((0, 1), (2, 3), (4, 5), (9, 10), (11, 12)),
    "horse": ((0, 1), (2, 3), (4, 5), (6, 7), (10, 11), (12, 13), (16, 17), (18, 19)),
    "motorbike": ((0, 1), (2, 3)),
    "person": ((0, 1), (2, 3), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19)),
    "pottedplant": ((0, 2), (4, 5), (6, 8)),
    "sheep": _HOOFED_FLIP,
    "train": _CONSECUTIVE_9,
    "tvmonitor": ((0, 2), (4, 6), (3, 7), (8, 10), (12, 14), (11, 15)),
}

_VEHICLE_GEO = ((10, 13, 20, 23), (11, 14, 21, 24), (12, 15, 22, 25), (16, 17, 26, 27), (18, 19, 28, 29))
_HOOFED_GEO = ((2, 3), (9, 10, 11, 12), (15, 16, 17, 18), (19, 20))

SPAIR_GEO_GROUPS: dict[str, tuple[Group, ...]] = {
    "aeroplane": tuple((i, i + 1) for i in range(4, 22, 2)),
    "bicycle": ((2, 3), (6, 7), (9, 10)),
    "bird": ((1, 2), (10, 11), (12, 13), (14, 15)),
    "boat": ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12)),
    "bottle": ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9)),
    "bus": ((0, 1), (2, 3, 5, 6), (4, 7), *_VEHICLE_GEO),
    "car": ((0, 1), (2, 3, 6, 7), (4, 8), (5, 9), *_VEHICLE_GEO),
    "cat": ((2, 3), (9, 10, 11, 12)),
    "chair": ((0, 1), (2, 3), (4, 5, 6, 7), (8, 9), (10, 11), (12, 13)),
    "cow": _HOOFED_GEO,
    "dog": ((2, 3), (9, 10, 11, 12)),
    "horse": ((2, 3), (10, 11, 12, 13), (16, 17, 18, 19)),
    "motorbike": ((0, 1), (2, 3)),
    "person": ((8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19)),
    "pottedplant": ((0, 1, 2, 3), (4, 5), (6, 8)),
    "sheep": _HOOFED_GEO,
    "train": _CONSECUTIVE_9,
    "tvmonitor": ((0, 2, 4, 6), (1, 3, 5, 7), (8, 10, 12, 14), (9, 11, 13, 15)),
}

# AP-10K keypoints: 0 left_eye 1 right_eye 2 nose 3 neck 4 root_of_tail 5 left_shoulder 6 left_elbow
# 7 left_front_paw 8 right_shoulder 9 right_elbow 10 right_front_paw 11 left_hip 12 left_knee
# 13 left_back_paw 14 right_hip 15 right_knee 16 right_back_paw
AP10K_KEYPOINTS = (
    "left_eye",
    "right_eye",
    "nose",
    "neck",
    "root_of_tail",
    "left_shoulder",
    "left_elbow",
    "left_front_paw",
    "right_shoulder",
    "right_elbow",
    "right_front_paw",
    "left_hip",
    "left_knee",
    "left_back_paw",
    "right_hip",
    "right_knee",
    "right_back_paw",
)
AP10K_FLIP_PAIRS: tuple[Group, ...] = ((0, 1), (5, 8), (6, 9), (7, 10), (11, 14), (12, 15), (13, 16))
AP10K_GEO_GROUPS: tuple[Group, ...] = ((5, 8), (6, 9, 12, 15), (7, 10, 13, 16), (11, 14))


def flip_permutation(pairs: Sequence[Group], num_slots: int) -> np.ndarray:
    """The id permutation of a horizontal flip (an involution): after a flip, slot i holds id perm[i]."""
    perm = np.arange(num_slots)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm
