"""DINOv2 ViT-B/14 (Oquab et al. 2023) as GeoAware-SC uses it: the official torch.hub checkpoint
(dinov2_vitb14_pretrain.pth) loaded strictly, tokens of block 11 ('token' facet, before the final norm) of an
840 x 840 letterboxed, ImageNet-normalised image -> 768 x 60 x 60.  Position embeddings are resized like
DINOv2's interpolate_pos_encoding (bicubic, scale factor (n + 0.1) / M, no antialiasing)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_HELP = (
    "dinov2_vitb14_pretrain.pth from https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth "
    "(the file torch.hub.load('facebookresearch/dinov2', 'dinov2_vitb14') downloads)"
)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with layer scale (DINOv2 NestedTensorBlock without stochastic depth)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn, self.mlp = Attention(dim, heads), Mlp(dim, int(dim * mlp_ratio))
        self.ls1, self.ls2 = LayerScale(dim), LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoV2(nn.Module):
    """ViT with the official DINOv2 parameter names (cls_token, pos_embed, mask_token, patch_embed.proj,
    blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}, norm).  Defaults: ViT-B/14
    at 518 (37 x 37 position grid)."""

    def __init__(
        self, dim: int = 768, depth: int = 12, heads: int = 12, patch_size: int = 14, pos_grid: int = 37
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.patch_embed = PatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid * pos_grid + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # masked-image training only; kept for strict loading
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def load_official(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model.features.dino_weights: no file {path}; expected {WEIGHTS_HELP}")
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)

    def position_embedding(self, rows: int, cols: int) -> Tensor:
        """pos_embed resized to rows x cols patches (DINOv2's interpolate_pos_encoding, offset 0.1)."""
        grid = int(math.sqrt(self.pos_embed.shape[1] - 1))
        if (rows, cols) == (grid, grid):
            return self.pos_embed
        patches = self.pos_embed[:, 1:].float().reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        scale = ((rows + 0.1) / grid, (cols + 0.1) / grid)
        patches = F.interpolate(patches, scale_factor=scale, mode="bicubic", antialias=False)
        patches = patches.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([self.pos_embed[:, :1], patches.to(self.pos_embed.dtype)], dim=1)

    def tokens(self, image: Tensor, layer: int = 11) -> Tensor:
        """(B, 1 + N, dim) output of block `layer` (0-based) for ImageNet-normalised images (B, 3, H, W)."""
        rows, cols = image.shape[-2] // self.patch_size, image.shape[-1] // self.patch_size
        x = self.patch_embed(image)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.position_embedding(rows, cols)
        for block in self.blocks[: layer + 1]:
            x = block(x)
        return x

    def feature_map(self, image: Tensor, layer: int = 11) -> Tensor:
        """(B, dim, rows, cols) patch tokens of images in [0, 1] (normalised here), the cls token dropped."""
        mean = image.new_tensor(IMAGENET_MEAN)[:, None, None]
        std = image.new_tensor(IMAGENET_STD)[:, None, None]
        rows, cols = image.shape[-2] // self.patch_size, image.shape[-1] // self.patch_size
        tokens = self.tokens((image - mean) / std, layer)[:, 1:]
        return tokens.transpose(1, 2).reshape(len(image), -1, rows, cols)
