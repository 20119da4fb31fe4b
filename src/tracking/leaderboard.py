"""Leaderboard of evaluation runs: one table per protocol fingerprint (runs scored differently never share a
column), the columns each protocol reports, and pair-by-pair differences of two runs from per_pair.jsonl."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the columns of each protocol's table, in order (metrics a run lacks are left blank)
COLUMNS = {
    "homography": ["mma@1", "mma@3", "mma@5", "mma@10", "hacc@1", "hacc@3", "hacc@5", "hauc@3", "num_matches"],
    "relative_pose": ["pose_auc@5", "pose_auc@10", "pose_auc@20", "num_matches", "num_inliers"],
    "semantic_pck": ["pck@0.05", "pck@0.1", "pck@0.15", "pck_kpt@0.1", "geo/pck@0.1"],
    "eth3d_multiview": ["aepe", "pck@1", "pck@3", "pck@5"],
    "dense_flow": ["aepe", "pck@1", "pck@3", "pck@5"],
}
# the per-pair value two runs are compared by, and whether higher is better
PAIR_KEYS = {
    "homography": ("mma@3", True),
    "relative_pose": ("pose_error", False),
    "semantic_pck": ("pck@0.1", True),
    "eth3d_multiview": ("aepe", False),
    "dense_flow": ("aepe", False),
}


@dataclass
class Run:
    """One evaluation run directory (summary.json, per_pair.jsonl)."""

    path: Path
    summary: dict[str, Any]
    label: str

    @property
    def protocol(self) -> str:
        return self.summary["protocol"]["spec"].get("protocol", "unknown")

    @property
    def fingerprint(self) -> str:
        return self.summary["protocol"]["fingerprint"]

    def records(self) -> list[dict[str, Any]]:
        path = self.path / "per_pair.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{self.path}: no per_pair.jsonl (is it an eval.py run directory?)")
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def method_label(summary: dict[str, Any]) -> str:
    """'<Class>' of the model, with the weight file names when weights were loaded."""
    label = str(summary.get("model", {}).get("_target_", "model")).rsplit(".", 1)[-1]
    weights = summary.get("weights")
    if isinstance(weights, list) and weights:
        label += " (" + ", ".join(Path(w["file"]).name for w in weights) + ")"
    return label


def load_runs(paths: list[Path]) -> list[Run]:
    """The runs of these directories (labels made unique with the directory name where two coincide)."""
    runs = []
    for path in paths:
        summary_file = Path(path) / "summary.json"
        if not summary_file.is_file():
            raise FileNotFoundError(f"{path}: no summary.json (give eval.py run directories)")
        summary = json.loads(summary_file.read_text())
        runs.append(Run(Path(path), summary, method_label(summary)))
    labels = [r.label for r in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label} [{run.path.name}]"
    return runs


def by_protocol(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by protocol fingerprint, in the order first seen."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.fingerprint, []).append(run)
    return groups


def spec_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Top-level protocol spec keys whose values differ between two runs (e.g. 'homography', 'resize')."""
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def columns(runs: list[Run]) -> list[str]:
    protocol = runs[0].protocol
    present = set().union(*(r.summary["metrics"] for r in runs))
    wanted = COLUMNS.get(protocol) or sorted(k for k in present if "/" not in k)
    return [c for c in wanted if c in present] + ["num_pairs"]


def format_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.4f}"


def table_rows(runs: list[Run]) -> tuple[list[str], list[list[Any]]]:
    names = columns(runs)
    rows = [[run.label, *(run.summary["metrics"].get(c) for c in names)] for run in runs]
    return ["method", *names], rows


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(format_value(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def protocol_title(run: Run) -> str:
    spec = run.summary["protocol"]["spec"]
    parts = [spec.get("dataset", "?"), spec.get("split"), run.protocol]
    return " / ".join(str(p) for p in parts if p) + f" (protocol {run.fingerprint})"


def pair_differences(a: Run, b: Run) -> tuple[str, list[dict[str, Any]]]:
    """Per pair of both runs: the protocol's per-pair value in a and b and b - a, largest |difference| first
    (pairs only one run scored are listed last, with the other value empty)."""
    if a.fingerprint != b.fingerprint:
        raise ValueError(
            f"{a.path} and {b.path} were scored with different protocols ({a.fingerprint} vs {b.fingerprint}; "
            f"spec differs in {', '.join(spec_differences(a.summary['protocol']['spec'], b.summary['protocol']['spec']))}): "
            "their pairs cannot be compared"
        )
    key, _ = PAIR_KEYS.get(a.protocol, ("num_matches", True))
    values_a = {r["name"]: r.get(key) for r in a.records()}
    values_b = {r["name"]: r.get(key) for r in b.records()}
    rows = []
    for name in list(values_a) + [n for n in values_b if n not in values_a]:
        va, vb = values_a.get(name), values_b.get(name)
        both = isinstance(va, (int, float)) and isinstance(vb, (int, float))
        rows.append({"name": name, "a": va, "b": vb, "difference": vb - va if both else None})
    rows.sort(key=lambda r: (r["difference"] is None, -abs(r["difference"] or 0.0)))
    return key, rows
