"""The coarse feature pyramids GCM's configs use, each returning a list of maps, finest first, coarsest last.

* `student`  (R2D2_STU): the distilled student's raw map + its L2-normalised avg-pool pyramid (strides 1..16).
* `vgg19`    (COARSEVGG19): torchvision VGG-19 conv2_2, conv3_2, conv4_2, conv5_2, conv5_3, pre-ReLU (strides 2..16).
* `resnet18` (ResNet18): torchvision ResNet-18 relu, layer1, layer2, layer3 (+ layer3 again) (strides 2..16).
ImageNet weights come from local torchvision files (`load_imagenet`); nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from corrlab.models.gcm.student import student_pyramid, student_quad_l2net_confcfs

VGG19_TAPS = (7, 12, 21, 30, 32)  # features indices of conv2_2, conv3_2, conv4_2, conv5_2, conv5_3
TORCHVISION_FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "resnet18": "resnet18-f37072fd.pth"}


def read_torchvision_file(path: str | Path, key: str, arch: str) -> dict[str, Tensor]:
    """A torchvision ImageNet state dict; a missing file names the config key and where the file comes from."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{key}: no such file '{path}'. It must be torchvision's ImageNet {arch} state dict "
            f"({TORCHVISION_FILES[arch]}, from https://download.pytorch.org/models/{TORCHVISION_FILES[arch]}; "
            "corrlab downloads nothing)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{key}: '{path}' is not a torchvision state dict (a dict of tensors)")
    return state


class StudentPyramid(nn.Module):
    """R2D2_STU: the student trunk (`net`, weights from dstl_r2d2.pt) and its normalised avg-pool pyramid."""

    strides = (1, 2, 4, 8, 16, 16)

    def __init__(self) -> None:
        super().__init__()
        self.net = student_quad_l2net_confcfs()

    def raw(self, image: Tensor) -> Tensor:
        return self.net.features(image)

    def forward(self, image: Tensor) -> list[Tensor]:
        return student_pyramid(self.raw(image))


VGG19_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def vgg19_features(last: int = 36) -> nn.Sequential:
    """torchvision's `vgg19().features[: last + 1]` (same layers and indices), built without the classifier."""
    layers: list[nn.Module] = []
    channels = 3
    for spec in VGG19_LAYERS:
        if spec == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, spec, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = spec
    return nn.Sequential(*layers[: last + 1])


class CoarseVGG19(nn.Module):
    """COARSEVGG19: `vgg19().features[:33]`, tapped before the ReLUs that follow conv2_2 .. conv5_2, and at conv5_3."""

    strides = (2, 4, 8, 16, 16)

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg19_features(VGG19_TAPS[-1])
        for index in VGG19_TAPS[:-1]:
            self.features[index + 1].inplace = False  # keep the tapped pre-ReLU maps intact

    def load_imagenet(self, path: str | Path, key: str = "weights.backbone") -> None:
        """torchvision's vgg19-dcbb9e9d.pth: every key of a VGG-19 must be there (the classifier is checked, not kept)."""
        state = read_torchvision_file(path, key, "vgg19")
        features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        classifier = {k for k in state if k.startswith("classifier.")}
        expected_classifier = {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
        full = vgg19_features()  # all 37 layers, to check the file is a whole VGG-19
        missing = sorted(set(full.state_dict()) - set(features))
        others = set(state) - {f"features.{k}" for k in features} - classifier
        unexpected = sorted(set(features) - set(full.state_dict())) + sorted(others)
        if missing or unexpected or classifier != expected_classifier:
            raise ValueError(
                f"{key}: '{path}' is not torchvision's VGG-19 state dict (missing features {missing}, "
                f"unexpected {unexpected}, classifier keys {sorted(classifier)})"
            )
        self.features.load_state_dict({k: v for k, v in features.items() if k in self.features.state_dict()})

    def forward(self, image: Tensor) -> list[Tensor]:
        maps, x = [], image
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in VGG19_TAPS:
                maps.append(x)
        return maps


def resnet18() -> nn.Module:
    """torchvision's resnet18 (random weights).  torchvision is imported here, not with this module: it adds ~160 MB
    of resident memory to every process, and the student configs do not need it."""
    import torchvision

    return torchvision.models.resnet18(weights=None)


class ResNet18Taps(nn.Module):
    """ResNet18: torchvision resnet18's relu (s2), layer1 (s4), layer2 (s8), layer3 (s16), and layer3 again."""

    strides = (2, 4, 8, 16, 16)

    def __init__(self) -> None:
        super().__init__()
        net = resnet18()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3

    def load_imagenet(self, path: str | Path, key: str = "weights.backbone") -> None:
        """torchvision's resnet18-f37072fd.pth (checked strictly against the whole ResNet-18, layer4/fc dropped)."""
        full = resnet18()
        full.load_state_dict(read_torchvision_file(path, key, "resnet18"), strict=True)
        kept = {k: v for k, v in full.state_dict().items() if not k.startswith(("layer4.", "fc."))}
        self.load_state_dict(kept, strict=True)

    def forward(self, image: Tensor) -> list[Tensor]:
        relu = self.relu(self.bn1(self.conv1(image)))
        layer1 = self.layer1(self.maxpool(relu))
        layer2 = self.layer2(layer1)
        layer3 = self.layer3(layer2)
        return [relu, layer1, layer2, layer3, layer3]


BACKBONES = {"student": StudentPyramid, "vgg19": CoarseVGG19, "resnet18": ResNet18Taps}
