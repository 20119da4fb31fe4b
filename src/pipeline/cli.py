"""Hydra entry points for train.py and eval.py (also installed as corrlab-train / corrlab-eval)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from corrlab.config.overrides import UnknownConfigKeyError, check_overrides
from corrlab.config.schema import CONFIG_DIR, register_configs
from corrlab.pipeline.quiet import quiet_third_party


def run(task: Callable[[DictConfig], object], config_name: str) -> None:
    """Check the overrides, then hand over to Hydra with `task` as the job."""
    register_configs()
    quiet_third_party()
    try:
        check_overrides(CONFIG_DIR, config_name, sys.argv[1:])
    except UnknownConfigKeyError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(2)
    hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(task)()


def train_main() -> None:
    from corrlab.pipeline.train import train_task

    run(train_task, "train")


def eval_main() -> None:
    from corrlab.pipeline.evaluate import evaluate

    run(evaluate, "eval")
