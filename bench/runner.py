"""Benchmark runner: median wall time and peak memory of cases, each in a fresh subprocess, printed
as a table with ratios against a baseline case.

A case is a shell command.  Peak memory is the child's max RSS (getrusage); on a GPU, a case may
print a line `peak_cuda_bytes=<n>` which is reported too.  Usage from a bench script:

    from bench.runner import Case, run_cases
    run_cases([Case("reference", "python ref.py"), Case("ours", "python ours.py")], baseline="reference", repeat=3)
"""

from __future__ import annotations

import json
import re
import resource
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table


@dataclass
class Case:
    name: str
    command: str
    cwd: str | None = None
    env: dict[str, str] | None = None


@dataclass
class Result:
    name: str
    command: str
    seconds: list[float] = field(default_factory=list)
    peak_rss_bytes: int = 0
    peak_cuda_bytes: int | None = None
    returncode: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def run_case(case: Case, repeat: int) -> Result:
    """Run a case `repeat` times, each in a new process (so peak RSS is its own)."""
    import os

    result = Result(case.name, case.command)
    env = {**os.environ, **(case.env or {})}
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "maxrss_kb=%M", "bash", "-c", case.command],
            cwd=case.cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        result.seconds.append(time.perf_counter() - start)
        result.returncode = proc.returncode
        match = re.search(r"maxrss_kb=(\d+)", proc.stderr)
        rss = (
            int(match.group(1)) * 1024
            if match
            else max(0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss - before) * 1024
        )
        result.peak_rss_bytes = max(result.peak_rss_bytes, rss)
        cuda = re.findall(r"peak_cuda_bytes=(\d+)", proc.stdout)
        if cuda:
            result.peak_cuda_bytes = max(result.peak_cuda_bytes or 0, int(cuda[-1]))
        if proc.returncode != 0:
            Console(stderr=True).print(f"[red]{case.name} failed ({proc.returncode}):[/red]\n{proc.stderr[-2000:]}")
            break
    return result


def run_cases(cases: list[Case], baseline: str, repeat: int = 3, json_path: str | Path | None = None) -> list[Result]:
    """Run every case and print median time, peak memory and their ratios to `baseline`."""
    results = [run_case(case, repeat) for case in cases]
    base = next(r for r in results if r.name == baseline)
    table = Table(title=f"median of {repeat} runs; ratios = baseline / case (higher is better)")
    for column in ("case", "median s", "peak RSS MB", "speed-up", "memory ratio", "status"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.name,
            f"{r.median:.2f}",
            f"{r.peak_rss_bytes / 2**20:.0f}",
            f"{base.median / r.median:.2f}x",
            f"{base.peak_rss_bytes / max(r.peak_rss_bytes, 1):.2f}x",
            "ok" if r.returncode == 0 else f"exit {r.returncode}",
        )
    Console().print(table)
    if json_path is not None:
        Path(json_path).write_text(json.dumps([asdict(r) | {"median": r.median} for r in results], indent=2))
    return results
