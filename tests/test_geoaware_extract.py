"""corrlab-extract-features: converting a reference cache, resuming, refusing other settings, clear errors."""

from __future__ import annotations

import logging
import re
from functools import partial

import pytest
import torch

from corrlab.models.geoaware.feature_cache import FeatureCache, ReferenceFeatureCache
from corrlab.pipeline.extract_features import extract
from tests.conftest import compose_config
from tests.helpers.semantic_fixtures import SPAIR_IMAGES, write_spair


def write_reference_layout(root, grid: int = 8) -> None:
    g = torch.Generator().manual_seed(0)
    for category, (_, src, trg, *_rest) in SPAIR_IMAGES.items():
        for image in (src, trg):
            for suffix in ("", "_flip"):
                sd = {
                    k: torch.randn(1, c, grid // f, grid // f, generator=g)
                    for k, c, f in (("s3", 640, 1), ("s4", 1280, 2), ("s5", 1280, 4))
                }
                folder = root / "features" / category  # beside JPEGImages/, as preprocess_map.py writes it
                folder.mkdir(parents=True, exist_ok=True)
                torch.save(sd, folder / f"{image}_sd{suffix}.pt")
                torch.save(torch.randn(1, 768, grid, grid, generator=g), folder / f"{image}_dino{suffix}.pt")


def test_convert_a_reference_cache_and_resume(tmp_path, monkeypatch, caplog):
    from corrlab.pipeline import extract_features
    from corrlab.tracking import progress_lines

    monkeypatch.setattr(progress_lines, "console_is_terminal", lambda: False)  # as in a log file
    monkeypatch.setattr(extract_features, "ProgressLines", partial(progress_lines.ProgressLines, every_s=0.0))
    caplog.set_level(logging.INFO, logger="corrlab.progress")
    root = tmp_path / "SPair-71k"
    write_spair(root)
    write_reference_layout(root)
    overrides = ["data=spair", f"data.root={root}", "features.source=reference_cache"]
    overrides += [f"features.out={tmp_path / 'cache'}"]
    cfg = compose_config("extract_features", overrides, tmp_path / "run")
    result = extract(cfg)
    assert result["images"] == result["extracted"] == 4
    # fp16 (2 bytes), s4/s5 native, image and mirror: 2 * 2 * (640*64 + 1280*16 + 1280*4 + 768*64) + pickle overhead
    payload = 4 * (640 * 64 + 1280 * 16 + 1280 * 4 + 768 * 64)
    assert payload < result["bytes_per_image"] < 1.02 * payload
    ours = FeatureCache(str(tmp_path / "cache"), grid=8)("JPEGImages/cat/2010_000001", flip=True)
    reference = ReferenceFeatureCache(str(root), grid=8)("JPEGImages/cat/2010_000001", flip=True)
    torch.testing.assert_close(ours, reference, atol=2e-3, rtol=1e-3)  # fp16 storage
    lines = [r.getMessage() for r in caplog.records]  # throughput and ETA while it runs
    assert [line.split(",")[0] for line in lines] == [f"extracting features: {k}/4 images" for k in range(1, 5)]
    assert all(re.search(r", \d+\.\d\d images/s, ETA \d+:\d\d:\d\d$", line) for line in lines[:3])
    (tmp_path / "cache" / "JPEGImages" / "car" / "2010_000004.pt").unlink()  # an interrupted run
    caplog.clear()
    assert extract(cfg)["extracted"] == 1
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["extracting features: 1/1 images"]


def test_other_settings_and_missing_weights_fail_clearly(tmp_path):
    root = tmp_path / "SPair-71k"
    write_spair(root)
    FeatureCache.write_manifest(tmp_path / "cache", {"something": "else"})
    overrides = ["data=spair", f"data.root={root}", f"features.out={tmp_path / 'cache'}"]
    cfg = compose_config(
        "extract_features", [*overrides, "features.source=reference_cache", "features.reference_root=x"], tmp_path / "a"
    )
    with pytest.raises(ValueError, match="other settings"):
        extract(cfg)
    cfg = compose_config(
        "extract_features", ["data=spair", f"data.root={root}", f"features.out={tmp_path / 'new'}"], tmp_path / "b"
    )
    with pytest.raises(FileNotFoundError, match="features.dino_weights"):
        extract(cfg)
