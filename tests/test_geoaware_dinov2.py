"""DinoV2 loader: the official checkpoint key format loads strictly; tokens follow the ViT equations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from corrlab.models.geoaware.dinov2 import DinoV2


def official_state(dim: int = 16, depth: int = 2, grid: int = 4) -> dict[str, torch.Tensor]:
    """A random state_dict named and shaped as dinov2_vitb14_pretrain.pth (hub DinoVisionTransformer)."""
    g = torch.Generator().manual_seed(0)
    shapes = {
        "cls_token": (1, 1, dim),
        "pos_embed": (1, grid * grid + 1, dim),
        "mask_token": (1, dim),
        "patch_embed.proj.weight": (dim, 3, 14, 14),
        "patch_embed.proj.bias": (dim,),
        "norm.weight": (dim,),
        "norm.bias": (dim,),
    }
    for i in range(depth):
        for name, shape in {
            "norm1.weight": (dim,), "norm1.bias": (dim,), "attn.qkv.weight": (3 * dim, dim), "attn.qkv.bias": (3 * dim,),
            "attn.proj.weight": (dim, dim), "attn.proj.bias": (dim,), "ls1.gamma": (dim,), "norm2.weight": (dim,),
            "norm2.bias": (dim,), "mlp.fc1.weight": (4 * dim, dim), "mlp.fc1.bias": (4 * dim,),
            "mlp.fc2.weight": (dim, 4 * dim), "mlp.fc2.bias": (dim,), "ls2.gamma": (dim,),
        }.items():  # fmt: skip
            shapes[f"blocks.{i}.{name}"] = shape
    return {k: torch.randn(s, generator=g) * 0.1 for k, s in shapes.items()}


def test_official_format_loads_strictly_and_tokens_follow_the_equations(tmp_path):
    state = official_state()
    torch.save(state, tmp_path / "dinov2_vitb14_pretrain.pth")
    model = DinoV2(dim=16, depth=2, heads=2, pos_grid=4).eval()
    model.load_official(tmp_path / "dinov2_vitb14_pretrain.pth")
    image = torch.randn(1, 3, 56, 56)  # 4 x 4 patches: the stored position grid, no interpolation
    x = F.conv2d(image, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=14)
    x = torch.cat([state["cls_token"], x.flatten(2).transpose(1, 2)], 1) + state["pos_embed"]
    p = "blocks.0."
    h = F.layer_norm(x, (16,), state[p + "norm1.weight"], state[p + "norm1.bias"], eps=1e-6)
    q, k, v = (h @ state[p + "attn.qkv.weight"].T + state[p + "attn.qkv.bias"]).split(16, dim=-1)
    heads = [
        torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / 8**0.5, -1) @ v[..., s]
        for s in (slice(0, 8), slice(8, 16))
    ]
    x = (
        x
        + (torch.cat(heads, -1) @ state[p + "attn.proj.weight"].T + state[p + "attn.proj.bias"])
        * state[p + "ls1.gamma"]
    )
    h = F.layer_norm(x, (16,), state[p + "norm2.weight"], state[p + "norm2.bias"], eps=1e-6)
    h = F.gelu(h @ state[p + "mlp.fc1.weight"].T + state[p + "mlp.fc1.bias"]) @ state[p + "mlp.fc2.weight"].T
    x = x + (h + state[p + "mlp.fc2.bias"]) * state[p + "ls2.gamma"]
    torch.testing.assert_close(model.tokens(image, layer=0), x, atol=1e-5, rtol=1e-4)
    assert model.feature_map(torch.rand(1, 3, 84, 84), layer=1).shape == (1, 16, 6, 6)  # interpolated positions


def test_key_mismatch_and_missing_file_fail_clearly(tmp_path):
    state = official_state()
    state.pop("mask_token")
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(RuntimeError, match="mask_token"):
        DinoV2(dim=16, depth=2, heads=2, pos_grid=4).load_official(tmp_path / "partial.pth")
    with pytest.raises(FileNotFoundError, match="model.features.dino_weights.*dinov2_vitb14_pretrain.pth"):
        DinoV2(dim=16, depth=2, heads=2, pos_grid=4).load_official(tmp_path / "absent.pth")
