"""HPatches sequences (release or GCM layout)."""

from __future__ import annotations

from pathlib import Path

from corrlab.datamodules.catalog.registry import DatasetEntry
from corrlab.datamodules.catalog.verify import MAX_LISTED, Check, VerifyReport, expect_files
from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.hpatches_layout import (
    HOW_TO_GET,
    LARGE_SEQUENCES,
    LAYOUT,
    detect_layout,
    find_sequences,
    read_homography,
)

EXPECTED_SEQUENCES = 108  # 52 i_ + 56 v_ once the 8 large ones are left out


def verify(root: Path) -> VerifyReport:
    """Sequence count (108 without the large ones) and, per sequence, images 1..6 and H_1_2..H_1_6, each H file
    parsed as loading parses it (3 x 3 finite numbers)."""
    root = Path(root)
    if not root.is_dir():
        return VerifyReport("hpatches", root, [Check("all", "dataset folder", False, "no such folder", [str(root)], 1)])
    layout = detect_layout(root)
    sequences = [s for s in find_sequences(root) if s.name not in LARGE_SEQUENCES]
    counts = {prefix: sum(s.name.startswith(prefix) for s in sequences) for prefix in ("i_", "v_")}
    count_ok = len(sequences) == EXPECTED_SEQUENCES
    checks = [
        Check(
            "all",
            f"sequences ({layout} layout, large ones not counted)",
            count_ok,
            f"{counts['i_']} i_ + {counts['v_']} v_ = {len(sequences)}, expected 52 + 56 = {EXPECTED_SEQUENCES}",
        ),
        expect_files(
            root,
            [str(s.image_path(k).relative_to(root)) for s in sequences for k in range(1, 7)],
            "all",
            "images 1..6 of every sequence",
        ),
        expect_files(
            root,
            [str(s.homography_path(k).relative_to(root)) for s in sequences for k in range(2, 7)],
            "all",
            "homographies H_1_2..H_1_6 of every sequence",
        ),
        parsed_homographies(root, [s.homography_path(k) for s in sequences for k in range(2, 7)]),
    ]
    return VerifyReport("hpatches", root, checks)


def parsed_homographies(root: Path, paths: list[Path]) -> Check:
    """Every present H file reads as a finite 3 x 3 homography."""
    present = [p for p in paths if p.is_file()]
    bad = []
    for path in present:
        try:
            read_homography(path)
        except UnreadableFileError as error:
            bad.append(str(error))
    detail = f"{len(present) - len(bad)} of {len(present)} present files parse"
    return Check("all", "homography files parse (3 x 3 finite numbers)", not bad, detail, bad[:MAX_LISTED], len(bad))


ENTRY = DatasetEntry(
    name="hpatches",
    title="HPatches sequences (homography pairs; D2-Net 540-pair protocol)",
    default_dir="hpatches-sequences-release",
    layout=LAYOUT,
    how_to_get=HOW_TO_GET,
    verify=verify,
)
