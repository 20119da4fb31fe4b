"""Predictions exported once per (model, weights, inputs) and re-scored from an HDF5 cache (glue-factory's
export-then-evaluate): a new RANSAC threshold or benchmark variant re-scores without running the network.

Layout of `predictions.h5`:
    attrs   format = "corrlab-predictions/1", fingerprint (16 hex), source (JSON of what was fingerprinted)
    /<kind>/<pair>/kpts0, kpts1, scores, extras/<name> [, warp, certainty]   (<kind>: what the benchmark asked
            the method for, e.g. "match" or "transfer_query0"; <pair>: the pair name, URL-quoted)
    pair attrs: image0_id, image1_id, shape0, shape1 (H, W of the images the model saw) [, warp_frame]
Arrays keep the dtype the method produced (lossless: a re-score gives the same numbers as a fresh run); a dense
warp is stored only when the benchmark scores it, gzip-compressed.  A cache made with another model, weights,
inputs or precision is refused with the differences named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import h5py
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from corrlab.benchmarks.base import fingerprint
from corrlab.matches import Matches
from corrlab.pipeline.provenance import config_files, sha256_prefix, weight_sources

FORMAT = "corrlab-predictions/1"
# data keys that never change a prediction: loader options, and the benchmark (conf/benchmark) the data carries
NOT_INPUTS = ("batch_size", "eval_batch_size", "num_workers", "pin_memory", "benchmark")
MATCH_KEYS = ("kpts0", "kpts1", "scores")
DENSE_KEYS = ("warp", "certainty")


class StalePredictionCacheError(ValueError):
    """The cache was made by another model, weights or input configuration."""


def prediction_source(cfg: DictConfig) -> dict[str, Any]:
    """What a method's predictions depend on: model config (+ content of files it names), weights and checkpoint
    (path and sha256), the data config except loader options and its benchmark, split, seed and precision."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    data = OmegaConf.to_container(cfg.data, resolve=True)
    data = {k: v for k, v in data.items() if k not in NOT_INPUTS}
    weights = {role: {"file": path, "sha256": _hash(path)} for role, path in weight_sources(cfg.weights).items()}
    checkpoint = {"file": cfg.ckpt_path, "sha256": _hash(cfg.ckpt_path)} if cfg.ckpt_path else None
    return {
        "model": model,
        "model_files": config_files(model),
        "weights": weights,
        "checkpoint": checkpoint,
        "data": data,
        "data_files": config_files(data),
        "split": cfg.split,
        "seed": cfg.seed,
        "precision": str(cfg.get("precision", "32")),
    }


def _hash(path: str) -> str | None:
    return sha256_prefix(path) if Path(path).is_file() else None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 8) -> list[str]:
    """'key: old -> new' for the flattened keys whose values differ."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, "<absent>") != b.get(k, "<absent>"))
    lines = [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}" for k in keys[:limit]]
    return lines + ([f"... and {len(keys) - limit} more"] if len(keys) > limit else [])


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A CPU array of the tensor's dtype; bfloat16 (no numpy type) widened to float32, which is exact."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def pair_key(kind: str, name: str) -> str:
    return f"{kind}/{quote(name, safe='')}"


class PredictionCache:
    """An open predictions.h5 for one fingerprint (created when absent, refused when stale)."""

    def __init__(self, path: str | Path, source: dict[str, Any]) -> None:
        self.path = Path(path)
        self.source = json.loads(json.dumps(source, default=str))
        self.fingerprint = fingerprint(self.source)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.file = h5py.File(self.path, "a")
        except OSError as error:
            raise StalePredictionCacheError(
                f"prediction cache {self.path} is not a readable HDF5 file ({error}); delete it to export again"
            ) from error
        if "fingerprint" not in self.file.attrs:
            if len(self.file):
                self.file.close()
                raise StalePredictionCacheError(f"{self.path} holds data but is not a corrlab prediction cache")
            self.file.attrs.update(format=FORMAT, fingerprint=self.fingerprint, source=json.dumps(self.source))
        elif self.file.attrs["fingerprint"] != self.fingerprint:
            stored, old = json.loads(self.file.attrs["source"]), self.file.attrs["fingerprint"]
            self.file.close()
            changed = "\n  ".join(differences(stored, self.source))
            raise StalePredictionCacheError(
                f"prediction cache {self.path} was made with another model, weights or inputs "
                f"(fingerprint {old}, this run {self.fingerprint}); what differs:\n  {changed}\n"
                "Give another `predictions=` path (or delete this file) to export predictions for this configuration."
            )

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> PredictionCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, kind: str, names: list[str]) -> bool:
        return all(pair_key(kind, name) in self.file for name in names)

    def read(self, kind: str, batch: dict) -> Matches:
        """The cached predictions of every pair of `batch` as one Matches (checked against the batch's images)."""
        parts = []
        for b, name in enumerate(batch["name"]):
            group = self.file[pair_key(kind, name)]
            self._check(group, batch, b)
            arrays = {k: torch.from_numpy(group[k][()]) for k in MATCH_KEYS}
            dense = {k: torch.from_numpy(group[k][()])[None] for k in DENSE_KEYS if k in group}
            extras = {k: torch.from_numpy(v[()]) for k, v in group["extras"].items()} if "extras" in group else {}
            frame = tuple(group.attrs["warp_frame"]) if "warp_frame" in group.attrs else None
            batch_idx = torch.full((len(arrays["scores"]),), b, dtype=torch.long)
            parts.append(Matches(**arrays, batch_idx=batch_idx, **dense, extras=extras, warp_frame=frame))
        return Matches.concat(parts)

    def write(self, kind: str, batch: dict, matches: Matches, keep_warp: bool = False) -> None:
        """Store the predictions of every pair of `batch` (replacing a pair stored before)."""
        for b, name in enumerate(batch["name"]):
            key = pair_key(kind, name)
            if key in self.file:
                del self.file[key]
            group = self.file.create_group(key)
            pair = matches.pair(b)
            for field in MATCH_KEYS:
                group.create_dataset(field, data=to_numpy(getattr(pair, field)))
            for extra, values in pair.extras.items():
                group.create_dataset(f"extras/{extra}", data=to_numpy(values))
            if keep_warp and pair.warp is not None:
                for field in DENSE_KEYS:
                    if getattr(pair, field) is not None:
                        data = to_numpy(getattr(pair, field)[0])
                        group.create_dataset(field, data=data, compression="gzip", shuffle=True)
                if pair.warp_frame is not None:
                    group.attrs["warp_frame"] = np.asarray(pair.warp_frame)
            group.attrs.update(self._identity(batch, b))
        self.file.flush()

    @staticmethod
    def _identity(batch: dict, b: int) -> dict[str, Any]:
        out = {f"shape{s}": np.asarray(batch[f"image{s}"].shape[-2:]) for s in (0, 1)}
        out.update({f"image{s}_id": batch[f"image{s}_id"][b] for s in (0, 1) if f"image{s}_id" in batch})
        return out

    def _check(self, group: h5py.Group, batch: dict, b: int) -> None:
        expected = self._identity(batch, b)
        for key, value in expected.items():
            stored = group.attrs.get(key)
            if stored is None or not np.array_equal(np.asarray(stored), np.asarray(value)):
                raise StalePredictionCacheError(
                    f"prediction cache {self.path}: pair {batch['name'][b]} was predicted on {key}={stored!r}, "
                    f"this batch has {value!r} (the dataset or its resize changed); export again with a new `predictions=`"
                )
