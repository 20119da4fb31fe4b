"""Ending a run's loggers: Lightning finalizes them after fit; W&B runs must also be finished."""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch.loggers import Logger


def close_loggers(loggers: Sequence[Logger], finalize: bool) -> None:
    """Finalize each logger (when no Trainer did) and close those that have `close()` (W&B: finish the
    run, print the `wandb sync` command when offline)."""
    for logger in loggers:
        if finalize:
            logger.finalize("success")
        close = getattr(logger, "close", None)
        if callable(close):
            close()
