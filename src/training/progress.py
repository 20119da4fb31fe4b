"""Rich progress bars that show throughput in image pairs per second next to the ETA."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from rich.progress import ProgressColumn, Task
from rich.text import Text


class PairsPerSecondColumn(ProgressColumn):
    """Batches per second (Rich's speed estimate) times the pairs in a batch across all ranks."""

    def __init__(self, pairs_per_batch: dict[int, int], style: Any = None) -> None:
        super().__init__()
        self.pairs_per_batch = pairs_per_batch
        self.style = style

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        pairs = self.pairs_per_batch.get(task.id)
        if speed is None or pairs is None:
            return Text("-- pairs/s", style=self.style)
        return Text(f"{speed * pairs:.1f} pairs/s", style=self.style)


class ThroughputProgressBar(RichProgressBar):
    """Lightning's RichProgressBar (description, bar, batches, elapsed • remaining) with pairs/s in
    place of it/s."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pairs_per_batch: dict[int, int] = {}

    def configure_columns(self, trainer: L.Trainer) -> list:
        columns = super().configure_columns(trainer)
        return columns[:-1] + [PairsPerSecondColumn(self.pairs_per_batch, style=self.theme.processing_speed)]

    def _record(self, task_id: Any, batch: Any, trainer: L.Trainer) -> None:
        if task_id is not None and isinstance(batch, dict) and "name" in batch:
            self.pairs_per_batch[task_id] = len(batch["name"]) * trainer.world_size

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._record(self.train_progress_bar_id, batch, trainer)
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def on_validation_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        super().on_validation_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        self._record(self.val_progress_bar_id, batch, trainer)
