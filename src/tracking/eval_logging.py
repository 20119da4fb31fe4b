"""Sending an evaluation (summary metrics, per-pair table, figures) to experiment loggers."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger


def table_cell(value: Any) -> Any:
    """A value a results table can hold: numbers and strings as they are, non-finite floats as None,
    lists and dicts as JSON text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def per_pair_table(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns (every record key, in first-seen order) and one row per pair."""
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    return columns, [[table_cell(record.get(c)) for c in columns] for record in records]


def log_evaluation(
    loggers: Sequence[Logger],
    split: str,
    metrics: dict[str, float],
    records: Sequence[dict[str, Any]],
    figures: Mapping[str, Sequence[Path]],
) -> None:
    """`<split>/<metric>` scalars to every logger; the per-pair table (`<split>/per_pair`) and each
    group of figures (`<split>/<key>`) to the loggers that take tables (W&B, Visdom) and images."""
    columns, rows = per_pair_table(records)
    for logger in loggers:
        logger.log_metrics({f"{split}/{k}": float(v) for k, v in metrics.items()}, step=0)
        if hasattr(logger, "log_table") and rows:
            logger.log_table(key=f"{split}/per_pair", columns=columns, data=rows)
        if hasattr(logger, "log_image"):
            for key, paths in figures.items():
                if paths:
                    logger.log_image(key=f"{split}/{key}", images=[str(p) for p in paths])
