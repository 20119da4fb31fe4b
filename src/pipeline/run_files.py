"""Writing run-directory artefacts: composed config, JSON files, per-pair records."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def _clean(value: Any, non_finite: Any = "str") -> Any:
    """JSON-safe values: inf and nan become strings 'inf' / 'nan' (or `non_finite`, e.g. None -> null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value) if non_finite == "str" else non_finite
    if isinstance(value, dict):
        return {k: _clean(v, non_finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, non_finite) for v in value]
    return value


def write_json(path: str | Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(data), indent=2, sort_keys=False) + "\n")
    return path


def write_jsonl(path: str | Path, records: Iterable[dict]) -> Path:
    """One JSON object per line; NaN and inf are written as null (standard JSON, read by any tool)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for record in records:
            handle.write(json.dumps(_clean(record, None), allow_nan=False) + "\n")
    return path


def write_config(path: str | Path, config: DictConfig) -> Path:
    """The composed config, interpolations resolved where possible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(config, resolve=True))
    return path
