"""Frozen ImageNet VGG-16 feature pyramid of GLU-Net: levels split after the first ReLU and at each max-pool
(level_0: 64 ch full res, level_1: 64 ch 1/2, level_2: 128 ch 1/4, level_3: 256 ch 1/8, level_4: 512 ch 1/16)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.vgg import cfgs, make_layers

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
NUM_LEVELS = 5


def load_vgg16_features(path: str | Path, key: str) -> dict[str, Tensor]:
    """The `features.*` tensors of a torchvision VGG-16 ImageNet checkpoint; a clear error names the config key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG-16 ImageNet weights not found at '{path}' (config key `{key}`). Download torchvision's file "
            f"{VGG16_URL} on a machine with internet access and point `{key}` at it."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    if not features:
        raise ValueError(f"'{path}' (config key `{key}`) has no `features.*` tensors: not a torchvision VGG-16 file")
    return features


class VGGPyramid(nn.Module):
    def __init__(self):
        super().__init__()
        source = make_layers(cfgs["D"], batch_norm=False)  # VGG-16's `features` (same indices)
        self.torchvision_index: dict[str, str] = {}  # our parameter prefix -> torchvision `features.N`
        block: list[nn.Module] = []
        level, seen_relu = 0, False
        for index, layer in enumerate(source.children()):
            if isinstance(layer, nn.Conv2d):
                self.torchvision_index[f"level_{level}.{len(block)}"] = f"features.{index}"
            block.append(layer)
            if (isinstance(layer, nn.ReLU) and not seen_relu) or isinstance(layer, nn.MaxPool2d):
                seen_relu = True
                self.add_module(f"level_{level}", nn.Sequential(*block))
                block, level = [], level + 1
                if level == NUM_LEVELS:
                    break
        self.requires_grad_(False)

    def load_imagenet(self, path: str | Path, key: str) -> None:
        features = load_vgg16_features(path, key)
        state = {}
        for ours, theirs in self.torchvision_index.items():
            state[f"{ours}.weight"], state[f"{ours}.bias"] = features[f"{theirs}.weight"], features[f"{theirs}.bias"]
        self.load_state_dict(state, strict=True)

    def forward(self, x: Tensor, levels: int = NUM_LEVELS) -> list[Tensor]:
        """The outputs of the first `levels` levels."""
        outputs = []
        for i in range(levels):
            x = getattr(self, f"level_{i}")(x)
            outputs.append(x)
        return outputs
