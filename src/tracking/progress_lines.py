"""Progress as plain log lines (done/total, throughput, ETA) for log files: nohup, SLURM and CI see no Rich bar."""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta

log = logging.getLogger("corrlab.progress")


def console_is_terminal() -> bool:
    return sys.stdout.isatty() or sys.stderr.isatty()


class KeepProgressOffTerminal(logging.Filter):
    """On a terminal the Rich bar shows progress: progress lines go to the log file only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != log.name


def route_progress_lines() -> None:
    """When the console is a terminal, keep progress lines out of the console handlers (idempotent)."""
    if not console_is_terminal():
        return
    for handler in logging.getLogger().handlers:
        is_console = isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
        if is_console and not any(isinstance(f, KeepProgressOffTerminal) for f in handler.filters):
            handler.addFilter(KeepProgressOffTerminal())


class ProgressLines:
    """Logs `label: done/total unit, rate unit/s, ETA` every `every_n` items or `every_s` seconds, and at the end."""

    def __init__(
        self, label: str, total: int | None, unit: str, every_n: int = 50, every_s: float = 60.0, initial: int = 0
    ) -> None:
        """`initial`: items already done before this run (a resumed training), left out of the rate."""
        route_progress_lines()
        self.label, self.total, self.unit = label, total, unit
        self.every_n, self.every_s = every_n, every_s
        self.start = self.last_time = time.perf_counter()
        self.initial = self.last_done = initial

    def update(self, done: int, extra: str = "") -> None:
        now = time.perf_counter()
        finished = self.total is not None and done >= self.total
        if not finished and done - self.last_done < self.every_n and now - self.last_time < self.every_s:
            return
        self.last_done, self.last_time = done, now
        rate = (done - self.initial) / max(now - self.start, 1e-9)
        of_total = f"/{self.total}" if self.total else ""
        eta = ""
        if self.total and rate > 0 and not finished:
            eta = f", ETA {timedelta(seconds=round((self.total - done) / rate))}"
        suffix = f", {extra}" if extra else ""
        log.info("%s: %d%s %s, %.2f %s/s%s%s", self.label, done, of_total, self.unit, rate, self.unit, eta, suffix)
