"""Dataset catalog: per dataset, the expected layout, where to get it, and a check of a user's folder."""

from src.datamodules.catalog.registry import DatasetEntry, entries, get, names
from src.datamodules.catalog.verify import Check, VerifyReport

__all__ = ["Check", "DatasetEntry", "VerifyReport", "entries", "get", "names"]
