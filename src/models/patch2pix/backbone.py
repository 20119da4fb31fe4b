"""ResNet-34 truncated after layer3, with layer3's stride set to 1 (features at stride 8, 256 channels), returning
the feature pyramid Patch2Pix samples its local patches from.  The blocks are written here with torchvision's module
names (its state-dict keys), so no torchvision import (about 2 CPU s, most of corrlab's extra start-up) is needed."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KEPT_LAYERS = ("conv1", "bn1", "layer1", "layer2", "layer3")
DROPPED_PREFIXES = ("layer4.", "fc.")  # in torchvision's ImageNet file, unused here
RESNET34_BLOCKS = (3, 4, 6)  # blocks of layer1..3


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), 3x3 convolutions
    without bias; the shortcut is a 1x1 convolution + BatchNorm (`downsample`) when the shape changes."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


def resnet_layer(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(inplanes, planes, stride), *(BasicBlock(planes, planes) for _ in range(blocks - 1)))


class ResNet34Stride8(nn.Module):
    """torchvision's ResNet-34 definition up to layer3, whose first block has stride 1 instead of 2.

    `forward` returns the levels [image, relu(bn1(conv1)), layer1, layer2, layer3] at strides 1, 2, 4, 8, 8 with
    3, 64, 64, 128, 256 channels (the input image is level 0, as in the reference `forward_all`).
    """

    strides = (1, 2, 4, 8, 8)
    channels = (3, 64, 64, 128, 256)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = resnet_layer(64, 64, RESNET34_BLOCKS[0], stride=1)
        self.layer2 = resnet_layer(64, 128, RESNET34_BLOCKS[1], stride=2)
        self.layer3 = resnet_layer(128, 256, RESNET34_BLOCKS[2], stride=1)  # torchvision: stride 2

    def forward(self, image: Tensor) -> list[Tensor]:
        stem = self.relu(self.bn1(self.conv1(image)))
        level2 = self.layer1(self.maxpool(stem))
        level3 = self.layer2(level2)
        return [image, stem, level2, level3, self.layer3(level3)]

    def load_imagenet(self, path: str | Path) -> None:
        """Load torchvision's ImageNet ResNet-34 file (e.g. resnet34-333f7ec4.pth); layer4/fc are dropped, any
        other missing or unexpected key is an error."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"model.backbone.weights: no such file '{path}' (torchvision's resnet34 ImageNet .pth)"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        kept = {k: v for k, v in state.items() if not k.startswith(DROPPED_PREFIXES)}
        result = self.load_state_dict(kept, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise KeyError(
                f"{path} is not a torchvision ResNet-34 state dict: missing {result.missing_keys[:8]}, "
                f"unexpected {result.unexpected_keys[:8]}"
            )


def normalize_imagenet(images: Tensor) -> Tensor:
    """Images in [0, 1] -> ImageNet-normalised (what the backbone was trained on)."""
    mean = images.new_tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    return (images - mean) / std
