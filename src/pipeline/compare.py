"""`corrlab-compare <run dirs...>`: one leaderboard (Markdown + CSV table and a figure per protocol) of eval.py
runs, and with two runs their pair-by-pair differences.  Also written at the end of `eval.py -m` sweeps."""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from corrlab.tracking.leaderboard import (
    Run,
    by_protocol,
    format_value,
    load_runs,
    markdown_table,
    pair_differences,
    protocol_title,
    spec_differences,
    table_rows,
)
from corrlab.tracking.leaderboard_figure import plot_leaderboard

log = logging.getLogger(__name__)
TOP_PAIRS = 20  # pairs listed in the Markdown of a two-run comparison


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])


def write_leaderboard(runs: list[Run], out: Path) -> Path:
    """leaderboard.md (one section per protocol), leaderboard_<fingerprint>.csv and .png; returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    groups = by_protocol(runs)
    sections = ["# Leaderboard", ""]
    if len(groups) > 1:
        first = runs[0].summary["protocol"]["spec"]
        sections.append(
            f"{len(groups)} different protocols: runs scored differently are never put in one column. "
            + "; ".join(
                f"{members[0].fingerprint} differs from {runs[0].fingerprint} in "
                f"{', '.join(spec_differences(first, members[0].summary['protocol']['spec'])) or 'the pair list'}"
                for members in list(groups.values())[1:]
            )
        )
        sections.append("")
    for fingerprint, members in groups.items():
        title = protocol_title(members[0])
        header, rows = table_rows(members)
        write_csv(out / f"leaderboard_{fingerprint}.csv", header, rows)
        figure = plot_leaderboard(members, out / f"leaderboard_{fingerprint}.png", title)
        sections += [f"## {title}", "", markdown_table(header, rows), "", f"![{title}]({figure.name})", ""]
        sections += [f"- {run.label}: `{run.path}`" for run in members] + [""]
    path = out / "leaderboard.md"
    path.write_text("\n".join(sections))
    return path


def write_pair_differences(a: Run, b: Run, out: Path) -> Path:
    """pairs_a_vs_b.csv (every pair) and .md (the largest differences)."""
    key, rows = pair_differences(a, b)
    header = ["name", f"{key} [a]", f"{key} [b]", "b - a"]
    table = [[r["name"], r["a"], r["b"], r["difference"]] for r in rows]
    write_csv(out / "pairs_a_vs_b.csv", header, table)
    path = out / "pairs_a_vs_b.md"
    path.write_text(
        f"# Pair by pair: {key}\n\na = {a.label} (`{a.path}`)\nb = {b.label} (`{b.path}`)\n\n"
        f"{sum(r['difference'] is not None and r['difference'] > 0 for r in rows)} pairs higher in b, "
        f"{sum(r['difference'] is not None and r['difference'] < 0 for r in rows)} lower, "
        f"{sum(r['difference'] == 0 for r in rows)} equal, "
        f"{sum(r['difference'] is None for r in rows)} not comparable (missing or non-finite).\n\n"
        + markdown_table(header, [[format_value(v) for v in row] for row in table[:TOP_PAIRS]])
        + "\n"
    )
    return path


def compare(paths: list[Path], out: Path, pairs: bool = True) -> Path:
    runs = load_runs(paths)
    if not runs:
        raise ValueError("give at least one eval.py run directory")
    markdown = write_leaderboard(runs, out)
    if pairs and len(runs) == 2 and runs[0].fingerprint == runs[1].fingerprint:
        write_pair_differences(runs[0], runs[1], out)
    return markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="corrlab-compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="eval.py run directories (each with summary.json)")
    parser.add_argument("--out", type=Path, default=Path("leaderboard"), help="output folder (default ./leaderboard)")
    parser.add_argument("--no-pairs", action="store_true", help="skip the pair-by-pair comparison of two runs")
    args = parser.parse_args(argv)
    try:
        markdown = compare(args.runs, args.out, pairs=not args.no_pairs)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"corrlab-compare: error: {error}\n")
    print(markdown.read_text())
    print(f"wrote {args.out}/")


class LeaderboardCallback(Callback):
    """Hydra callback of eval.py: after a multirun (`eval.py -m model=a,b`), the leaderboard of its jobs
    in <sweep dir>/leaderboard/."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        jobs = [p.parent for p in sweep.glob("*/summary.json")]
        jobs.sort(key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))
        if jobs:
            log.info("leaderboard of %d runs: %s", len(jobs), compare(jobs, sweep / "leaderboard", pairs=False))


if __name__ == "__main__":
    main()
