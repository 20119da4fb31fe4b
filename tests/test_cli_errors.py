"""Command-line failures: the message on screen, the traceback in the run's log file; wrong override types."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from corrlab.config.overrides import ConfigTypeError, UnknownConfigKeyError, check_overrides
from tests.conftest import CONFIG_DIR
from tests.helpers.paths import PROJECT_ROOT


def run_eval(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "eval.py"), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )


def test_wrong_type_is_a_type_error_not_an_unknown_key():
    with pytest.raises(ConfigTypeError) as error:
        check_overrides(CONFIG_DIR, "train", ["trainer.max_steps=abc"])
    assert str(error.value) == "Wrong type for config key 'trainer.max_steps': it takes an integer, got 'abc'."
    with pytest.raises(ConfigTypeError, match="'trainer.max_epochs': it takes an integer or null, got 'x'"):
        check_overrides(CONFIG_DIR, "train", ["trainer.max_epochs=x"])
    with pytest.raises(ConfigTypeError, match="'allow_random_weights': it takes a boolean .*, got 'maybe'"):
        check_overrides(CONFIG_DIR, "eval", ["allow_random_weights=maybe"])
    with pytest.raises(UnknownConfigKeyError):  # still an unknown key
        check_overrides(CONFIG_DIR, "train", ["trainer.max_step=3"])


@pytest.mark.slow
def test_failure_shows_the_message_and_logs_the_traceback_in_the_run_folder(tmp_path):
    args = ["data=hpatches", f"data.root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_eval(args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Error executing job" not in result.stderr
    assert "Error: DatasetNotFoundError: HPatches dataset not found at" in result.stderr
    assert "HYDRA_FULL_ERROR=1" in result.stderr and str(tmp_path / "run" / "eval.log") in result.stderr
    logged = (tmp_path / "run" / "eval.log").read_text()
    assert "Traceback" in logged and "DatasetNotFoundError: HPatches dataset not found" in logged
    full = run_eval([*args[:-1], f"hydra.run.dir={tmp_path / 'run_full'}"], env={"HYDRA_FULL_ERROR": "1"})
    assert full.returncode == 1 and "Traceback" in full.stderr and "DatasetNotFoundError" in full.stderr
    assert "Traceback" in (tmp_path / "run_full" / "eval.log").read_text()


@pytest.mark.slow
def test_cli_reports_a_wrong_type_before_hydra_runs(tmp_path):
    result = run_eval(["seed=abc", f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: Wrong type for config key 'seed': it takes an integer, got 'abc'."
