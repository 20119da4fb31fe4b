"""KITTI-2012 / KITTI-2015 optical flow: the official training layout and where to get it (text and file listing
only, no decoding: `corrlab-data info` reads this without loading torch or OpenCV)."""

from __future__ import annotations

from pathlib import Path

YEARS = (2012, 2015)
IMAGE_DIRS = {2012: "colored_0", 2015: "image_2"}  # the colour left camera (DenseMatching's make_dataset)
NUM_TRAINING_PAIRS = {2012: 194, 2015: 200}
MASKS = ("occ", "noc", "only_occ")  # flow_occ valid pixels (DenseMatching's KITTI_occ), flow_noc, occluded only
ARCHIVE_SIZES = {2012: "about 2 GB", 2015: "about 1.7 GB"}
ARCHIVES = {
    2012: "https://s3.eu-central-1.amazonaws.com/avg-kitti/data_stereo_flow.zip",
    2015: "https://s3.eu-central-1.amazonaws.com/avg-kitti/data_scene_flow.zip",
}
PAGES = {
    2012: "https://www.cvlibs.net/datasets/kitti/eval_stereo_flow.php?benchmark=flow",
    2015: "https://www.cvlibs.net/datasets/kitti/eval_scene_flow.php?benchmark=flow",
}


def layout(year: int) -> str:
    images = IMAGE_DIRS[year]
    return f"""\
<root>/                              (data.root: the extracted {Path(ARCHIVES[year]).stem}.zip)
  training/
    {images}/<id>_10.png <id>_11.png  the frame pair, <id> = 000000 .. {NUM_TRAINING_PAIRS[year] - 1:06d}; flow is on _10
    flow_occ/<id>_10.png           GT flow of all pixels (16-bit RGB PNG: u = (R - 2^15) / 64, v = (G - 2^15) / 64,
                                   B = 1 where valid)
    flow_noc/<id>_10.png           the same, non-occluded pixels only
  testing/                         (no ground truth; not used)"""


def how_to_get(year: int) -> str:
    name = Path(ARCHIVES[year]).name
    return f"""\
KITTI-{year} optical flow ({PAGES[year]}; free registration, non-commercial licence CC BY-NC-SA 3.0):
  "Download stereo/optical flow data set" = {ARCHIVES[year]} ({ARCHIVE_SIZES[year]})
  unzip {name} -d <root>     -> <root>/training/{IMAGE_DIRS[year]}, flow_occ, flow_noc
Then check it: corrlab-data verify kitti{year} <root>"""


def flow_dir(mask: str) -> str:
    """The flow folder whose values and validity a mask reads (only_occ: flow_occ, minus flow_noc's valid)."""
    if mask not in MASKS:
        raise ValueError(f"data.mask must be one of {MASKS}, got '{mask}'")
    return "flow_noc" if mask == "noc" else "flow_occ"


def pair_ids(root: Path, mask: str) -> list[str]:
    """The ids <id> of every training/<flow dir>/<id>_10.png, sorted."""
    folder = Path(root) / "training" / flow_dir(mask)
    return sorted(p.name[: -len("_10.png")] for p in folder.glob("*_10.png"))


def pair_files(year: int, pair_id: str, mask: str) -> dict[str, str]:
    """Paths (relative to the root) of a pair's frames and flow maps."""
    images = f"training/{IMAGE_DIRS[year]}"
    files = {
        "image0": f"{images}/{pair_id}_10.png",
        "image1": f"{images}/{pair_id}_11.png",
        "flow": f"training/{flow_dir(mask)}/{pair_id}_10.png",
    }
    if mask == "only_occ":
        files["flow_noc"] = f"training/flow_noc/{pair_id}_10.png"
    return files
