"""Training task: build datamodule, module, callbacks, loggers and trainer from the config, then fit."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from corrlab.pipeline.instantiate import instantiate, instantiate_collection, instantiate_method
from corrlab.pipeline.run_files import write_config, write_json
from corrlab.tracking.run_end import close_loggers
from corrlab.training.checkpoints import AtomicCheckpointIO, LastCheckpoint
from corrlab.training.fit_loop import use_exact_resume_loop
from corrlab.training.resume_command import resume_command
from corrlab.training.speedups import compile_networks, enable_activation_checkpointing
from corrlab.training.stop_signals import TrainingInterrupted

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the configured model; write config.yaml and metrics.json (final validation metrics) to
    the run dir and return those metrics."""
    output_dir = Path(cfg.paths.output_dir)
    rank_zero_only(write_config)(output_dir / "config.yaml", cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = instantiate(cfg.data)
    module = instantiate_method(cfg.model)
    if cfg.activation_checkpointing:
        blocks = enable_activation_checkpointing(module)
        log.info("activation checkpointing: %d blocks of %s", blocks, type(module).__name__)
    if cfg.compile:
        log.info("torch.compile: %s", ", ".join(compile_networks(module)) or "nothing to compile")
    callbacks = instantiate_collection(cfg.get("callbacks"))
    loggers = instantiate_collection(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()])
    use_exact_resume_loop(trainer)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    if trainer.is_global_zero:
        log.info("training %s on %s; run dir %s", type(module).__name__, type(datamodule).__name__, output_dir)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    except TrainingInterrupted as stop:
        if trainer.is_global_zero:
            log.warning(
                "%s: training stopped at step %d; last checkpoint %s\nresume with:\n  %s",
                stop.signal_name,
                stop.global_step,
                stop.checkpoint,
                resume_command(stop.checkpoint),
            )
        raise SystemExit(stop.exit_code) from stop
    finally:
        close_loggers(loggers, finalize=False)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    if trainer.is_global_zero:
        write_json(output_dir / "metrics.json", metrics)
        for checkpoint in trainer.checkpoint_callbacks:
            if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
                log.info("best checkpoint: %s", checkpoint.best_model_path)
            if isinstance(checkpoint, LastCheckpoint) and checkpoint.path.is_file():
                log.info("last checkpoint (final state; resume with ckpt_path=...): %s", checkpoint.path)
        log.info("final validation metrics: %s", {k: round(v, 4) for k, v in metrics.items()})
    return metrics


def train_task(cfg: DictConfig) -> float | None:
    """The Hydra job behind train.py: train, then hand `cfg.optimized_metric` (if set) to the sweeper."""
    metrics = train(cfg)
    if not cfg.get("optimized_metric"):
        return None
    if cfg.optimized_metric not in metrics:
        raise KeyError(f"optimized_metric '{cfg.optimized_metric}' was not logged; logged: {sorted(metrics)}")
    return metrics[cfg.optimized_metric]
