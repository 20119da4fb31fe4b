"""SPair-71k semantic keypoint pairs (PCK@alpha, bbox threshold)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from corrlab.datamodules import spair_layout as texts
from corrlab.datamodules.catalog.registry import DatasetEntry
from corrlab.datamodules.catalog.verify import VerifyReport, report_from_problems


def verify(root: Path, splits: Sequence[str] = ("train", "val", "test")) -> VerifyReport:
    """The checks of corrlab.datamodules.spair.verify, as a report."""
    from corrlab.datamodules import spair  # the loaders import torch: only when verifying

    return report_from_problems(
        "spair", root, spair.verify(root, splits), f"layout, index files, annotations and images of {', '.join(splits)}"
    )


ENTRY = DatasetEntry(
    name="spair",
    title="SPair-71k semantic keypoint pairs (PCK@alpha, bbox threshold)",
    default_dir="SPair-71k",
    layout=texts.LAYOUT,
    how_to_get=texts.HOW_TO_GET.rstrip() + "\nCheck a folder with: corrlab-data verify spair <root>",
    verify=verify,
    splits=("train", "val", "test"),
)
