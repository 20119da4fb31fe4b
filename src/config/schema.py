"""Structured configs for the shared parts of train.yaml / eval.yaml: a typo there fails at composition."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from corrlab.config.run_root import run_root

CONFIG_DIR = Path(str(files("corrlab.conf")))  # the configs shipped in the package (conf/ in a checkout)


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str = MISSING
    work_dir: str = MISSING


@dataclass
class TrainerConfig:
    """The lightning.pytorch.Trainer arguments corrlab exposes (None = Lightning's default)."""

    _target_: str = "lightning.pytorch.Trainer"
    default_root_dir: Optional[str] = None
    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: Any = "auto"
    precision: Any = "32-true"
    max_epochs: Optional[int] = None
    min_epochs: Optional[int] = None
    max_steps: int = -1
    max_time: Optional[str] = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    val_check_interval: Any = None
    check_val_every_n_epoch: Optional[int] = 1
    num_sanity_val_steps: Optional[int] = None
    log_every_n_steps: Optional[int] = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: Optional[float] = None
    gradient_clip_algorithm: Optional[str] = None
    deterministic: Any = None
    benchmark: Optional[bool] = None
    fast_dev_run: Any = False
    overfit_batches: Any = 0.0
    detect_anomaly: bool = False
    enable_progress_bar: Optional[bool] = None
    enable_model_summary: Optional[bool] = None
    enable_checkpointing: Optional[bool] = None
    sync_batchnorm: bool = False
    use_distributed_sampler: bool = True
    reload_dataloaders_every_n_epochs: int = 0
    profiler: Any = None
    inference_mode: bool = True


@dataclass
class TrainConfig:
    """Top level of conf/train.yaml."""

    task_name: str = "train"
    run_name: str = "run"
    tags: list[str] = field(default_factory=list)
    seed: int = 42
    ckpt_path: Optional[str] = None
    compile: bool = False
    activation_checkpointing: bool = False
    optimized_metric: Optional[str] = None
    paths: PathsConfig = MISSING
    trainer: TrainerConfig = MISSING
    model: Any = MISSING
    data: Any = MISSING
    benchmark: Any = None
    callbacks: Any = None
    logger: Any = None


@dataclass
class EvalConfig:
    """Top level of conf/eval.yaml."""

    task_name: str = "eval"
    run_name: str = "run"
    tags: list[str] = field(default_factory=list)
    seed: int = 0
    split: str = "test"
    ckpt_path: Optional[str] = None
    weights: Any = None
    allow_random_weights: bool = False
    device: str = "auto"
    precision: str = "32"
    devices: int = 1
    predictions: Optional[str] = None
    save_predictions: bool = True
    num_figures: int = 4
    paths: PathsConfig = MISSING
    model: Any = MISSING
    data: Any = MISSING
    benchmark: Any = None
    logger: Any = None


def run_name(experiment: Optional[str], model: str, data: str) -> str:
    """The `corrlab_run_name` resolver: the experiment's name when one is chosen, else <model>_<data>."""
    return str(experiment) if experiment else f"{model}_{data}"


def sweep_direction(mode: str) -> str:
    """The `corrlab_sweep_direction` resolver: a benchmark's mode (max | min) as a sweeper direction."""
    directions = {"max": "maximize", "min": "minimize"}
    if mode not in directions:
        raise ValueError(f"benchmark.mode must be max or min, got '{mode}'")
    return directions[mode]


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore and register the `corrlab_root`, `corrlab_run_name` and
    `corrlab_sweep_direction` resolvers (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="eval_schema", node=EvalConfig)
    store.store(group="paths", name="schema", node=PathsConfig)
    store.store(group="trainer", name="schema", node=TrainerConfig)
    if not OmegaConf.has_resolver("corrlab_root"):
        OmegaConf.register_new_resolver("corrlab_root", lambda: str(run_root()))
    if not OmegaConf.has_resolver("corrlab_run_name"):
        OmegaConf.register_new_resolver("corrlab_run_name", run_name)
    if not OmegaConf.has_resolver("corrlab_sweep_direction"):
        OmegaConf.register_new_resolver("corrlab_sweep_direction", sweep_direction)
