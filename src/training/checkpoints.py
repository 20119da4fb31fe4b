"""last.ckpt that is always the latest training state, written atomically, read safely, and saved on SIGINT /
SIGTERM."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from corrlab.safe_loading import torch_load
from corrlab.training.stop_signals import StopSignals, TrainingInterrupted

log = logging.getLogger(__name__)


def partial_path(path: Path) -> Path:
    """Where a checkpoint is written before it is renamed onto `path`: beside it, hidden."""
    return path.with_name(f".{path.name}.partial")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a hidden file beside the target, fsyncs it and renames it onto the target, so
    the target is either the old or the new checkpoint, never half of one, whatever interrupts the write.
    (Lightning's own write goes through a temp file in $TMPDIR and moves it, which is a copy, not atomic,
    when $TMPDIR is another file system, and leaves the temp file there when the process is killed.)
    Checkpoints are read as eval.py reads them (tests/test_safe_loading.py)."""

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """torch.load(weights_only=True) on the CPU: a file that would run pickled code, or is not a checkpoint,
        is refused naming it and `ckpt_path`, without torch's advice to retry with weights_only=False (Lightning's
        `map_location` and `weights_only` are not needed: its default maps to the CPU, as this does)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        return torch_load(path, "ckpt_path")

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(target)
        try:
            with open(partial, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if os.name == "posix":  # the rename itself survives a power cut
            directory = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)


class LastCheckpoint(Checkpoint):
    """Keeps `<dirpath>/last.ckpt` the latest training state: rewritten every `every_n_train_steps` optimizer
    steps (when set; from step 1, validation metrics or not), at the end of every epoch (after its
    validation), at the step that reaches `max_steps` and when training ends.  On SIGINT / SIGTERM it saves
    after the current optimizer step on every rank, logs the command that resumes, and stops training with
    TrainingInterrupted.  (Lightning's ModelCheckpoint rewrites its last.ckpt only when it also writes a
    monitored checkpoint, and defers step checkpoints until the monitored metric exists.)"""

    def __init__(self, dirpath: str, every_n_train_steps: int | None = None) -> None:
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ValueError(f"every_n_train_steps must be null or >= 1, got {every_n_train_steps}")
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_train_steps = every_n_train_steps
        self.signals = StopSignals()
        self._saved_step = -1
        self._seen_step = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved_step = self._seen_step = trainer.global_step  # a resumed run starts from a saved state
        self.signals.install()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        stepped, self._seen_step = step != self._seen_step, step
        if not stepped:
            return  # mid gradient accumulation: the accumulated gradients are not part of a checkpoint
        stop = trainer.strategy.reduce_boolean_decision(self.signals.received is not None, all=False)
        every = self.every_n_train_steps
        if stop or (every and step % every == 0) or (trainer.max_steps >= 0 and step >= trainer.max_steps):
            self.save(trainer)
        if stop:
            raise TrainingInterrupted(self.signals.received, str(self.path), step)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)
        self.signals.restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.signals.restore()

    def save(self, trainer: L.Trainer) -> None:
        """Write last.ckpt unless it already holds this step (every rank calls this: the state is gathered)."""
        if trainer.global_step == self._saved_step or trainer.sanity_checking or trainer.fast_dev_run:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # the full, resumable state
        self._saved_step = trainer.global_step
