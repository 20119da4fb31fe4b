"""Progress as log lines: what a log file (nohup, SLURM, CI) shows while a run goes on."""

from __future__ import annotations

import logging

import pytest

from corrlab.tracking import progress_lines
from corrlab.tracking.progress_lines import KeepProgressOffTerminal, ProgressLines
from tests.helpers.cli import TINY_TRAINING, run_cli


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_every_n_items_with_rate_and_eta(monkeypatch, caplog):
    clock = Clock()
    monkeypatch.setattr(progress_lines.time, "perf_counter", clock)
    monkeypatch.setattr(progress_lines, "console_is_terminal", lambda: False)
    caplog.set_level(logging.INFO, logger="corrlab.progress")
    lines = ProgressLines("hpatches/test", total=10, unit="pairs", every_n=4, every_s=1e9)
    for done in range(1, 11):
        clock.now += 2.0  # 0.5 pairs/s
        lines.update(done)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "hpatches/test: 4/10 pairs, 0.50 pairs/s, ETA 0:00:12",
        "hpatches/test: 8/10 pairs, 0.50 pairs/s, ETA 0:00:04",
        "hpatches/test: 10/10 pairs, 0.50 pairs/s",
    ]


def test_a_resumed_run_leaves_earlier_steps_out_of_the_rate_and_lines_come_every_few_seconds(monkeypatch, caplog):
    clock = Clock()
    monkeypatch.setattr(progress_lines.time, "perf_counter", clock)
    monkeypatch.setattr(progress_lines, "console_is_terminal", lambda: False)
    caplog.set_level(logging.INFO, logger="corrlab.progress")
    lines = ProgressLines("train", total=1000, unit="steps", every_n=10**6, every_s=30, initial=500)
    clock.now += 31.0
    lines.update(562, "loss 0.5")
    assert [r.getMessage() for r in caplog.records] == ["train: 562/1000 steps, 2.00 steps/s, ETA 0:03:39, loss 0.5"]


def test_on_a_terminal_progress_lines_reach_the_file_only(monkeypatch, tmp_path):
    monkeypatch.setattr(progress_lines, "console_is_terminal", lambda: True)
    root = logging.getLogger()
    console, file = logging.StreamHandler(), logging.FileHandler(tmp_path / "run.log")
    root.addHandler(console)
    root.addHandler(file)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        ProgressLines("x", total=1, unit="pairs").update(1)
        assert any(isinstance(f, KeepProgressOffTerminal) for f in console.filters) and not file.filters
        file.flush()
        assert "x: 1/1 pairs" in (tmp_path / "run.log").read_text()
    finally:
        root.setLevel(level)
        root.removeHandler(console)
        root.removeHandler(file)
        file.close()


@pytest.mark.slow
def test_train_log_file_shows_progress(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY_TRAINING, "trainer.max_epochs=2", "trainer.limit_train_batches=3", "data.num_val_pairs=2"]
    run_cli("train.py", [*args, "callbacks.progress_log.every_n_steps=2", f"hydra.run.dir={run_dir}"])
    text = (run_dir / "train.log").read_text()
    assert "train: 2/6 steps" in text and "train: 4/6 steps" in text and "train: 6/6 steps, " in text
