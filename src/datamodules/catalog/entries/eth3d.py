"""ETH3D multi-view (GLU-Net / DenseMatching layout and pair files)."""

from __future__ import annotations

from pathlib import Path

from corrlab.datamodules.catalog.registry import DatasetEntry
from corrlab.datamodules.catalog.verify import Check, VerifyReport, expect_dir, expect_files, failed_check
from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.eth3d_index import (
    HOW_TO_GET,
    INFO_DIR,
    LAYOUT,
    RATES,
    SCENES,
    load_pairs_file,
    pairs_file,
    scene_folder,
)


def verify(root: Path) -> VerifyReport:
    """The 10 scene folders, the 70 pair files, and every image the pair files name."""
    root = Path(root)
    checks = [expect_dir(root, scene_folder(scene), "all") for scene in SCENES]
    files = [pairs_file(root, scene, rate) for rate in RATES for scene in SCENES]
    checks.append(
        expect_files(
            root,
            [f"{INFO_DIR}/{f.name}" for f in files],
            "all",
            f"{INFO_DIR}/<scene>_every_5_rate_of_<rate> (10 scenes x 7 rates)",
        )
    )
    images: set[str] = set()
    for path in (f for f in files if f.is_file()):
        try:
            images.update(str(e[k]) for e in load_pairs_file(path) for k in ("source_image", "target_image"))
        except UnreadableFileError as error:
            checks.append(failed_check("all", f"{INFO_DIR}/{path.name} parses", str(error)))
    if images:
        checks.append(expect_files(root, sorted(images), "all", "images named by the pair files"))
    else:
        checks.append(Check("all", "images named by the pair files", False, "no readable pair file"))
    return VerifyReport("eth3d", root, checks)


ENTRY = DatasetEntry(
    name="eth3d",
    title="ETH3D multi-view rig pairs (GLU-Net / DenseMatching AEPE and PCK protocol)",
    default_dir="ETH3D",
    layout=LAYOUT,
    how_to_get=HOW_TO_GET,
    verify=verify,
)
