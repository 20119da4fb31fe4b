"""`model/features=backbones`: GeoAware-SC input features computed from the images (DINOv2 ViT-B/14 here;
the Stable Diffusion v1-5 decoder features are not implemented yet, see docs/geoaware.md)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from corrlab.models.geoaware.dinov2 import DinoV2
from corrlab.models.geoaware.letterbox import Letterbox

SD_HELP = (
    "model.features.sd_weights / features.sd_weights: Stable Diffusion v1-5 (a diffusers folder or "
    "v1-5-pruned-emaonly.ckpt from huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5)"
)


class SDDecoderFeatures(nn.Module):
    """Placeholder that fails clearly: the ODISE-style SD v1-5 extractor (960 letterbox, empty caption, t=50,
    decoder inputs of output blocks 5/8/2 as s3/s4/s5, FreeU in place) is not written yet."""

    def __init__(self, weights: str | None) -> None:
        super().__init__()
        if not weights or not Path(weights).exists():
            raise FileNotFoundError(f"no SD weights at '{weights}': set {SD_HELP}")
        raise NotImplementedError(
            "SD v1-5 feature extraction is not implemented in corrlab yet: extract with the reference's "
            "preprocess_map.py and convert with `corrlab-extract-features features.source=reference_cache "
            "features.reference_root=<its features/ folder>` (docs/geoaware.md)"
        )


class DinoFeatures(nn.Module):
    """768 x 60 x 60 DINOv2 ViT-B/14 block-11 tokens of the image letterboxed to 840 x 840 (zero padding)."""

    def __init__(self, weights: str | None, image_size: int = 840, layer: int = 11) -> None:
        super().__init__()
        if not weights:
            raise FileNotFoundError("features.dino_weights is not set (dinov2_vitb14_pretrain.pth)")
        self.model = DinoV2()
        self.model.load_official(weights)
        self.model.eval().requires_grad_(False)
        self.image_size, self.layer = image_size, layer

    @torch.inference_mode()
    def forward(self, image: Tensor) -> Tensor:
        """image: 3 x H x W in [0, 1]."""
        h, w = image.shape[-2:]
        boxed = Letterbox(int(h), int(w), self.image_size).image(image.to(self.model.cls_token.device))
        return self.model.feature_map(boxed[None], self.layer)[0]
