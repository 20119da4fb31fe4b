"""PUMP's scale/rotation code (column 5 of its correspondences): code = 8 s + r for scale 2^(s/2)
and rotation -45 r degrees (wrapped to (-180, 180])."""

from __future__ import annotations

import numpy as np


def encode_scale_rot(scale, rotation):
    """Code(s) of relative scale(s) and rotation(s) in degrees (rounded to the nearest step)."""
    s = np.int32(np.rint(np.log(scale) / (0.5 * np.log(2))))
    r = np.int32(np.rint((-np.asarray(rotation) % 360) / 45)) % 8
    return 8 * s + r


def decode_scale_rot(code):
    """(scale, rotation in degrees) of code(s)."""
    code = np.asarray(code)
    s, r = code // 8, code % 8
    return 2.0 ** (s / 2), -((45 * r + 180) % 360 - 180)
