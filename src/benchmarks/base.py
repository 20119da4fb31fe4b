"""Benchmark base: a protocol spec with its fingerprint, per-pair records, torchmetrics aggregation, and the
main metric with its direction (conf/benchmark/*.yaml choose and parametrise a benchmark)."""

from __future__ import annotations

import hashlib
import json
import warnings
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn
from torchmetrics.aggregation import SumMetric

from corrlab.matches import Matches

MODES = ("max", "min")


@dataclass
class BenchmarkData:
    """What a datamodule tells a benchmark about one split; the protocol's own parameters come from
    conf/benchmark.  ground_truth: the batch keys its pairs carry (H_0to1, flow, K0, kpts0, ...); facts:
    dataset inputs a protocol needs (ETH3D scenes and rates, semantic categories, ...)."""

    dataset: str
    split: str
    pair_names: Sequence[str]
    ground_truth: Sequence[str]
    resize: dict[str, Any]
    groups: Sequence[str] = ("all",)
    group_of: Callable[[str], str | None] | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    extra_spec: dict[str, Any] = field(default_factory=dict)


def fingerprint(obj: Any) -> str:
    """sha256 of the canonical JSON of `obj` (first 16 hex digits)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pair_list_fingerprint(pair_names: Sequence[str]) -> str:
    """Fingerprint of the evaluated pair list, order-independent."""
    return fingerprint(sorted(pair_names))


class Benchmark(nn.Module):
    """A protocol: `update(batch, matches)` scores each pair, `compute()` aggregates, `summary()` reports.

    Metrics live in `self.groups` (group name -> ModuleDict of torchmetrics), so they are synced
    across DDP ranks.  Group "all" holds every pair; other groups (e.g. HPatches "i"/"v") prefix
    their keys with "<group>/".  Every group reports `num_pairs`; groups without pairs are left out.
    A metric's compute() gives a dict of keys, or one value reported under its ModuleDict key.
    `main_metric` is what validation logs as val/score; `mode` (max | min) says which way is better.
    Subclasses list the batch ground truth they read in `required_ground_truth` and the dataset facts they need
    in `required_facts` (both checked against the data before the benchmark is built).
    `prediction_kind` names what `predict` asks a method for (the prediction cache keys by it) and
    `scores_warp` says whether scoring reads the dense warp (then the cache keeps it).
    """

    prediction_kind = "match"
    scores_warp = False

    required_ground_truth: tuple[str, ...] = ()
    required_facts: tuple[str, ...] = ()
    figure_threshold_px = 3.0  # a drawn match is "correct" within this error (benchmarks that score matches set it)

    def __init__(
        self,
        spec: dict[str, Any],
        pair_names: Sequence[str],
        groups: Sequence[str] = ("all",),
        main_metric: str = "mma@3",
        mode: str = "max",
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"benchmark mode must be one of {MODES} (the direction of main_metric), got '{mode}'")
        self.main_metric, self.mode = main_metric, mode
        self._spec = dict(
            spec,
            main_metric={"name": main_metric, "mode": mode},
            pairs={"count": len(pair_names), "fingerprint": pair_list_fingerprint(pair_names)},
        )
        self.groups = nn.ModuleDict(
            {g: nn.ModuleDict({**self.make_metrics(), "num_pairs": SumMetric()}) for g in groups}
        )
        self.records: list[dict[str, Any]] = []

    @abstractmethod
    def make_metrics(self) -> nn.ModuleDict:
        """The torchmetrics of one group."""

    @abstractmethod
    def score_pair(self, batch: dict, b: int, matches: Matches) -> dict[str, Any]:
        """Per-pair record of pair b of the batch (its matches already selected), updating the metrics."""

    def predict(self, module: Any, batch: dict) -> Matches:
        """What the protocol scores for a batch, from a MatchingModule (default: its matches; the
        semantic protocol transfers query keypoints instead)."""
        return module.match(batch)

    def group_of(self, name: str) -> str | None:
        """Extra group of a pair besides "all" (None: only "all")."""
        return None

    def update(self, batch: dict, matches: Matches) -> list[dict[str, Any]]:
        """Score every pair of the batch (`matches` from `predict`); return and keep their per-pair records."""
        records = []
        for b in range(batch["image0"].shape[0]):
            records.append(self.score_pair(batch, b, matches.pair(b)))
            for metrics in self.metrics_for(batch["name"][b]):
                metrics["num_pairs"].update(1.0)
        self.records.extend(records)
        return records

    def metrics_for(self, name: str) -> list[nn.ModuleDict]:
        """The metric groups a pair contributes to."""
        out = [self.groups["all"]]
        group = self.group_of(name)
        if group is not None and group in self.groups:
            out.append(self.groups[group])
        return out

    def compute(self) -> dict[str, float]:
        """Flat dict of aggregated metrics (synced across ranks)."""
        out: dict[str, float] = {}
        for group, metrics in self.groups.items():
            with warnings.catch_warnings():  # an empty group is expected (e.g. no 'i' pairs); the count is synced
                warnings.filterwarnings("ignore", message=".*called before the ``update`` method")
                empty = float(metrics["num_pairs"].compute()) == 0
                if empty and group != "all":
                    continue
                prefix = "" if group == "all" else f"{group}/"
                for key, metric in metrics.items():
                    out.update({f"{prefix}{k}": v for k, v in metric_values(key, metric.compute()).items()})
        return out

    def reset(self) -> None:
        for metrics in self.groups.values():
            for metric in metrics.values():
                metric.reset()
        self.records = []

    def pair_count(self, group: str = "all") -> float:
        """Pairs scored in a group (synced across ranks)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*called before the ``update`` method")
            return float(self.groups[group]["num_pairs"].compute())

    def spec(self) -> dict[str, Any]:
        return self._spec

    def summary(self) -> dict[str, Any]:
        """metrics + protocol (spec and fingerprint) + number of pairs scored."""
        return {
            "metrics": self.compute(),
            "protocol": {"spec": self.spec(), "fingerprint": fingerprint(self.spec())},
            "num_pairs": len(self.records),
        }


def metric_values(key: str, value: dict[str, float] | Tensor | float) -> dict[str, float]:
    """A metric's compute() as a dict: its own keys, or its single value under `key`."""
    if isinstance(value, dict):
        return value
    return {key: float(value)}
