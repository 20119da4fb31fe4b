"""Writes the HPatches fixture in the layout of GCM's evaluation (IME's hpatches_organizer.py output)."""

from __future__ import annotations

import shutil
from pathlib import Path

from corrlab.datamodules.hpatches_layout import LARGE_SEQUENCES
from tests.helpers.hpatches_fixture import write_hpatches


def write_hpatches_gcm(root: Path, num_images: int = 3) -> Path:
    """{illumination,viewpoint}/<seq>/<seq>_k.ppm and <seq>_H_1_k, large sequences removed, plus image_pairs.txt."""
    release = write_hpatches(root.parent / f"{root.name}_release", num_images=num_images)
    lines = []
    for sequence in sorted(p for p in release.iterdir() if p.is_dir() and p.name not in LARGE_SEQUENCES):
        group = "illumination" if sequence.name.startswith("i_") else "viewpoint"
        target = root / group / sequence.name
        target.mkdir(parents=True)
        for k in range(1, num_images + 1):
            shutil.copy(sequence / f"{k}.ppm", target / f"{sequence.name}_{k}.ppm")
            if k > 1:
                shutil.copy(sequence / f"H_1_{k}", target / f"{sequence.name}_H_1_{k}")
                prefix = f"{group}/{sequence.name}/{sequence.name}"
                lines.append(f"{prefix}_1.ppm {prefix}_{k}.ppm {prefix}_H_1_{k}")
    (root / "image_pairs.txt").write_text("\n".join(lines) + "\n")
    return root
