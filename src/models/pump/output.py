"""PUMP's output file: an npz archive with one array `corres` (N, 6) rows
[x1, y1, x2, y2, score, scale_rot_code] (N, 4 [x1, y1, x2, y2] when densified), whatever the
extension (the reference writes it with np.savez to the path it is given)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_corres(path: str | Path, corres: np.ndarray) -> Path:
    """Write `corres` (float32) to `path` as the reference does; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, corres=np.asarray(corres, dtype=np.float32))
    return path


def load_corres(path: str | Path) -> np.ndarray:
    """The `corres` array of a file written by save_corres or by the reference."""
    with np.load(path) as archive:
        return archive["corres"]
