"""The command line that resumes an interrupted training run from its checkpoint."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

RUN_SPECIFIC = ("ckpt_path", "hydra.run.dir", "hydra.sweep.dir", "hydra.mode", "hydra.job.num")


def run_overrides() -> list[str]:
    """The command-line overrides of the current Hydra run ([] outside Hydra): Hydra's own (e.g. a search
    path) first, then the task's."""
    if not HydraConfig.initialized():
        return []
    overrides = HydraConfig.get().overrides
    return [*overrides.hydra, *overrides.task]


def resume_command(checkpoint: str | Path, overrides: list[str] | None = None, program: str | None = None) -> str:
    """`<program> <the run's overrides> ckpt_path=<checkpoint>`, shell-quoted: python train.py ... when
    started as a script, corrlab-train ... when started from the entry point.  The resumed run gets a run
    folder of its own (the run folder and a previous ckpt_path are left out)."""
    program = program or sys.argv[0]
    launcher = ["python", program] if program.endswith(".py") else [Path(program).name or "corrlab-train"]
    given = run_overrides() if overrides is None else overrides
    kept = [o for o in given if o.lstrip("+~").split("=", 1)[0] not in RUN_SPECIFIC]
    return shlex.join([*launcher, *kept, f"ckpt_path={checkpoint}"])
