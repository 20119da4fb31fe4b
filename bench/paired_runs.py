"""Interleaved paired runs for the shared machine: every round runs each side once, in a fresh process, one after
the other, so a ratio compares runs made under (nearly) the same load; the summary is the median of the per-round
ratios, with the load average noted per round."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable

from bench.runner import Case, Result, run_case


def paired_rounds(cases: list[Case], rounds: int, after_run: Callable[[str, int], dict] | None = None) -> list[dict]:
    """[{side: {"wall_s", "peak_rss_mb", ...after_run(side, round)}, "load": 1-min load average}] per round."""
    records = []
    for index in range(rounds):
        record: dict = {"load": os.getloadavg()[0]}
        for case in cases:
            result: Result = run_case(case, repeat=1)
            if result.returncode != 0:
                raise SystemExit(f"{case.name} failed in round {index} (exit {result.returncode})")
            record[case.name] = {"wall_s": result.seconds[0], "peak_rss_mb": result.peak_rss_bytes / 2**20}
            if after_run is not None:
                record[case.name] |= after_run(case.name, index)
            print(f"round {index + 1} {case.name}: {record[case.name]}", flush=True)  # usable if a later run dies
        records.append(record)
        print(f"round {index + 1}/{rounds} done (load at its start {record['load']:.1f})", flush=True)
    return records


def median_ratio(records: list[dict], baseline: str, side: str, key: str) -> float:
    """Median over rounds of baseline[key] / side[key] (higher: side is faster / lighter)."""
    return statistics.median(r[baseline][key] / r[side][key] for r in records)


def ratio_table(records: list[dict], baseline: str, sides: list[str], keys: dict[str, str]) -> str:
    """Plain-text table: per side, the median of each key and the median ratio baseline / side, ratios per round."""
    lines = [f"{len(records)} interleaved rounds; load average per round: {[round(r['load'], 1) for r in records]}"]
    for side in [baseline, *sides]:
        parts = []
        for key, label in keys.items():
            value = statistics.median(r[side][key] for r in records)
            text = f"{label} {value:.2f}"
            if side != baseline:
                ratios = [r[baseline][key] / r[side][key] for r in records]
                text += f" (x{statistics.median(ratios):.2f}; rounds {', '.join(f'{x:.2f}' for x in ratios)})"
            parts.append(text)
        lines.append(f"  {side:12s} " + "; ".join(parts))
    return "\n".join(lines)
