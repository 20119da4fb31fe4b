"""Dataset catalog: per dataset, the expected layout, where to get it, and a check of a user's folder."""

from corrlab.datamodules.catalog.registry import DatasetEntry, entries, get, names
from corrlab.datamodules.catalog.verify import Check, VerifyReport

__all__ = ["Check", "DatasetEntry", "VerifyReport", "entries", "get", "names"]
