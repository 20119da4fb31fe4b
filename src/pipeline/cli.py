"""Hydra entry points for train.py and eval.py (also installed as corrlab-train / corrlab-eval)."""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from corrlab.config.overrides import ConfigOverrideError, check_overrides
from corrlab.config.schema import CONFIG_DIR, register_configs
from corrlab.pipeline.memory import leave_triton_unloaded, return_freed_memory
from corrlab.pipeline.quiet import quiet_third_party

log = logging.getLogger("corrlab")


def log_to_run_files(message: str) -> list[str]:
    """Write `message` with the current exception's traceback into the run's log file(s) only (the
    console gets the message alone); returns the files written."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, sys.exc_info())
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for handler in files:
        handler.handle(record)
        handler.flush()
    return [h.baseFilename for h in files]


def reporting_errors(task: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """The job, with a failure logged (traceback included) into the run folder's log file and shown
    on screen as its message only; HYDRA_FULL_ERROR=1 shows the full traceback as well."""

    @functools.wraps(task)
    def job(cfg: DictConfig) -> object:
        try:
            return task(cfg)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            files = log_to_run_files(message)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            where = f"the traceback is in {files[0]}" if files else "no run log file"
            print(f"Error: {message}\n({where}; set HYDRA_FULL_ERROR=1 to print it here)", file=sys.stderr)
            sys.exit(1)

    return job


def weight_role_overrides(args: list[str]) -> list[str]:
    """`weights.<role>=<path>` adds a key to the `weights` mapping (Hydra spells that `+weights.<role>=`)."""
    return [f"+{arg}" if re.match(r"weights\.\w+=", arg) else arg for arg in args]


def run(task: Callable[[DictConfig], object], config_name: str) -> None:
    """Check the overrides, then hand over to Hydra with `task` as the job."""
    register_configs()
    quiet_third_party()
    return_freed_memory()
    sys.argv[1:] = weight_role_overrides(sys.argv[1:])
    try:
        check_overrides(CONFIG_DIR, config_name, sys.argv[1:])
    except ConfigOverrideError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(2)
    hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(reporting_errors(task))()


def train_main() -> None:
    from corrlab.pipeline.train import train_task

    run(train_task, "train")


def eval_main() -> None:
    quiet_third_party()  # before the imports: torch warns there that flop counting lacks Triton
    leave_triton_unloaded()
    from corrlab.pipeline.evaluate import evaluate

    run(evaluate, "eval")
