"""Interrupted training: checkpoint writes are atomic and stay out of $TMPDIR; SIGTERM saves, says how to resume,
and the resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import torch

from corrlab.pipeline.train import train
from corrlab.training.resume_command import resume_command
from tests.helpers.cli import TINY_TRAINING
from tests.helpers.paths import PROJECT_ROOT
from tests.helpers.training import tiny_run_config


def test_checkpoint_writes_do_not_go_through_tmpdir(tmp_path, monkeypatch):
    """$TMPDIR on a folder that does not exist (as if on another file system): Lightning's write made its temp
    file there; ours writes beside the target."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no_such_tmpdir"))
    train(tiny_run_config(tmp_path / "run", "trainer.max_steps=2", "trainer.limit_val_batches=0"))
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2


def test_an_interrupted_checkpoint_write_leaves_last_ckpt_intact(tmp_path, monkeypatch):
    cfg = tiny_run_config(tmp_path, "trainer.max_steps=2", "trainer.limit_val_batches=0")
    train(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    save = torch.save

    def interrupted_save(obj, f, *args, **kwargs):  # half the bytes reach the file, then the process "dies"
        if hasattr(f, "write"):
            f.write(b"\0" * 1000)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    cfg = tiny_run_config(tmp_path, "trainer.max_steps=4", "trainer.limit_val_batches=0")
    cfg.ckpt_path = str(last)
    with pytest.raises(SystemExit):  # Lightning turns the KeyboardInterrupt into exit status 1
        train(cfg)
    monkeypatch.setattr(torch, "save", save)
    assert last.read_bytes() == before
    assert list(tmpdir.iterdir()) == [] and sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]


TINY = [*TINY_TRAINING, "trainer=cpu", "data.num_train_pairs=8", "data.batch_size=2", "trainer.limit_val_batches=0"]


def start_training(run_dir, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_prints_the_resume_command_and_resumes_exactly(tmp_path):
    """Step checkpoints every step from step 1 (no validation yet: they used to wait for val/score); SIGTERM
    once step 2 is saved; the printed command resumes to the state of an uninterrupted run."""
    full = [
        "trainer.max_steps=6",
        "callbacks.last_checkpoint.every_n_train_steps=1",
        "model._target_=tests.helpers.tiny_matcher.SlowMatcher",
        "+model.step_delay_s=0.3",
    ]
    process = start_training(tmp_path / "interrupted", *TINY, *full)
    last = tmp_path / "interrupted" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (last.exists() and process.poll() is None):
        time.sleep(0.05)
    assert last.exists(), process.communicate()[0]
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 128 + signal.SIGTERM, output
    stopped = torch.load(last, weights_only=False)["global_step"]
    assert 1 <= stopped < 6, output
    command = output.split("resume with:\n", 1)[1].splitlines()[0].strip()
    assert command.startswith("python ") and command.endswith(f"ckpt_path={last}"), output
    assert (tmp_path / "interrupted" / "train.log").read_text().count(command) == 1  # logged in the run too

    assert "hydra.run.dir" not in command  # the resumed run gets a folder of its own
    resumed = start_training(tmp_path / "resumed", *shlex.split(command)[2:])
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[0]
    straight = start_training(tmp_path / "straight", *TINY, *full)
    assert straight.wait(timeout=300) == 0, straight.communicate()[0]
    ends = {
        name: torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)
        for name in ("resumed", "straight")
    }
    assert ends["resumed"]["global_step"] == ends["straight"]["global_step"] == 6
    for key, value in ends["straight"]["state_dict"].items():
        assert torch.equal(ends["resumed"]["state_dict"][key], value), key


def test_resume_command_keeps_the_run_overrides_but_not_its_folder():
    overrides = ["hydra.searchpath=[file:///x]", "hydra.run.dir=/runs/a", "model=pump", "ckpt_path=/old.ckpt", "seed=3"]
    assert resume_command("/runs/a/checkpoints/last.ckpt", overrides, program="train.py") == (
        "python train.py 'hydra.searchpath=[file:///x]' model=pump seed=3 ckpt_path=/runs/a/checkpoints/last.ckpt"
    )
    assert (
        resume_command("c.ckpt", ["+ckpt_path=x"], program="/venv/bin/corrlab-train")
        == "corrlab-train ckpt_path=c.ckpt"
    )
