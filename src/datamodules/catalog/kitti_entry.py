"""The catalog entries of KITTI-2012 and KITTI-2015 optical flow (official training layout): entries/kitti2012.py
and entries/kitti2015.py each build one."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from corrlab.datamodules.catalog.registry import DatasetEntry
from corrlab.datamodules.catalog.verify import VerifyReport, expect_dir, expect_files
from corrlab.datamodules.kitti_layout import IMAGE_DIRS, NUM_TRAINING_PAIRS, how_to_get, layout, pair_files, pair_ids


def verify(root: Path, year: int) -> VerifyReport:
    """The image and flow folders, the official number of flow maps, and both frames and the noc map of each."""
    root = Path(root)
    checks = [expect_dir(root, f"training/{d}", "all") for d in (IMAGE_DIRS[year], "flow_occ", "flow_noc")]
    ids = pair_ids(root, "occ") if (root / "training/flow_occ").is_dir() else []
    expected = [f"{i:06d}" for i in range(NUM_TRAINING_PAIRS[year])]
    checks.append(
        expect_files(root, [f"training/flow_occ/{i}_10.png" for i in expected], "all", "training/flow_occ/<id>_10.png")
    )
    files = [f for i in sorted(set(ids) | set(expected)) for f in pair_files(year, i, "only_occ").values()]
    frames = [f for f in files if "/flow_" not in f]
    checks.append(expect_files(root, frames, "all", f"training/{IMAGE_DIRS[year]}/<id>_10.png and <id>_11.png"))
    noc = [f for f in files if "/flow_noc/" in f]
    checks.append(expect_files(root, noc, "all", "training/flow_noc/<id>_10.png"))
    return VerifyReport(f"kitti{year}", root, checks)


def entry(year: int) -> DatasetEntry:
    return DatasetEntry(
        name=f"kitti{year}",
        title=f"KITTI-{year} optical flow training pairs (AEPE and Fl, DenseMatching / KITTI devkit protocol)",
        default_dir=f"KITTI-{year}",
        layout=layout(year),
        how_to_get=how_to_get(year),
        verify=partial(verify, year=year),
    )
