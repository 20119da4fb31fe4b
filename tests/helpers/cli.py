"""Running train.py / eval.py as a user would, in a subprocess, with the test-only tiny model."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers.paths import PROJECT_ROOT

TEST_CONF = PROJECT_ROOT / "tests" / "helpers" / "conf"
TINY_TRAINING = [
    f"hydra.searchpath=[file://{TEST_CONF}]",
    "model=tiny",
    "logger=csv",
    "data.image_size=[48,64]",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
]


def run_cli(
    script: str, args: list[str], timeout_s: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python <script> <args>` from the project root; fails the test with the output on error."""
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{script} {' '.join(args)} exited with {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result
