"""Skip optimizer steps with a NaN/Inf loss or gradient instead of corrupting the weights."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch

from corrlab.pipeline.run_files import write_json

log = logging.getLogger(__name__)


class NonFiniteTrainingError(RuntimeError):
    """Too many optimizer steps in a row had a non-finite loss or gradient."""


class NonFiniteGuard(L.Callback):
    """Before each optimizer step, checks the loss of every (accumulated) batch and all gradients.  When
    any is NaN/Inf on any rank, the gradients are dropped, so the optimizer leaves every parameter and
    its state untouched, and the step is counted (`train/skipped_steps`, kept in checkpoints).  The
    offending batches' pair names, the loss and its logged components go to
    `<dirpath>/step<global step>_rank<rank>.json`.  After `max_consecutive` skipped steps in a row,
    training stops with NonFiniteTrainingError.  Under 16-bit mixed precision the GradScaler already
    skips steps with overflowing gradients, so only the loss is checked there."""

    def __init__(self, dirpath: str, max_consecutive: int = 20) -> None:
        self.dirpath = Path(dirpath)
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.consecutive = 0
        self._names: list[str] = []
        self._losses: list[torch.Tensor] = []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if isinstance(batch, dict) and "name" in batch:
            self._names += list(batch["name"])

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        self._losses.append(loss.detach().float().reshape(()))

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        bad_loss = bool(self._losses) and not bool(torch.stack(self._losses).isfinite().all())
        check_grads = self._scaler(trainer) is None and bool(params)
        bad_grads = check_grads and not bool(torch.stack([p.grad.isfinite().all() for p in params]).all())
        skip = trainer.strategy.reduce_boolean_decision(bad_loss or bad_grads, all=False)
        if skip:
            self.skipped += 1
            self.consecutive += 1
            if bad_loss or bad_grads:
                self._dump(trainer, pl_module, bad_grads, params)
            for p in params:
                p.grad = None
        else:
            self.consecutive = 0
        self._names, self._losses = [], []
        pl_module.log("train/skipped_steps", float(self.skipped), on_step=True, on_epoch=False)
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteTrainingError(
                f"{self.consecutive} optimizer steps in a row had a non-finite loss or gradient; "
                f"the offending batches are listed in {self.dirpath}"
            )

    @staticmethod
    def _scaler(trainer: L.Trainer) -> Any:
        return getattr(trainer.precision_plugin, "scaler", None)

    def _dump(self, trainer: L.Trainer, pl_module: L.LightningModule, bad_grads: bool, params: list) -> None:
        names = {id(p): n for n, p in pl_module.named_parameters()}
        components = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("train/") and k != "train/skipped_steps"
        }
        path = self.dirpath / f"step{trainer.global_step:07d}_rank{trainer.global_rank}.json"
        write_json(
            path,
            {
                "global_step": trainer.global_step,
                "epoch": trainer.current_epoch,
                "pairs": self._names,
                "loss": [float(v) for v in self._losses],
                "loss_components": components,
                "nonfinite_gradients": [names.get(id(p), "?") for p in params if not bool(p.grad.isfinite().all())]
                if bad_grads
                else [],
            },
        )
        log.warning(
            "non-finite loss or gradient at step %d: step skipped (%d so far), see %s",
            trainer.global_step,
            self.skipped,
            path,
        )

    def state_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped, "consecutive": self.consecutive}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.skipped = int(state_dict["skipped"])
        self.consecutive = int(state_dict["consecutive"])
