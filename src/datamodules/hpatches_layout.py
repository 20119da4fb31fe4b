"""The two HPatches layouts on disk, detected automatically, and reading their homography files.

- release: hpatches-sequences-release as distributed: `<seq>/{1..6}.ppm`, `<seq>/H_1_k`.
- gcm: the folders GCM's / IME's `hpatches_organizer.py` writes:
  `{illumination,viewpoint}/<seq>/<seq>_{1..6}.ppm`, `<seq>/<seq>_H_1_k` (large sequences already removed).
Pair names are `<seq>/1-k` in both, so the two layouts give the same protocol fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrlab.datamodules.errors import UnreadableFileError

LARGE_SEQUENCES = (
    "i_contruction",
    "i_crownnight",
    "i_dc",
    "i_pencils",
    "i_whitebuilding",
    "v_artisans",
    "v_astronautis",
    "v_talent",
)
IMAGE_EXTENSIONS = (".ppm", ".png", ".jpg")
GCM_GROUPS = ("illumination", "viewpoint")
LAYOUT = """\
<root>/ = hpatches-sequences-release (116 sequences as distributed):
  i_ajuntament/ 1.ppm ... 6.ppm  H_1_2 ... H_1_6     (illumination sequences, prefix i_)
  v_abstract/   1.ppm ... 6.ppm  H_1_2 ... H_1_6     (viewpoint sequences, prefix v_)
  ...
or the layout of GCM's evaluation (IME hpatches_organizer.py; 108 sequences):
  illumination/i_ajuntament/i_ajuntament_1.ppm ... _6.ppm  i_ajuntament_H_1_2 ... _H_1_6
  viewpoint/v_abstract/v_abstract_1.ppm ...                v_abstract_H_1_2 ...
H_1_k: 3 lines of 3 numbers, mapping pixels of image 1 to pixels of image k."""
HOW_TO_GET = """\
hpatches-sequences-release.tar.gz (about 1.3 GB, 116 sequences), from the HPatches authors:
  http://icvl.ee.ic.ac.uk/vbalnt/hpatches/hpatches-sequences-release.tar.gz
  (mirror: https://huggingface.co/datasets/vbalnt/hpatches)
  tar xzf hpatches-sequences-release.tar.gz     -> data.root=<dir>/hpatches-sequences-release
The 8 large sequences are excluded at load time (data.exclude_large=true): 108 sequences, 540 pairs.
Check a folder with: corrlab-data verify hpatches <root>"""


@dataclass(frozen=True)
class Sequence:
    """One HPatches sequence folder in either layout."""

    name: str
    folder: Path
    layout: str  # "release" | "gcm"

    def image_path(self, k: int) -> Path:
        stem = f"{k}" if self.layout == "release" else f"{self.name}_{k}"
        for extension in IMAGE_EXTENSIONS:
            candidate = self.folder / f"{stem}{extension}"
            if candidate.is_file():
                return candidate
        return self.folder / f"{stem}.ppm"

    def homography_path(self, k: int) -> Path:
        return self.folder / (f"H_1_{k}" if self.layout == "release" else f"{self.name}_H_1_{k}")


def detect_layout(root: Path) -> str:
    """'gcm' when root holds illumination/ or viewpoint/, else 'release'."""
    return "gcm" if any((root / group).is_dir() for group in GCM_GROUPS) else "release"


def find_sequences(root: str | Path) -> list[Sequence]:
    """Every i_*/v_* sequence under root, sorted by name, in the detected layout."""
    root = Path(root)
    layout = detect_layout(root)
    parents = [root / g for g in GCM_GROUPS if (root / g).is_dir()] if layout == "gcm" else [root]
    folders = [p for parent in parents for p in parent.iterdir() if p.is_dir() and p.name[:2] in ("i_", "v_")]
    return sorted((Sequence(f.name, f, layout) for f in folders), key=lambda s: s.name)


def read_homography(path: Path) -> np.ndarray:
    """A 3x3 float64 homography from a whitespace-separated text file; names the file when malformed."""
    try:
        H = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as error:
        raise UnreadableFileError(path, f"not a 3x3 homography ({error})") from error
    if H.shape != (3, 3):
        raise UnreadableFileError(path, f"expected 3x3 numbers, found shape {H.shape}")
    if not np.isfinite(H).all():
        raise UnreadableFileError(path, "the homography contains NaN or inf")
    return H
