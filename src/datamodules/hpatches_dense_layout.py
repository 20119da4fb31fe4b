"""Dense HPatches' pair CSV (DGC-Net / DenseMatching assets/hpatches_all.csv): its layout, how to get it and its
reader, without torch (the dataset catalog reads it)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError

CSV_NAME = "hpatches_all.csv"
CSV_COLUMNS = ["obj", "im1", "im2", "Him", "Wim", *(f"H{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3))]
EXPECTED_PAIRS, EXPECTED_SEQUENCES = 295, 59  # the 59 v_ sequences, pairs 1 -> 2..6
LAYOUT = """\
<root>/ = hpatches-sequences-release: v_<name>/1.ppm ... 6.ppm (the CSVs name 59 v_ sequences)
<csv_dir>/hpatches_all.csv = DenseMatching's assets/hpatches_all.csv (columns obj,im1,im2,Him,Wim,H11..H33; 295 rows)
  (data.csv_dir; default <data_dir>/hpatches/glunet_csv, i.e. <root>/../hpatches/glunet_csv)"""
HOW_TO_GET = """\
Images: hpatches-sequences-release.tar.gz (about 1.3 GB), from the HPatches authors:
  http://icvl.ee.ic.ac.uk/vbalnt/hpatches/hpatches-sequences-release.tar.gz
  tar xzf hpatches-sequences-release.tar.gz     -> data.root=<dir>/hpatches-sequences-release
Pair CSVs (image 1 -> k homographies and the reference sizes), from DenseMatching (GLU-Net / GOCor):
  https://github.com/PruneTruong/DenseMatching/tree/main/assets  (hpatches_all.csv, hpatches_1_2.csv ...)
  -> data.csv_dir=<folder holding hpatches_all.csv>
Check a folder with: corrlab-data verify hpatches_dense <root>   (the CSVs at <root>/../hpatches/glunet_csv)"""


def read_pair_csv(path: Path) -> list[dict]:
    """Rows of DenseMatching's HPatches CSV: sequence, image ids, the reference size and H (image 1 -> image k)."""
    if not path.is_file():
        raise DatasetNotFoundError("HPatches (dense)", path, LAYOUT, "DenseMatching assets/hpatches_all.csv")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != CSV_COLUMNS:
            raise UnreadableFileError(path, f"expected the columns {','.join(CSV_COLUMNS)}, got {reader.fieldnames}")
        try:
            return [
                {
                    "obj": row["obj"],
                    "im1": int(float(row["im1"])),
                    "im2": int(float(row["im2"])),
                    "size1": (int(float(row["Him"])), int(float(row["Wim"]))),
                    "H": np.array([float(row[c]) for c in CSV_COLUMNS[5:]]).reshape(3, 3),
                }
                for row in reader
            ]
        except ValueError as error:
            raise UnreadableFileError(path, f"a row is not numeric ({error})") from error
