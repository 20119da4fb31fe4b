"""Errors that tell the user what was expected and how to get it."""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset root is missing or does not have the expected layout."""

    def __init__(self, name: str, root: str | Path, layout: str, how_to_get: str, problem: str = "not found") -> None:
        message = (
            f"{name} dataset {problem} at '{root}'.\n"
            f"Expected layout:\n{layout.rstrip()}\n"
            f"How to get it:\n{how_to_get.rstrip()}\n"
            f"Then point corrlab at it: data.root=<path> (or set it once in conf/local/default.yaml)."
        )
        super().__init__(message)


class UnreadableFileError(OSError):
    """A file listed by a dataset index is missing or cannot be decoded."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot read '{path}': {reason}")
        self.path = str(path)
