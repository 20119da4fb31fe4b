"""data=hpatches_dense side by side with DenseMatching's own HPatchesDataset (datasets/geometric_matching_datasets/
hpatches.py) on the same images and the official CSV: images, ground-truth flow and mask, at 240 x 240 (hp-240) and
at the original size (hp).

    PYTHONPATH=<DenseMatching checkout>:<a folder with pandas> python -m bench.hpatches_dense_reference \
        --csv ../shared/data/hpatches/glunet_csv/hpatches_all.csv --out /tmp/dense_run [--sequences v_london v_bird]

The images are random ones of the CSV's sizes (image k a little smaller than image 1) written in the
hpatches-sequences-release layout, so the check needs no download.  DenseMatching's flow is on its target grid
(image k) into its source (image 1); ours is on image 0 = image k into image 1 = image 1: the two must be equal.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from corrlab.datamodules.hpatches_dense import HPatchesDensePairs


def write_images(root: Path, rows: list[dict]) -> None:
    rng = np.random.default_rng(0)
    for row in rows:
        folder = root / row["obj"]
        folder.mkdir(parents=True, exist_ok=True)
        h, w = int(float(row["Him"])), int(float(row["Wim"]))
        for k in (1, int(row["im2"])):
            size = (h, w) if k == 1 else (h - 10 * k, w - 6 * k)
            if not (folder / f"{k}.ppm").exists():
                cv2.imwrite(str(folder / f"{k}.ppm"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sequences", nargs="+", default=["v_london", "v_bird"])
    args = parser.parse_args()
    from datasets.geometric_matching_datasets.hpatches import HPatchesDataset  # the reference, from its checkout

    rows = [r for r in csv.DictReader(open(args.csv)) if r["obj"] in args.sequences]
    root = args.out / "hpatches-sequences-release"
    write_images(root, rows)
    subset_csv = args.out / "subset.csv"
    with open(subset_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    worst = {"image": 0.0, "flow": 0.0, "mask_disagreements": 0}
    for size in ((240, 240), None):
        reference = HPatchesDataset(
            str(root), str(subset_csv), None, None, None, use_original_size=size is None, image_size=size or (240, 240)
        )
        ours = HPatchesDensePairs(root, subset_csv, size, on_missing="error")
        for index in range(len(ours)):
            theirs, mine = reference[index], ours[index]
            image = torch.from_numpy(theirs["target_image"]).permute(2, 0, 1).float() / 255.0
            worst["image"] = max(worst["image"], float((image - mine["image0"]).abs().max()))
            source = torch.from_numpy(theirs["source_image"]).permute(2, 0, 1).float() / 255.0
            worst["image"] = max(worst["image"], float((source - mine["image1"]).abs().max()))
            flow = torch.as_tensor(np.asarray(theirs["flow_map"]))
            mask = torch.as_tensor(np.asarray(theirs["correspondence_mask"]))
            worst["mask_disagreements"] += int((mask != mine["flow_valid"]).sum())
            valid = mask & mine["flow_valid"]
            worst["flow"] = max(worst["flow"], float((flow[valid] - mine["flow"][valid]).abs().max()))
            print(
                f"{'hp-240' if size else 'hp'} {mine['name']}: {tuple(mine['flow'].shape[:2])}, {int(valid.sum())} valid"
            )
    print(
        f"largest differences over {2 * len(rows)} samples: image {worst['image']:.3g}, flow {worst['flow']:.3g} px, "
        f"mask {worst['mask_disagreements']} pixels"
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
