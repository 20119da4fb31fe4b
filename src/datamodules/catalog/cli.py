"""`corrlab-data` (= python -m corrlab.datamodules.catalog): list datasets, show how to get one, verify a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from corrlab.config.run_root import run_root
from corrlab.datamodules.catalog.registry import entries, get

DEFAULT_DATA_DIR = run_root() / "data"  # paths.data_dir's default


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="corrlab-data", description=__doc__)
    commands = main.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the datasets corrlab reads, with their default folders")
    info = commands.add_parser("info", help="expected layout, official download locations and sizes")
    info.add_argument("name")
    verify = commands.add_parser("verify", help="check a folder against the expected layout; exit 1 if incomplete")
    verify.add_argument("name")
    verify.add_argument("root", nargs="?", help=f"dataset folder (default: {DEFAULT_DATA_DIR}/<default dir>)")
    verify.add_argument("--part", help="check one part only (see `info`)")
    verify.add_argument("--split", help="check only the files one split needs (train, val or test; see `info`)")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "list":
            for entry in entries().values():
                print(
                    f"{entry.name:<12} {entry.title}\n{'':<12} default folder: {DEFAULT_DATA_DIR / entry.default_dir}"
                )
            return 0
        entry = get(args.name)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    if args.command == "info":
        print(
            f"{entry.name}: {entry.title}\nparts: {', '.join(entry.parts)}"
            + (f"\nsplits: {', '.join(entry.splits)}" if entry.splits else "")
            + f"\n\nExpected layout:\n{entry.layout}\n\nHow to get it:\n{entry.how_to_get}"
        )
        return 0
    if args.part is not None and args.part not in entry.parts:
        print(f"error: {entry.name} has parts {', '.join(entry.parts)}, not '{args.part}'", file=sys.stderr)
        return 2
    if args.split is not None and args.split not in entry.splits:
        splits = f"splits {', '.join(entry.splits)}" if entry.splits else "no splits to check apart (use --part)"
        print(f"error: {entry.name} has {splits}, not '{args.split}'", file=sys.stderr)
        return 2
    root = Path(args.root) if args.root else DEFAULT_DATA_DIR / entry.default_dir
    report = entry.verify(root, splits=[args.split]) if args.split else entry.verify(root)
    if args.part is not None:
        report.checks = [c for c in report.checks if c.part == args.part]
    print(report.format())
    if not report.ok():
        print(f"\nExpected layout:\n{entry.layout}\n\nHow to get it:\n{entry.how_to_get}")
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
