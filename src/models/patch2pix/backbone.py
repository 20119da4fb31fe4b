"""ResNet-34 truncated after layer3, with layer3's stride set to 1 (features at stride 8, 256 channels), returning
the feature pyramid Patch2Pix samples its local patches from."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import resnet34

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KEPT_LAYERS = ("conv1", "bn1", "layer1", "layer2", "layer3")
DROPPED_PREFIXES = ("layer4.", "fc.")  # in torchvision's ImageNet file, unused here


class ResNet34Stride8(nn.Module):
    """torchvision's ResNet-34 definition up to layer3, whose first block has stride 1 instead of 2.

    `forward` returns the levels [image, relu(bn1(conv1)), layer1, layer2, layer3] at strides 1, 2, 4, 8, 8 with
    3, 64, 64, 128, 256 channels (the input image is level 0, as in the reference `forward_all`).
    """

    strides = (1, 2, 4, 8, 8)
    channels = (3, 64, 64, 128, 256)

    def __init__(self) -> None:
        super().__init__()
        net = resnet34(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        first = self.layer3[0]
        first.conv1.stride = (1, 1)
        first.downsample[0].stride = (1, 1)

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
