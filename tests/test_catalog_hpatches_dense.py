"""`corrlab-data verify hpatches_dense` on fixtures: a complete folder (59 tiny v_ sequences, 295 CSV rows), then one
missing image, a reference image of the wrong size, a missing or malformed CSV; the real CSV's counts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from corrlab.datamodules.catalog import get
from corrlab.datamodules.catalog.cli import main
from corrlab.datamodules.catalog.entries.hpatches_dense import verify
from corrlab.datamodules.hpatches_dense_layout import CSV_COLUMNS
from tests.conftest import shared_data

SIZE = (6, 8)  # H x W of every fixture image


def write_release(data_dir: Path, num_sequences: int = 59) -> Path:
    """<data_dir>/hpatches-sequences-release/v_seqNN/1..6.ppm and <data_dir>/hpatches/glunet_csv/hpatches_all.csv."""
    root, csv_dir = data_dir / "hpatches-sequences-release", data_dir / "hpatches" / "glunet_csv"
    csv_dir.mkdir(parents=True)
    pixels = np.zeros((*SIZE, 3), dtype=np.uint8)
    rows = []
    for s in range(num_sequences):
        folder = root / f"v_seq{s:02d}"
        folder.mkdir(parents=True)
        for k in range(1, 7):
            Image.fromarray(pixels).save(folder / f"{k}.ppm")
        rows += [[folder.name, 1, k, *SIZE, 1, 0, 0, 0, 1, 0, 0, 0, 1] for k in range(2, 7)]
    with open(csv_dir / "hpatches_all.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    return root


def test_a_complete_folder_verifies_and_the_entry_is_listed(tmp_path, capsys):
    root = write_release(tmp_path)
    report = verify(root)
    assert report.ok(), report.format()
    assert (
        "295 pairs over 59 sequences" in report.format()
        and "59 of 59 present reference images match" in report.format()
    )
    assert main(["verify", "hpatches_dense", str(root)]) == 0
    assert "[all] complete" in capsys.readouterr().out
    assert "corrlab-data verify hpatches_dense" in get("hpatches_dense").how_to_get


def test_missing_images_and_wrong_sizes_are_named(tmp_path, capsys):
    root = write_release(tmp_path)
    (root / "v_seq03" / "4.ppm").unlink()
    Image.fromarray(np.zeros((7, 8, 3), dtype=np.uint8)).save(root / "v_seq05" / "1.ppm")
    assert main(["verify", "hpatches_dense", str(root)]) == 1
    out = capsys.readouterr().out
    assert "MISSING images the CSV names: 353 of 354 present" in out and "v_seq03/4.ppm" in out
    assert "v_seq05/1.ppm: 7 x 8, the CSV says 6 x 8" in out and "How to get it" in out


def test_a_missing_or_malformed_csv_is_named(tmp_path):
    root = write_release(tmp_path, num_sequences=2)
    report = verify(root).format()
    assert "10 pairs over 2 sequences, expected 295 over 59" in report
    csv_path = tmp_path / "hpatches" / "glunet_csv" / "hpatches_all.csv"
    csv_path.write_text("obj,im1\nv_seq00,1\n")
    assert "expected the columns obj,im1,im2" in verify(root).format()
    csv_path.unlink()
    report = verify(root)
    assert not report.ok() and "no such file" in report.format() and str(csv_path) in report.format()
    assert "no such folder" in verify(tmp_path / "absent").format()


def test_the_official_csv_has_295_pairs_over_59_sequences(tmp_path):
    csv_dir = shared_data("hpatches", "glunet_csv")
    (tmp_path / "release").mkdir()
    report = verify(tmp_path / "release", csv_dir=csv_dir)
    assert report.checks[0].ok and "295 pairs over 59 sequences" in report.checks[0].detail
    assert not report.checks[1].ok  # no images in the empty folder
