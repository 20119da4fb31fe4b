"""Evaluation task: one model on one benchmark split -> summary.json, per_pair.jsonl and figures."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from corrlab.modules.base import MatchingModule
from corrlab.pipeline.instantiate import instantiate, instantiate_collection
from corrlab.pipeline.run_files import write_config, write_json, write_jsonl
from corrlab.tracking.correctness import match_correctness
from corrlab.tracking.eval_logging import log_evaluation
from corrlab.tracking.figures import draw_matches, mma_curve, plot_mma_curves
from corrlab.tracking.run_end import close_loggers

log = logging.getLogger(__name__)


class MissingWeightsError(RuntimeError):
    """A learned model was about to be evaluated with random weights."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_weights(module: MatchingModule, cfg: DictConfig) -> str:
    """Load ckpt_path (corrlab) or weights (official); refuse random weights unless allowed.
    Returns a description of what was loaded."""
    if cfg.ckpt_path and cfg.weights:
        raise ValueError("give either ckpt_path (a corrlab checkpoint) or weights (an official one), not both")
    if cfg.ckpt_path:
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise FileNotFoundError(f"ckpt_path: no such checkpoint '{path}'")
        state = torch.load(path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"], strict=True)
        return f"corrlab checkpoint {path}"
    if cfg.weights:
        path = Path(cfg.weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights: no such file '{path}' (set weights=<path to the official checkpoint>)")
        module.load_official(path)
        return f"official weights {path}"
    if module.requires_weights and not cfg.allow_random_weights:
        raise MissingWeightsError(
            f"{type(module).__name__} has learned weights but none were given: set ckpt_path=<corrlab .ckpt> or "
            "weights=<official checkpoint> (or allow_random_weights=true to evaluate an untrained model on purpose)"
        )
    return "none (training-free model)" if not module.requires_weights else "random initialisation (allowed)"


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.2f} pairs/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def evaluate(cfg: DictConfig) -> dict:
    """Run the benchmark of `cfg.data` on `cfg.split` with `cfg.model`; return the summary."""
    output_dir = Path(cfg.paths.output_dir)
    write_config(output_dir / "config.yaml", cfg)
    torch.manual_seed(cfg.seed)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model)
    loaded = load_weights(module, cfg)
    device = resolve_device(cfg.device)
    module.eval().to(device)

    loader = {"val": datamodule.val_dataloader, "test": datamodule.test_dataloader}[cfg.split]()
    benchmark = datamodule.make_benchmark(cfg.split)
    figure_dir = output_dir / "figures"
    figures: dict[str, list[Path]] = {"matches": []}
    records = []
    start = time.perf_counter()
    with progress_bar() as progress, torch.inference_mode():
        task = progress.add_task(f"{datamodule.name}/{cfg.split}", total=len(loader), rate=0.0)
        for batch in loader:
            batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            matches = benchmark.predict(module, batch)
            records += benchmark.update(batch, matches)
            if len(records) <= cfg.num_figures:
                pair = matches.pair(0)
                figures["matches"].append(
                    draw_matches(
                        batch["image0"][0],
                        batch["image1"][0],
                        pair.kpts0,
                        pair.kpts1,
                        figure_dir / f"{len(records) - 1:03d}_{batch['name'][0].replace('/', '_')}.png",
                        correct=match_correctness(batch, 0, pair, benchmark.figure_threshold_px),
                        title=batch["name"][0],
                    )
                )
            elapsed = time.perf_counter() - start
            progress.update(task, advance=1, rate=len(records) / max(elapsed, 1e-9))

    summary = benchmark.summary()
    summary.update(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        data=OmegaConf.to_container(cfg.data, resolve=True),
        weights=loaded,
        split=cfg.split,
        seconds=round(time.perf_counter() - start, 3),
    )
    write_json(output_dir / "summary.json", summary)
    write_jsonl(output_dir / "per_pair.jsonl", records)
    curves = {group: mma_curve(summary["metrics"], prefix) for group, prefix in (("all", ""), ("i", "i/"), ("v", "v/"))}
    curves = {f"{type(module).__name__} ({group})": c for group, c in curves.items() if c}
    if curves:
        figures["mma"] = [plot_mma_curves(curves, output_dir / "mma.png", title=f"MMA on {datamodule.name}")]
    loggers = instantiate_collection(cfg.get("logger"))
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    log_evaluation(loggers, cfg.split, summary["metrics"], records, figures)
    close_loggers(loggers, finalize=True)
    log.info("metrics: %s", {k: round(v, 4) for k, v in summary["metrics"].items()})
    log.info("wrote %s", output_dir / "summary.json")
    return summary
