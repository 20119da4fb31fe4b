"""PF-Pascal semantic keypoint pairs (PCK@alpha, image-size threshold)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from corrlab.datamodules import pfpascal_layout as texts
from corrlab.datamodules.catalog.registry import DatasetEntry
from corrlab.datamodules.catalog.verify import VerifyReport, report_from_problems


def verify(root: Path, splits: Sequence[str] | None = None) -> VerifyReport:
    """The checks of corrlab.datamodules.pfpascal.verify, as a report (default: val, test, and train if present)."""
    from corrlab.datamodules import pfpascal  # the loaders import torch: only when verifying

    what = f"layout, index files, annotations and images of {', '.join(splits) if splits else 'every split'}"
    return report_from_problems("pfpascal", root, pfpascal.verify(root, splits), what)


ENTRY = DatasetEntry(
    name="pfpascal",
    title="PF-Pascal semantic keypoint pairs (PCK@alpha, image-size threshold)",
    default_dir="pf-pascal",
    layout=texts.LAYOUT,
    how_to_get=texts.HOW_TO_GET.rstrip() + "\nCheck a folder with: corrlab-data verify pfpascal <root>",
    verify=verify,
    splits=("train", "val", "test"),
)
