"""Benchmark base: a protocol spec with its fingerprint, per-pair records and torchmetrics aggregation."""

from __future__ import annotations

import hashlib
import json
import warnings
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from torch import nn

from corrlab.matches import Matches
from corrlab.metrics import Count


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
    `prediction_kind` names what `predict` asks a method for (the prediction cache keys by it) and
    `scores_warp` says whether scoring reads the dense warp (then the cache keeps it).
    """

    prediction_kind = "match"
    scores_warp = False

    def __init__(self, spec: dict[str, Any], pair_names: Sequence[str], groups: Sequence[str] = ("all",)) -> None:
        super().__init__()
        self._spec = dict(spec, pairs={"count": len(pair_names), "fingerprint": pair_list_fingerprint(pair_names)})
        self.groups = nn.ModuleDict(
            {g: nn.ModuleDict({**self.make_metrics(), "num_pairs": Count("num_pairs")}) for g in groups}
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
                metrics["num_pairs"].update()
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
                empty = metrics["num_pairs"].compute()["num_pairs"] == 0
            if empty and group != "all":
                continue
            prefix = "" if group == "all" else f"{group}/"
            for metric in metrics.values():
                out.update({f"{prefix}{k}": v for k, v in metric.compute().items()})
        return out

    def reset(self) -> None:
        for metrics in self.groups.values():
            for metric in metrics.values():
                metric.reset()
        self.records = []

    def spec(self) -> dict[str, Any]:
        return self._spec

    def summary(self) -> dict[str, Any]:
        """metrics + protocol (spec and fingerprint) + number of pairs scored."""
        return {
            "metrics": self.compute(),
            "protocol": {"spec": self.spec(), "fingerprint": fingerprint(self.spec())},
            "num_pairs": len(self.records),
        }
