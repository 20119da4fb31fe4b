"""Reading annotation files (JSON, CSV) with errors that name the file, the line and the missing key."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from corrlab.datamodules.errors import UnreadableFileError


def read_json(path: str | Path) -> Any:
    """Parsed JSON; a missing file or a syntax error names the file (and the line and column)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise UnreadableFileError(path, error.strerror or str(error)) from error
    except UnicodeDecodeError as error:
        raise UnreadableFileError(path, f"not a text file ({error.reason} at byte {error.start})") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UnreadableFileError(
            path, f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from error


def require(record: dict, keys: Sequence[str], path: str | Path) -> None:
    """Fail naming the file when a JSON record lacks any of `keys`."""
    if not isinstance(record, dict):
        raise UnreadableFileError(path, f"expected a JSON object, found {type(record).__name__}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise UnreadableFileError(path, f"missing key(s) {missing}")


def read_csv_rows(path: str | Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV whose header must contain `columns`;
    a short row or a missing column names the file and the line."""
    path = Path(path)
    try:
        handle = path.open(newline="")
    except OSError as error:
        raise UnreadableFileError(path, error.strerror or str(error)) from error
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise UnreadableFileError(path, f"line 1: the header {header} lacks column(s) {missing}")
            for row in reader:
                if None in row or any(row.get(c) is None for c in columns):
                    raise UnreadableFileError(path, f"line {reader.line_num}: expected {len(header)} columns")
                yield reader.line_num, row
        except UnicodeDecodeError as error:
            raise UnreadableFileError(path, f"not a text CSV file ({error.reason} at byte {error.start})") from error
        except csv.Error as error:
            raise UnreadableFileError(path, f"line {reader.line_num}: not a valid CSV row ({error})") from error


def parse_coordinates(text: str, path: str | Path, line: int, column: str) -> list[float]:
    """A ';'-separated list of numbers (the weakalign/NCNet CSV format)."""
    try:
        return [float(v) for v in text.split(";") if v.strip()]
    except ValueError as error:
        raise UnreadableFileError(path, f"line {line}, column {column}: not ';'-separated numbers ({error})") from error
