"""Training progress as log lines (step/total, pairs/s, ETA, loss) so that a log file shows how a run is going."""

from __future__ import annotations

from typing import Any

import lightning as L

from corrlab.tracking.progress_lines import ProgressLines


class ProgressLog(L.Callback):
    """A line every `every_n_steps` optimiser steps or `every_s` seconds (global-zero rank only)."""

    def __init__(self, every_n_steps: int = 50, every_s: float = 60.0) -> None:
        self.every_n_steps, self.every_s = every_n_steps, every_s
        self.lines: ProgressLines | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            total = trainer.estimated_stepping_batches
            total = int(total) if total != float("inf") else None
            self.lines = ProgressLines(
                "train", total, "steps", self.every_n_steps, self.every_s, initial=trainer.global_step
            )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.lines is None:
            return
        loss = trainer.callback_metrics.get("train/total")
        extra = f"epoch {trainer.current_epoch}" + (f", loss {float(loss):.4g}" if loss is not None else "")
        self.lines.update(trainer.global_step, extra)
