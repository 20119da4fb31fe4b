"""Where runs write logs/ and look for data/ (kept free of heavy imports: `corrlab-data` reads it)."""

from __future__ import annotations

import os
from pathlib import Path


def run_root() -> Path:
    """$CORRLAB_ROOT, else the working directory."""
    return Path(os.environ.get("CORRLAB_ROOT") or os.getcwd()).resolve()
