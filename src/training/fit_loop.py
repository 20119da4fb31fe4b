"""Lightning's fit loop without its max_steps special case, which breaks resuming from an epoch-end checkpoint."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loops.fit_loop import _FitLoop


class ExactResumeFitLoop(_FitLoop):
    """Lightning treats every run with `max_steps` set as "iteration based": resuming from a checkpoint written
    at the end of an epoch then re-enters that finished epoch, so the run does one epoch too few, the logged
    steps are off by one and the losses differ from an uninterrupted run.  The epoch bookkeeping is the same
    whether max_steps is set or not, so this loop uses the epoch-based path always (tests/test_resume.py)."""

    def _iteration_based_training(self) -> bool:
        return False


def use_exact_resume_loop(trainer: L.Trainer) -> None:
    """Swap the trainer's fit loop for ExactResumeFitLoop, keeping its limits and its epoch loop."""
    loop = trainer.fit_loop
    exact = ExactResumeFitLoop(trainer, min_epochs=loop.min_epochs, max_epochs=loop.max_epochs)
    exact.epoch_loop = loop.epoch_loop
    trainer.fit_loop = exact
