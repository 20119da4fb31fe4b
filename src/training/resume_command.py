"""The command line that resumes an interrupted training run from its checkpoint."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig


def run_overrides() -> list[str]:
    """The command-line overrides of the current Hydra run ([] outside Hydra)."""
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def resume_command(checkpoint: str | Path, overrides: list[str] | None = None, program: str | None = None) -> str:
    """`<program> <the run's overrides> ckpt_path=<checkpoint>`, shell-quoted: python train.py ... when
    started as a script, corrlab-train ... when started from the entry point."""
    program = program or sys.argv[0]
    launcher = ["python", program] if program.endswith(".py") else [Path(program).name or "corrlab-train"]
    kept = [
        o for o in (run_overrides() if overrides is None else overrides) if not o.lstrip("+~").startswith("ckpt_path")
    ]
    return shlex.join([*launcher, *kept, f"ckpt_path={checkpoint}"])
