"""`model/features=backbones`: clear errors for missing files (eval.py from the backbones against eval.py from
their extracted cache: tests/test_geoaware_sd.py::test_extract_from_the_backbones_then_evaluate)."""

from __future__ import annotations

import pytest


def test_missing_backbone_files_name_the_key_and_the_source(tmp_path):
    from corrlab.models.geoaware.backbones import BackboneFeatures

    with pytest.raises(FileNotFoundError, match=r"model\.features\.dino_weights: not set.*dinov2_vitb14_pretrain"):
        BackboneFeatures(None, str(tmp_path))
    dino = tmp_path / "dinov2_vitb14_pretrain.pth"
    dino.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"model\.features\.sd_weights: no file .*stable-diffusion-v1-5"):
        BackboneFeatures(str(dino), str(tmp_path / "absent"))
