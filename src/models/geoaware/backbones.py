"""GeoAware-SC's DINOv2 ViT-B/14 input features computed from the images (the Stable Diffusion v1-5 half is
`sd_features.SDDecoderFeatures`)."""

from __future__ import annotations

from pathlib import Path

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


class BackboneFeatures:
    """`model/features=backbones`: the frozen features computed from the batch images at evaluation time (no
    cache): SD v1-5 s3/s4/s5 at 16 * grid (960) and DINOv2 at 14 * grid (840), assembled as the cache's
    (3968, grid, grid).  Not an nn.Module on purpose: the backbones stay out of the model's checkpoints."""

    reads_images = True  # GeoAwareSC passes the batch image (mirrored on request) instead of a stored view

    def __init__(
        self,
        dino_weights: str | None,
        sd_weights: str | None,
        device: str = "auto",
        grid: int = 60,
        config_key: str = "model.features",
        clip_weights: str | None = None,
        odise_weights: str | None = None,
    ) -> None:
        from corrlab.models.geoaware.dinov2 import WEIGHTS_HELP
        from corrlab.models.geoaware.sd_features import SD_HELP, SDDecoderFeatures

        for name, value, help_text in (
            ("dino_weights", dino_weights, WEIGHTS_HELP),
            ("sd_weights", sd_weights, SD_HELP),
        ):
            if not value or not Path(value).exists():
                raise FileNotFoundError(
                    f"{config_key}.{name}: {'not set' if not value else f'no file {value}'}; expected {help_text}"
                )
        auto = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(auto if device == "auto" else device)
        self.grid = grid
        self.dino = DinoFeatures(dino_weights, image_size=14 * grid).to(self.device)
        self.sd = SDDecoderFeatures(
            sd_weights,
            image_size=16 * grid,
            clip_weights=clip_weights,
            odise_weights=odise_weights,
            config_key=config_key,
        ).to(self.device)

    def parts(self, image: Tensor) -> dict[str, Tensor]:
        """image: 3 x H x W in [0, 1] -> {'s3', 's4', 's5' (native strides), 'dino'}."""
        image = image.to(self.device)
        return {**self.sd(image), "dino": self.dino(image)}

    def __call__(self, image_id: str, image: Tensor | None = None, flip: bool = False) -> Tensor:
        if image is None:
            raise ValueError(f"model.features=backbones computes from the image, none given for '{image_id}'")
        from corrlab.models.geoaware.feature_cache import assemble

        return assemble(self.parts(image.flip(-1) if flip else image), self.grid)
