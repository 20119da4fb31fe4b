"""The registry: every module in `catalog/entries/` defines one `ENTRY = DatasetEntry(...)`.

Adding a dataset is adding one file there; nothing else needs to list it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from corrlab.datamodules.catalog import entries as entries_package
from corrlab.datamodules.catalog.verify import VerifyReport


@dataclass(frozen=True)
class DatasetEntry:
    """What corrlab knows about one dataset.

    name: the `data=` option.  default_dir: its folder under `paths.data_dir`.
    layout: the expected folder tree (text).  how_to_get: official download locations, sizes and
    the preparation commands.  verify(root): checks a folder against the layout.
    parts: the independent pieces `verify` reports on (e.g. MegaDepth "train" and "test1500").
    splits: the splits `verify(root, splits=[...])` can check alone (`corrlab-data verify --split`); () if none.
    """

    name: str
    title: str
    default_dir: str
    layout: str
    how_to_get: str
    verify: Callable[[Path], VerifyReport]
    parts: tuple[str, ...] = ("all",)
    splits: tuple[str, ...] = ()


@cache
def entries() -> dict[str, DatasetEntry]:
    """Every registered dataset, by name."""
    found: dict[str, DatasetEntry] = {}
    for module_info in sorted(pkgutil.iter_modules(entries_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{entries_package.__name__}.{module_info.name}")
        entry = getattr(module, "ENTRY", None)
        if not isinstance(entry, DatasetEntry):
            raise TypeError(f"{module.__name__} must define ENTRY = DatasetEntry(...)")
        if entry.name in found:
            raise ValueError(f"dataset '{entry.name}' is registered twice ({module.__name__})")
        found[entry.name] = entry
    return found


def names() -> list[str]:
    return sorted(entries())


def get(name: str) -> DatasetEntry:
    """The entry of dataset `name`; an unknown name lists the known ones."""
    try:
        return entries()[name]
    except KeyError:
        raise KeyError(f"unknown dataset '{name}'; known datasets: {', '.join(names())}") from None
