"""Frozen GeoAware-SC input features per image: a compact cache (fp16, SD s4/s5 at their native resolution,
flipped-image features beside them) fingerprinted by its extraction settings, and the reference's layout."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.benchmarks.base import fingerprint

GROUPS = ("s3", "s4", "s5", "dino")
MANIFEST = "geoaware_features.json"


def assemble(parts: Mapping[str, Tensor], grid: int = 60) -> Tensor:
    """(3968, grid, grid) float32: [s3, up(s4), up(s5), dino] with s4/s5 bilinearly upsampled (align_corners=False)."""
    maps = []
    for name in GROUPS:
        x = parts[name].float()
        x = x[None] if x.dim() == 3 else x
        if x.shape[-2:] != (grid, grid):
            x = F.interpolate(x, size=(grid, grid), mode="bilinear", align_corners=False)
        maps.append(x[0])
    return torch.cat(maps, dim=0)


def check_grid(parts: Mapping[str, Tensor], grid: int, where: str) -> None:
    """s3 and dino are stored on the patch grid (only s4 / s5 are upsampled to it): features of another grid are
    refused rather than resampled."""
    for name in ("s3", "dino"):
        size = tuple(parts[name].shape[-2:])
        if size != (grid, grid):
            raise ValueError(
                f"{where}: {name} features are {size[0]}x{size[1]}, this model's grid is {grid}x{grid} (extracted for "
                f"another model.grid / image size); re-extract them with features.grid={grid}"
            )


def reference_stem(key: str) -> str:
    """The reference's name of an image's feature files: its path with JPEGImages -> features (pck_train.py)."""
    return key.replace("JPEGImages", "features")


def cache_file(root: Path, image_id: str) -> Path:
    """Where an image's features live: <root>/<key>.pt, key = the image path under the dataset root without its
    extension (e.g. 'JPEGImages/cat/2008_000123')."""
    if image_id.startswith("/") or ".." in Path(image_id).parts:
        raise ValueError(f"image id '{image_id}' must be a relative path without '..'")
    return root / f"{image_id}.pt"


class FeatureCache:
    """`model/features=cache`: features read from `root`, written once by `corrlab-extract-features`.

    Each image file holds fp16 tensors s3, s4, s5, dino and the same with the suffix `_flip` (the horizontally
    mirrored image).  `root/geoaware_features.json` records the extraction settings; a cache whose settings
    differ from `settings` is refused (its fingerprint is named).
    """

    def __init__(self, root: str, settings: Mapping[str, Any] | None = None, grid: int = 60) -> None:
        self.root = Path(root)
        self.grid = grid
        self.settings = dict(settings or {})
        if not (self.root / MANIFEST).is_file():
            raise FileNotFoundError(
                f"model.features.root: no feature cache at {self.root} ({MANIFEST} missing); write it with "
                "`corrlab-extract-features data=<dataset> features.dino_weights=<dinov2_vitb14_pretrain.pth> "
                "features.sd_weights=<stable-diffusion-v1-5 folder or .ckpt>`"
            )
        manifest = json.loads((self.root / MANIFEST).read_text())
        if self.settings and manifest["fingerprint"] != fingerprint(self.settings):
            raise ValueError(
                f"feature cache {self.root} was extracted with other settings (fingerprint {manifest['fingerprint']}, "
                f"expected {fingerprint(self.settings)}): {manifest['settings']} vs {self.settings}; re-extract it"
            )
        self.manifest = manifest

    def __call__(self, image_id: str, image: Tensor | None = None, flip: bool = False) -> Tensor:
        path = cache_file(self.root, image_id)
        if not path.is_file():
            raise FileNotFoundError(f"feature cache {self.root}: no features for image '{image_id}' ({path})")
        try:
            parts = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a truncated or foreign file: name it
            raise ValueError(f"feature cache file {path} is unreadable: {error}") from error
        suffix = "_flip" if flip else ""
        parts = {g: parts[g + suffix] for g in GROUPS}
        check_grid(parts, self.grid, f"feature cache file {path}")
        return assemble(parts, self.grid)

    @staticmethod
    def write_manifest(root: str | Path, settings: Mapping[str, Any]) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"settings": dict(settings), "fingerprint": fingerprint(dict(settings))}, indent=2)
        (root / MANIFEST).write_text(text)

    @staticmethod
    def write(root: str | Path, image_id: str, parts: Mapping[str, Tensor]) -> int:
        """Store one image's features (fp16, atomically: a temporary file renamed); returns the bytes written."""
        path = cache_file(Path(root), image_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        missing = [g + s for g in GROUPS for s in ("", "_flip") if g + s not in parts]
        if missing:
            raise KeyError(f"features of '{image_id}' lack {missing}")
        tmp = path.with_suffix(".tmp")
        torch.save({k: v.detach().to("cpu", torch.float16).clone() for k, v in parts.items()}, tmp)  # no view storage
        os.replace(tmp, path)
        return path.stat().st_size


class ReferenceFeatureCache:
    """`model/features=reference_cache`: the GeoAware-SC layout written by its preprocess_map.py beside the
    images, <root>/features/<category>/<image>_sd.pt (dict s3, s4, s5) and <image>_dino.pt, with `_flip`
    variants; root = the dataset root (JPEGImages/ -> features/)."""

    def __init__(self, root: str, grid: int = 60) -> None:
        self.root = Path(root)
        self.grid = grid
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"model.features.root: no folder {self.root} (the dataset root whose features/ folder the "
                "reference's preprocess_map.py wrote)"
            )

    def files(self, image_id: str, flip: bool) -> tuple[Path, Path]:
        suffix = "_flip" if flip else ""
        stem = reference_stem(image_id)
        return self.root / f"{stem}_sd{suffix}.pt", self.root / f"{stem}_dino{suffix}.pt"

    def __call__(self, image_id: str, image: Tensor | None = None, flip: bool = False) -> Tensor:
        sd_path, dino_path = self.files(image_id, flip)
        for path in (sd_path, dino_path):
            if not path.is_file():
                raise FileNotFoundError(f"reference feature cache: no {path} for image '{image_id}'")
        sd = torch.load(sd_path, map_location="cpu", weights_only=True)
        dino = torch.load(dino_path, map_location="cpu", weights_only=True)
        parts = {"s3": sd["s3"], "s4": sd["s4"], "s5": sd["s5"], "dino": dino}
        check_grid(parts, self.grid, f"reference feature cache {sd_path.parent}")
        return assemble(parts, self.grid)
