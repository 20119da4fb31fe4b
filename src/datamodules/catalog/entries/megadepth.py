"""MegaDepth (D2-Net undistorted layout + scene_info) and the MegaDepth-1500 test index."""

from __future__ import annotations

from pathlib import Path

from corrlab.datamodules.catalog.registry import DatasetEntry
from corrlab.datamodules.catalog.verify import (
    MAX_LISTED,
    Check,
    VerifyReport,
    expect_files,
    expect_glob,
    failed_check,
)
from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.megadepth_index import (
    HOW_TO_GET,
    LAYOUT,
    SCENE_INFO_KEYS,
    load_index_file,
    megadepth1500_files,
    megadepth1500_pairs,
    resolve_image,
)

TEST1500_INDEX = "megadepth_test_1500_scene_info"
TEST1500_PAIRS = 1500


def _scene_folders(root: Path, scenes: list[str], part: str, what: str, candidates) -> Check:
    """Every scene has one of its candidate folders (relative paths from `candidates(scene)`)."""
    missing = [scene for scene in scenes if not any((root / c).is_dir() for c in candidates(scene))]
    detail = f"{len(scenes) - len(missing)} of {len(scenes)} scenes"
    return Check(
        part, what, bool(scenes) and not missing, detail, [candidates(s)[0] for s in missing[:10]], len(missing)
    )


def scene_infos_parse(paths: list[Path]) -> Check:
    """Every scene_info/<scene>.npz is a file that loading reads (the entries training uses)."""
    bad = []
    for path in paths:
        try:
            load_index_file(path, SCENE_INFO_KEYS)
        except UnreadableFileError as error:
            bad.append(str(error))
    detail = f"{len(paths) - len(bad)} of {len(paths)} parse"
    return Check("train", "scene_info files parse", bool(paths) and not bad, detail, bad[:MAX_LISTED], len(bad))


def verify(root: Path) -> VerifyReport:
    """train: scene_info/*.npz (each parsed) and an image folder per scene; depth: a depth folder per scene;
    test1500: the LoFTR index parses to 1500 pairs and every image it names exists."""
    root = Path(root)
    checks = [expect_glob(root, "scene_info/*.npz", "train", what="scene_info/<scene>.npz (D2-Net scene info)")]
    scene_infos = sorted((root / "scene_info").glob("*.npz"))
    checks.append(scene_infos_parse(scene_infos))
    scenes = sorted(p.name.split(".")[0] for p in scene_infos)
    checks.append(
        _scene_folders(
            root,
            scenes,
            "train",
            "Undistorted_SfM/<scene>/images/ for every scene_info scene",
            lambda s: [f"Undistorted_SfM/{s}/images", f"{s}/images"],
        )
    )
    checks.append(
        _scene_folders(
            root,
            scenes,
            "depth",
            "depth maps for every scene_info scene",
            lambda s: [f"phoenix/S6/zl548/MegaDepth_v1/{s}/dense0/depths", f"depth_undistorted/{s}"],
        )
    )
    index_dir = root / TEST1500_INDEX
    files = megadepth1500_files(index_dir) if index_dir.is_dir() else []
    checks.append(
        expect_files(
            root,
            [str(f.relative_to(root)) for f in files] or [f"{TEST1500_INDEX}/megadepth_test_1500.txt"],
            "test1500",
            f"{TEST1500_INDEX}/ index files",
        )
    )
    if checks[-1].ok:
        try:
            index = megadepth1500_pairs(index_dir)
            checks.append(
                Check(
                    "test1500",
                    "MegaDepth-1500 pairs",
                    len(index) == TEST1500_PAIRS,
                    f"{len(index)}, expected {TEST1500_PAIRS}",
                )
            )
            images = sorted(set(str(p) for p in index.images))
            missing = [p for p in images if resolve_image(root, p) is None]
            checks.append(
                Check(
                    "test1500",
                    "test images (Undistorted_SfM/0015, 0022)",
                    not missing,
                    f"{len(images) - len(missing)} of {len(images)} present",
                    missing[:10],
                    len(missing),
                )
            )
        except UnreadableFileError as error:
            checks.append(failed_check("test1500", "MegaDepth-1500 index parses", str(error)))
    return VerifyReport("megadepth", root, checks)


ENTRY = DatasetEntry(
    name="megadepth",
    title="MegaDepth (D2-Net undistorted) training pairs + MegaDepth-1500 relative-pose benchmark",
    default_dir="megadepth",
    layout=LAYOUT,
    how_to_get=HOW_TO_GET,
    verify=verify,
    parts=("train", "depth", "test1500"),
)
