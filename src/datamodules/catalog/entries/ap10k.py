"""AP-10K animal keypoint pairs, GeoAware-SC settings (PCK@alpha, bbox threshold)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from corrlab.datamodules import ap10k_pairs as texts
from corrlab.datamodules.catalog.registry import DatasetEntry
from corrlab.datamodules.catalog.verify import VerifyReport, report_from_problems


def verify(root: Path, splits: Sequence[str] = ("train", "val", "test")) -> VerifyReport:
    """The checks of corrlab.datamodules.ap10k.verify, as a report."""
    from corrlab.datamodules import ap10k  # the loaders import torch: only when verifying

    return report_from_problems(
        "ap10k",
        root,
        ap10k.verify(root, splits=splits),
        f"layout, index files, annotations and images of {', '.join(splits)}",
    )


ENTRY = DatasetEntry(
    name="ap10k",
    title="AP-10K animal keypoint pairs, GeoAware-SC settings (PCK@alpha, bbox threshold)",
    default_dir="ap-10k",
    layout=texts.LAYOUT,
    how_to_get=texts.HOW_TO_GET.rstrip() + "\nCheck a folder with: corrlab-data verify ap10k <root>",
    verify=verify,
    splits=("train", "val", "test"),
)
