"""Random GeoAware-SC feature caches for the SPair fixture: tiny grids (image_size = 14 * grid), fp16 parts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from corrlab.models.geoaware.aggregation import FEATURE_DIMS
from corrlab.models.geoaware.feature_cache import GROUPS, FeatureCache


def random_parts(grid: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """s3 at grid, s4 at grid/2, s5 at grid/4 (native SD strides), dino at grid; and their _flip versions."""
    sizes = {"s3": grid, "s4": grid // 2, "s5": grid // 4, "dino": grid}
    parts = {}
    for suffix in ("", "_flip"):
        for name, dim in zip(GROUPS, FEATURE_DIMS):
            parts[name + suffix] = torch.randn(dim, sizes[name], sizes[name], generator=generator)
    return parts


def write_feature_cache(root: Path, image_ids: Iterable[str], grid: int = 12, seed: int = 0) -> dict:
    """A cache with random features for `image_ids`; returns the settings recorded in its manifest."""
    settings = {"test": "random features", "grid": grid, "seed": seed}
    FeatureCache.write_manifest(root, settings)
    generator = torch.Generator().manual_seed(seed)
    for image_id in image_ids:
        FeatureCache.write(root, image_id, random_parts(grid, generator))
    return settings


SPAIR_FIXTURE_IMAGES = tuple(
    f"JPEGImages/{c}/2010_00000{i}" for c, i in (("cat", 1), ("cat", 2), ("car", 3), ("car", 4))
)
TINY = ["model.grid=12", "model.image_size=168"]
