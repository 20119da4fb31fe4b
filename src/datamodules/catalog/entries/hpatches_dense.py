"""Dense HPatches (DGC-Net / GLU-Net / DenseMatching): the 59 v_ sequences of hpatches-sequences-release and
DenseMatching's pair CSV."""

from __future__ import annotations

from pathlib import Path

from corrlab.datamodules.catalog.registry import DatasetEntry
from corrlab.datamodules.catalog.verify import MAX_LISTED, Check, VerifyReport, expect_files
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.hpatches_dense_layout import (
    CSV_NAME,
    EXPECTED_PAIRS,
    EXPECTED_SEQUENCES,
    HOW_TO_GET,
    LAYOUT,
    read_pair_csv,
)


def default_csv_dir(root: Path) -> Path:
    """conf/data/hpatches_dense.yaml's csv_dir beside the default root: <data_dir>/hpatches/glunet_csv."""
    return root.parent / "hpatches" / "glunet_csv"


def verify(root: Path, csv_dir: Path | None = None) -> VerifyReport:
    """The CSV (295 rows over 59 v_ sequences, parsed as loading parses it), every image it names, and image 1 of
    each sequence at the size the CSV states (Him x Wim: another release would give other homographies)."""
    root = Path(root)
    csv_path = Path(csv_dir or default_csv_dir(root)) / CSV_NAME
    if not root.is_dir():
        return VerifyReport(
            "hpatches_dense", root, [Check("all", "dataset folder", False, "no such folder", [str(root)], 1)]
        )
    try:
        rows = read_pair_csv(csv_path)
    except (DatasetNotFoundError, UnreadableFileError) as error:
        problem = "no such file" if not csv_path.is_file() else str(error).splitlines()[0]
        return VerifyReport(
            "hpatches_dense", root, [Check("all", f"pair CSV {CSV_NAME}", False, problem, [str(csv_path)], 1)]
        )
    sequences = sorted({row["obj"] for row in rows})
    images = sorted({f"{row['obj']}/{row[key]}.ppm" for row in rows for key in ("im1", "im2")})
    checks = [
        Check(
            "all",
            f"pair CSV {csv_path}",
            len(rows) == EXPECTED_PAIRS and len(sequences) == EXPECTED_SEQUENCES,
            f"{len(rows)} pairs over {len(sequences)} sequences, expected {EXPECTED_PAIRS} over {EXPECTED_SEQUENCES}",
        ),
        expect_files(root, images, "all", "images the CSV names"),
        reference_sizes(root, rows),
    ]
    return VerifyReport("hpatches_dense", root, checks)


def reference_sizes(root: Path, rows: list[dict]) -> Check:
    """Image 1 of every present sequence has the CSV's size (read from the file header only)."""
    from PIL import Image

    stated = {row["obj"]: (row["im1"], row["size1"]) for row in rows}
    wrong, checked = [], 0
    for sequence, (image, (height, width)) in sorted(stated.items()):
        path = root / sequence / f"{image}.ppm"
        if not path.is_file():
            continue
        checked += 1
        with Image.open(path) as handle:
            if handle.size != (width, height):
                wrong.append(f"{path}: {handle.size[1]} x {handle.size[0]}, the CSV says {height} x {width}")
    detail = f"{checked - len(wrong)} of {checked} present reference images match"
    return Check("all", "reference image sizes (Him x Wim)", not wrong, detail, wrong[:MAX_LISTED], len(wrong))


ENTRY = DatasetEntry(
    name="hpatches_dense",
    title="HPatches dense flow (DGC-Net / GLU-Net protocol: 59 v_ sequences, 295 pairs)",
    default_dir="hpatches-sequences-release",
    layout=LAYOUT,
    how_to_get=HOW_TO_GET,
    verify=verify,
)
