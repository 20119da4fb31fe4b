"""ODISE's implicit captioner (`LdmImplicitCaptionerExtractor`, which the reference's SD features go through): the
CLIP ViT-L/14-336 image embedding of each crop, projected by ODISE's trained layers into the UNet's caption
(added to the empty caption) and into its time embedding.  docs/geoaware.md (Feature sources) has every term."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CLIP_HELP = (
    "OpenAI's CLIP ViT-L/14-336 as a transformers folder (config.json + weights) from the openai/clip-vit-large-"
    "patch14-336 release (huggingface.co/openai/clip-vit-large-patch14-336), the weights ODISE loads through "
    "open_clip's ViT-L-14-336 'openai'"
)
ODISE_HELP = (
    "ODISE's trained checkpoint odise_label_coco_50e-b67d2efc.pth from the NVlabs/ODISE release "
    "(github.com/NVlabs/ODISE, model zoo), holding backbone.feature_extractor.{alpha_cond, clip_project.*, "
    "alpha_cond_time_embed, time_embed_project.*}"
)
PREFIX = "backbone.feature_extractor."  # ODISE model.backbone (FeatureExtractorBackbone).feature_extractor
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's OPENAI_DATASET_MEAN / STD
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class PositionalLinear(nn.Module):
    """ODISE's PositionalLinear: linear(x)[:, None] + a learned (1, seq_len, out) positional embedding."""

    def __init__(self, in_features: int, out_features: int, seq_len: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.positional_embedding = nn.Parameter(torch.zeros(1, seq_len, out_features))

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)[:, None] + self.positional_embedding


def require_file(key: str, value: str | None, help_text: str) -> Path:
    if not value or not Path(value).exists():
        raise FileNotFoundError(f"{key}: {'not set' if not value else f'no file {value}'}; expected {help_text}")
    return Path(value)


class ImplicitCaptioner(nn.Module):
    """(context, time-embedding offset) of one crop: context = uncond + tanh(alpha_cond) * clip_project(e),
    offset = tanh(alpha_cond_time_embed) * time_embed_project(e)[:, 0], e = CLIP image embedding (not normalised).

    text_dim / seq_len: the UNet's caption shape (768 x 77 for SD); time_dim: its time-embedding width (1280)."""

    def __init__(
        self,
        clip_weights: str | None,
        odise_weights: str | None,
        text_dim: int = 768,
        seq_len: int = 77,
        time_dim: int = 1280,
        config_key: str = "features",
    ) -> None:
        super().__init__()
        from transformers import CLIPVisionModelWithProjection

        clip_path = require_file(f"{config_key}.clip_weights", clip_weights, CLIP_HELP)
        odise_path = require_file(f"{config_key}.odise_weights", odise_weights, ODISE_HELP)
        self.clip = CLIPVisionModelWithProjection.from_pretrained(clip_path, local_files_only=True)
        self.clip.eval().requires_grad_(False)
        dim = self.clip.config.projection_dim
        self.clip_project = PositionalLinear(dim, text_dim, seq_len)
        self.alpha_cond = nn.Parameter(torch.zeros(1, seq_len, text_dim))
        self.time_embed_project = PositionalLinear(dim, time_dim, 1)
        self.alpha_cond_time_embed = nn.Parameter(torch.zeros(time_dim))
        self.load_official(odise_path)
        self.requires_grad_(False)

    def load_official(self, path: Path) -> None:
        """The captioner's parameters from ODISE's checkpoint ({'model': state_dict}), strictly: every key named."""
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a corrupt or foreign file: name it
            raise ValueError(f"features.odise_weights: {path} is not a readable checkpoint ({error})") from error
        state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else {}
        own = {k: v for k, v in self.state_dict().items() if not k.startswith("clip.")}
        missing = [PREFIX + k for k in own if PREFIX + k not in state]
        if missing:
            raise KeyError(f"features.odise_weights: {path} lacks {missing}; expected {ODISE_HELP}")
        for key, value in own.items():
            if state[PREFIX + key].shape != value.shape:
                raise ValueError(
                    f"features.odise_weights: {PREFIX + key} has shape {tuple(state[PREFIX + key].shape)}, "
                    f"expected {tuple(value.shape)}"
                )
        self.load_state_dict({k: state[PREFIX + k] for k in own}, strict=False)

    def embed(self, crop: Tensor) -> Tensor:
        """(1, 3, S, S) in [0, 1] -> (1, D) CLIP image embedding, preprocessed as ODISE's ClipAdapter: Resize(336,
        bicubic; a tensor resize without antialias, torchvision's default then), CenterCrop(336), Normalize."""
        size = self.clip.config.image_size
        h, w = crop.shape[-2:]
        short, long = min(h, w), max(h, w)  # torchvision: shorter side = size, longer = int(size * long / short)
        out = (size, int(size * long / short)) if h <= w else (int(size * long / short), size)
        resized = F.interpolate(crop, size=out, mode="bicubic", align_corners=False, antialias=False)
        top, left = (int(round((s - size) / 2.0)) for s in resized.shape[-2:])  # torchvision's center_crop
        resized = resized[..., top : top + size, left : left + size]
        mean, std = resized.new_tensor(CLIP_MEAN)[:, None, None], resized.new_tensor(CLIP_STD)[:, None, None]
        return self.clip(pixel_values=(resized - mean) / std).image_embeds.float()

    def forward(self, crop: Tensor, uncond: Tensor) -> tuple[Tensor, Tensor]:
        prefix = self.embed(crop)
        context = uncond + torch.tanh(self.alpha_cond) * self.clip_project(prefix)
        offset = torch.tanh(self.alpha_cond_time_embed) * self.time_embed_project(prefix)[:, 0]
        return context, offset
