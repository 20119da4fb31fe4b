"""`corrlab-extract-features data=<dataset> ...`: write the GeoAware-SC feature cache once (every image of the
chosen splits, and its mirror), with throughput and ETA, resuming where an interrupted run stopped."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import hydra
import torch
from omegaconf import DictConfig
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from corrlab.config.schema import CONFIG_DIR, register_configs
from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.pair_dataset import image_id
from corrlab.models.geoaware.feature_cache import GROUPS, MANIFEST, FeatureCache, cache_file
from corrlab.pipeline.instantiate import instantiate
from corrlab.tracking.progress_lines import ProgressLines

log = logging.getLogger(__name__)
SOURCES = ("backbones", "reference_cache")


def dataset_images(datamodule, splits: list[str]) -> Iterator[tuple[str, Path]]:
    """(feature key, image path) of every image the splits' pairs use, each once; the key is the batches'
    image id (path under the dataset root) without its extension."""
    seen: set[str] = set()
    for split in splits:
        dataset = datamodule.dataset(split)
        for index in range(len(dataset)):
            pair = dataset.load(index)
            for path in (pair.image0, pair.image1):
                key = str(PurePosixPath(image_id(path, dataset.root)).with_suffix(""))
                if key not in seen:
                    seen.add(key)
                    yield key, path


def require_weights(features: DictConfig) -> None:
    """source=backbones: both weight files are set and exist (named by their config keys)."""
    from corrlab.models.geoaware.dinov2 import WEIGHTS_HELP
    from corrlab.models.geoaware.sd_features import SD_HELP

    for key, help_text in (("dino_weights", WEIGHTS_HELP), ("sd_weights", SD_HELP)):
        value = features.get(key)
        if not value or not Path(value).exists():
            raise FileNotFoundError(
                f"features.{key}: {'not set' if not value else f'no file {value}'}; expected {help_text}"
            )


def extraction_settings(cfg: DictConfig) -> dict:
    """What the features depend on (the cache fingerprint)."""
    features = cfg.features
    if features.source == "reference_cache":
        return {"source": "GeoAware-SC preprocess_map.py cache", "dtype": "float16"}
    grid = int(features.grid)
    return {
        "dino": {"model": "dinov2_vitb14", "weights": Path(features.dino_weights).name, "size": 14 * grid, "layer": 11},
        "sd": {
            "model": "v1-5",
            "weights": Path(str(features.sd_weights)).name,
            "size": 16 * grid,
            "timestep": 50,
            "blocks": "decoder inputs of output blocks 8/5/2 (s3/s4/s5), FreeU in place, empty caption, seed-42 noise",
            "window": "mean over 512 x 512 sliding crops (ODISE slide_forward)",
            "caption": (
                f"ODISE implicit captioner ({Path(str(features.clip_weights)).name}, {Path(str(features.odise_weights)).name})"
                if features.get("clip_weights") or features.get("odise_weights")
                else "empty"
            ),
        },
        "dtype": "float16",
    }


class ReferenceConversion:
    """Parts of one image from the reference's cache (<root>/features/.../<img>_sd.pt, _dino.pt, _flip), s4/s5
    at their native resolution."""

    def __init__(self, root: str) -> None:
        from corrlab.models.geoaware.feature_cache import ReferenceFeatureCache

        try:
            self.reference = ReferenceFeatureCache(root)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"features.reference_root: {error}") from error

    def __call__(self, key: str, path: Path) -> dict[str, torch.Tensor]:
        parts = {}
        for suffix in ("", "_flip"):
            sd_path, dino_path = self.reference.files(key, bool(suffix))
            sd = torch.load(sd_path, map_location="cpu", weights_only=True)
            dino = torch.load(dino_path, map_location="cpu", weights_only=True)
            parts.update({f"{g}{suffix}": sd[g][0] for g in GROUPS[:3]}, **{f"dino{suffix}": dino[0]})
        return parts


class BackboneExtraction:
    """Parts of one image computed by the backbones (the image and its mirror): DINOv2 at 14 * grid (840), SD at
    16 * grid (960), so both give grid x grid maps (s4 / s5 at grid / 2, grid / 4)."""

    def __init__(self, features: DictConfig) -> None:
        from corrlab.models.geoaware.backbones import BackboneFeatures

        self.backbones = BackboneFeatures(
            features.dino_weights,
            features.sd_weights,
            features.device,
            int(features.grid),
            config_key="features",
            clip_weights=features.get("clip_weights"),
            odise_weights=features.get("odise_weights"),
        )

    def __call__(self, key: str, path: Path) -> dict[str, torch.Tensor]:
        image = read_image(path)
        parts = {}
        for suffix, img in (("", image), ("_flip", image.flip(-1))):
            parts.update({f"{k}{suffix}": v for k, v in self.backbones.parts(img).items()})
        return parts


def extract(cfg: DictConfig) -> dict:
    """Write the cache of cfg.data's splits to cfg.features.out; return counts and bytes per image."""
    if cfg.features.source not in SOURCES:
        raise ValueError(f"features.source must be one of {SOURCES}, got '{cfg.features.source}'")
    out = Path(cfg.features.out)
    if cfg.features.source == "backbones":
        require_weights(cfg.features)
    settings = extraction_settings(cfg)
    if (out / MANIFEST).is_file():
        FeatureCache(str(out), settings)  # refuses a cache of other settings before anything is written
    else:
        FeatureCache.write_manifest(out, settings)
    if cfg.features.source == "reference_cache":
        source = ReferenceConversion(cfg.features.reference_root)
    else:
        source = BackboneExtraction(cfg.features)
    datamodule = instantiate(cfg.data)
    images = list(dataset_images(datamodule, list(cfg.splits)))
    todo = [(k, p) for k, p in images if not cache_file(out, k).is_file()]
    log.info("%d images, %d already cached in %s (resuming)", len(images), len(images) - len(todo), out)
    written, start = 0, time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.2f} img/s"),
    )
    lines = ProgressLines("extracting features", len(todo), "images", every_n=10)  # for log files (nohup, SLURM)
    with Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn()) as progress:
        task = progress.add_task("extracting", total=len(todo), rate=0.0)
        for done, (key, path) in enumerate(todo, 1):
            written += FeatureCache.write(out, key, source(key, path))
            progress.update(task, advance=1, rate=done / max(time.perf_counter() - start, 1e-9))
            lines.update(done)
    result = {
        "images": len(images),
        "extracted": len(todo),
        "bytes_per_image": written / max(len(todo), 1),
        "seconds": round(time.perf_counter() - start, 3),
    }
    log.info("feature cache %s: %s", out, result)
    return result


def main() -> None:
    register_configs()
    hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="extract_features")(extract)()


if __name__ == "__main__":
    sys.exit(main())
