"""Evaluation task: one model on one benchmark split -> summary.json, per_pair.jsonl and figures."""

from __future__ import annotations

import json
import logging
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from corrlab.matches import Matches
from corrlab.modules.base import MatchingModule
from corrlab.pipeline.instantiate import instantiate, instantiate_collection, instantiate_method
from corrlab.pipeline.multi_device import check_devices, export_on_devices
from corrlab.pipeline.prediction_cache import PredictionCache, pair_key, prediction_source
from corrlab.pipeline.provenance import weight_sources
from corrlab.pipeline.run_files import write_config, write_json, write_jsonl
from corrlab.safe_loading import checkpoint_load_error, is_torch_load_failure, torch_load
from corrlab.tracking.correctness import match_correctness
from corrlab.tracking.eval_logging import log_evaluation
from corrlab.tracking.figures import draw_matches, mma_curve, plot_mma_curves
from corrlab.tracking.progress_lines import ProgressLines
from corrlab.tracking.run_end import close_loggers

log = logging.getLogger(__name__)
PRECISIONS = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


class MissingWeightsError(RuntimeError):
    """A learned model was about to be evaluated with random weights."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def read_corrlab_checkpoint(path: Path) -> dict:
    """A Lightning checkpoint loaded with weights_only=True; an official file (no 'state_dict') is told to use weights=."""
    content = torch_load(path, "ckpt_path")
    if not isinstance(content, dict) or "state_dict" not in content:
        keys = ", ".join(list(content)[:5]) if isinstance(content, dict) else type(content).__name__
        raise ValueError(
            f"ckpt_path: '{path}' is not a corrlab (Lightning) checkpoint: it has no 'state_dict' (found {keys}). "
            "If this is an official checkpoint, use weights=<path> (loaded by the model's load_official)."
        )
    return content


def load_weights(module: MatchingModule, cfg: DictConfig) -> list[dict[str, str]] | str:
    """Load ckpt_path (corrlab) or weights (official: one path, or {role: path}); refuse random weights
    unless allowed.  Returns the provenance of every loaded file (the module's records), or what ran instead."""
    if cfg.ckpt_path and cfg.weights:
        raise ValueError("give either ckpt_path (a corrlab checkpoint) or weights (an official one), not both")
    if cfg.ckpt_path:
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise FileNotFoundError(f"ckpt_path: no such checkpoint '{path}'")
        module.load_state_dict(read_corrlab_checkpoint(path)["state_dict"], strict=True)
        module.note_weights(path, "corrlab Lightning checkpoint (every parameter)", "ckpt_path")
    if cfg.weights:
        sources = official_sources(module, cfg.weights)
        for role, path in sources.items():
            if not path.is_file():
                where = "weights" if role is None else f"weights.{role}"
                raise FileNotFoundError(
                    f"{where}: no such file '{path}' (set {where}=<path to the official checkpoint>)"
                )
        noted = len(module.loaded_weights)
        try:
            module.load_official(sources[None] if None in sources else sources)
        except Exception as error:
            if is_torch_load_failure(error):
                failed = sources[None] if None in sources else next(iter(sources.values()))
                raise checkpoint_load_error(failed, "weights", error) from None
            raise
        if len(module.loaded_weights) == noted:  # the module did not say what it loaded
            for role, path in sources.items():
                module.note_weights(path, f"official ({type(module).__name__}.load_official)", role)
    if module.loaded_weights:
        return module.loaded_weights
    if module.requires_weights and not cfg.allow_random_weights:
        raise MissingWeightsError(
            f"{type(module).__name__} has learned weights but none were given: set ckpt_path=<corrlab .ckpt> or "
            "weights=<official checkpoint> (or allow_random_weights=true to evaluate an untrained model on purpose)"
        )
    return "none (training-free model)" if not module.requires_weights else "random initialisation (allowed)"


def official_sources(module: MatchingModule, weights: object) -> dict[str | None, Path]:
    """`weights=` as {None: path} (one file: the module's load_official says whether that is enough) or
    {role: path} for a module with `weight_roles`."""
    roles = module.weight_roles
    if isinstance(weights, (str, Path)):
        return {None: Path(weights)}
    sources = {role: Path(path) for role, path in weight_sources(weights).items()}
    if not roles:
        raise ValueError(f"{type(module).__name__} loads one official file: give weights=<path>, not a mapping")
    unknown = sorted(set(sources) - set(roles))
    if unknown:
        raise ValueError(f"weights: unknown role(s) {unknown} for {type(module).__name__}; valid: {', '.join(roles)}")
    return sources


def draw_first_pair(batch: dict, matches: Matches, benchmark: Any, folder: Path, index: int) -> Path:
    """The match figure of the first pair of a batch (correct matches coloured where the GT allows)."""
    pair = matches.pair(0)
    return draw_matches(
        batch["image0"][0],
        batch["image1"][0],
        pair.kpts0,
        pair.kpts1,
        folder / f"{index:03d}_{batch['name'][0].replace('/', '_')}.png",
        correct=match_correctness(batch, 0, pair, benchmark.figure_threshold_px),
        title=batch["name"][0],
        threshold_px=benchmark.figure_threshold_px,
    )


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.2f} pairs/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def build_module(cfg: DictConfig, device: torch.device) -> tuple[MatchingModule, list[dict[str, str]] | str]:
    """The method with its weights loaded, in eval mode on `device`."""
    module = instantiate_method(cfg.model)
    loaded = load_weights(module, cfg)
    return module.eval().to(device), loaded


def check_precision(method: type[MatchingModule], precision: str) -> None:
    """Refuse an unknown precision, or mixed precision for a method that does not declare `mixed_precision`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if PRECISIONS[precision] is not None and not method.mixed_precision:
        raise ValueError(
            f"{method.__name__} does not allow mixed precision (precision={precision}): evaluate it with "
            "precision=32 (docs/evaluation.md, 'GPUs and mixed precision', says which methods allow it)"
        )


def autocast(module: MatchingModule, precision: str, device: torch.device):
    """The autocast context of `precision` (32: none); refused for methods that do not allow mixed precision."""
    check_precision(type(module), precision)
    dtype = PRECISIONS[precision]
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def open_cache(cfg: DictConfig) -> PredictionCache | None:
    """`predictions=` (refused when stale), else the run's own <run dir>/predictions.h5 (made afresh), else none."""
    source = prediction_source(cfg)
    if cfg.predictions:
        return PredictionCache(cfg.predictions, source)
    if not cfg.save_predictions:
        return None
    path = Path(cfg.paths.output_dir) / "predictions.h5"
    path.unlink(missing_ok=True)
    return PredictionCache(path, source)


def predict_and_score(cfg: DictConfig, datamodule: Any, benchmark: Any, cache: PredictionCache | None) -> dict:
    """Score every pair of the split, predictions read from `cache` where it has them, else from the method
    (built only then, and written to the cache).  Returns records, figures, provenance and counts."""
    kind, device = benchmark.prediction_kind, resolve_device(cfg.device)
    module, loaded = None, None
    if cache is None or not cache.has(kind, datamodule.pair_names(cfg.split)):
        module, loaded = build_module(cfg, device)
        if cache is not None:
            cache.file.attrs["provenance"] = json.dumps(loaded)
    else:
        loaded = json.loads(cache.file.attrs.get("provenance", '"unknown (not recorded in the cache)"'))
    loader = {"val": datamodule.val_dataloader, "test": datamodule.test_dataloader}[cfg.split]()
    out = {"records": [], "figures": {"matches": []}, "weights": loaded, "predicted": 0, "from_cache": 0}
    records, start = out["records"], time.perf_counter()
    lines = ProgressLines(f"{datamodule.name}/{cfg.split}", len(loader.dataset), "pairs")
    with progress_bar() as progress, torch.inference_mode():
        task = progress.add_task(f"{datamodule.name}/{cfg.split}", total=len(loader), rate=0.0)
        for batch in loader:
            batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            if cache is not None and cache.has(kind, batch["name"]):
                matches = cache.read(kind, batch)
                out["from_cache"] += len(batch["name"])
            else:
                with autocast(module, str(cfg.precision), device):
                    matches = benchmark.predict(module, batch)
                out["predicted"] += len(batch["name"])
                if cache is not None:
                    cache.write(kind, batch, matches, keep_warp=benchmark.scores_warp)
            new = benchmark.update(batch, matches)
            for record in new if cache is not None else ():
                record["prediction"] = pair_key(kind, record["name"])
            records += new
            if len(records) <= cfg.num_figures:
                out["figures"]["matches"].append(
                    draw_first_pair(batch, matches, benchmark, Path(cfg.paths.output_dir) / "figures", len(records) - 1)
                )
            progress.update(task, advance=1, rate=len(records) / max(time.perf_counter() - start, 1e-9))
            lines.update(len(records))
    return out


def evaluate(cfg: DictConfig) -> dict:
    """Run the benchmark of `cfg.data` on `cfg.split` with `cfg.model`; return the summary.  Predictions
    come from the cache `cfg.predictions` where it has them (the model is then not even built)."""
    check_precision(get_class(cfg.model._target_), str(cfg.precision))  # before data, model or processes start
    output_dir = Path(cfg.paths.output_dir)
    write_config(output_dir / "config.yaml", cfg)
    torch.manual_seed(cfg.seed)
    datamodule = instantiate(cfg.data)
    benchmark = datamodule.make_benchmark(cfg.split)
    start = time.perf_counter()
    world, exported = check_devices(cfg), 0
    with ExitStack() as stack:
        cache = open_cache(cfg)
        if cache is not None:
            stack.enter_context(cache)
        names, kind = datamodule.pair_names(cfg.split), benchmark.prediction_kind
        if world > 1 and not cache.has(kind, names):  # exported on several processes, then scored from the cache
            exported = export_on_devices(cfg, cache, kind, names)
        run = predict_and_score(cfg, datamodule, benchmark, cache)
    records, figures = run["records"], run["figures"]
    predictions = None
    if cache is not None:
        predictions = {"file": str(cache.path), "fingerprint": cache.fingerprint, "kind": benchmark.prediction_kind}
        predictions.update(
            predicted=run["predicted"] + exported, from_cache=run["from_cache"] - exported, devices=world
        )

    summary = benchmark.summary()
    summary.update(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        data=OmegaConf.to_container(cfg.data, resolve=True),
        weights=run["weights"],
        predictions=predictions,
        precision=str(cfg.precision),
        split=cfg.split,
        seconds=round(time.perf_counter() - start, 3),
    )
    write_json(output_dir / "summary.json", summary)
    write_jsonl(output_dir / "per_pair.jsonl", records)
    curves = {group: mma_curve(summary["metrics"], prefix) for group, prefix in (("all", ""), ("i", "i/"), ("v", "v/"))}
    method = cfg.model._target_.rsplit(".", 1)[-1]
    curves = {f"{method} ({group})": c for group, c in curves.items() if c}
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
