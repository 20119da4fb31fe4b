"""GeoAware-SC's DINOv2 ViT-B/14 input features computed from the images (the Stable Diffusion v1-5 half is
`sd_features.SDDecoderFeatures`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from corrlab.models.geoaware.dinov2 import DinoV2
from corrlab.models.geoaware.letterbox import Letterbox


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
