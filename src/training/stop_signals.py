"""SIGINT / SIGTERM (Ctrl-C, a SLURM pre-emption) turned into a flag the training loop acts on at a safe point."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a resumable checkpoint.  `signal_number` is None on a rank
    that did not receive the signal itself (another rank did)."""

    def __init__(self, signal_number: int | None, checkpoint: str, global_step: int) -> None:
        self.signal_name = signal.Signals(signal_number).name if signal_number else "a stop signal on another rank"
        super().__init__(f"{self.signal_name} at step {global_step}: resumable checkpoint {checkpoint}")
        self.signal_number = signal_number
        self.checkpoint = checkpoint
        self.global_step = global_step

    @property
    def exit_code(self) -> int:
        """128 + the signal number, the shell's convention for a process ended by a signal."""
        return 128 + (self.signal_number or signal.SIGTERM)


class StopSignals:
    """While installed, the first SIGINT or SIGTERM only records its number in `received` (the loop saves
    and stops after the current optimizer step); a second one of the same kind acts as it would have
    without us (KeyboardInterrupt, or the previous handler), to abort a save that hangs."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        self.received = None
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            return
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise SystemExit(128 + signum)


def ignore_stop_signals() -> None:
    """For data-loader workers: leave SIGINT / SIGTERM to the main process, which stops cleanly (a worker
    killed by them would make the main process fail before it can save)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
