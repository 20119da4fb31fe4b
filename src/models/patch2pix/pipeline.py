"""Steps shared by the Patch2Pix and NCNet matchers: the network frame of a batch, per-pair coarse proposals and
the way back to batch pixels."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor

from corrlab.geometry.scaling import to_original
from corrlab.models.patch2pix.coarse_matches import matches_both_ways, mutual_matches
from corrlab.models.patch2pix.input_size import to_network_frame
from corrlab.models.patch2pix.network import Patch2PixNet
from corrlab.models.patch2pix.official import load_official_ncnet
from corrlab.safe_loading import torch_load

log = logging.getLogger(__name__)


def network_frame(
    batch: dict, max_side: int | None, multiple: int, resample: str = "torch_bicubic"
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """image0, image1 resized for the network and their scales (network / batch pixels).  Warns when images the
    datamodule already resized are resized again (the reference resizes once: see docs/evaluation.md)."""
    images0, scale0 = to_network_frame(batch["image0"], max_side, multiple, resample)
    images1, scale1 = to_network_frame(batch["image1"], max_side, multiple, resample)
    resized_before = any(key in batch and not bool((batch[key] == 1).all()) for key in ("scale0", "scale1"))
    if resized_before and not (bool((scale0 == 1).all()) and bool((scale1 == 1).all())):
        warnings.warn(
            f"images resized twice: by the datamodule to {tuple(batch['image0'].shape[-2:])}, then to "
            f"{tuple(images0.shape[-2:])} for the network; resize once with the datamodule's resize set to "
            f"{{mode: long, size: {max_side}, divisible_by: {multiple}, upscale: false, interpolation: pil_bicubic}} "
            "(or give it no resize)",
            stacklevel=2,
        )
    return images0, images1, scale0, scale1


def coarse_proposals(
    net: Patch2PixNet, levels0: list[Tensor], levels1: list[Tensor], threshold: float
) -> list[tuple[Tensor, Tensor]]:
    """Per pair: mutual coarse matches (N, 4) in network pixels and their scores, with the reference's fallbacks."""
    corr, window = net.correlate(levels0[-1], levels1[-1])
    rows, scores = matches_both_ways(corr, window, net.pool, net.stride)
    return [mutual_matches(rows[b], scores[b], threshold) for b in range(len(rows))]


def to_batch_pixels(matches: Tensor, scale0: Tensor, scale1: Tensor) -> tuple[Tensor, Tensor]:
    """Network-frame matches (N, 4) -> kpts0, kpts1 in batch pixels (pixel-centre convention; untouched when the
    network saw the batch images unresized)."""
    kpts0, kpts1 = matches[:, :2], matches[:, 2:]
    if not bool((scale0 == 1).all()):
        kpts0 = to_original(kpts0, scale0)
    if not bool((scale1 == 1).all()):
        kpts1 = to_original(kpts1, scale1)
    return kpts0.contiguous(), kpts1.contiguous()


def warn_random_backbone(method: str) -> None:
    """The loud warning for training on a randomly initialised backbone."""
    message = (
        f"{method} is training with a RANDOMLY INITIALISED backbone: the paper freezes an ImageNet ResNet-34. "
        "Set model.backbone.weights=<torchvision resnet34 .pth> (Patch2Pix: or model.ncnet_weights=<ncn_ivd_5ep.pth>)."
    )
    log.warning(message)
    warnings.warn(message, stacklevel=3)


def freeze(module: torch.nn.Module) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def load_ncnet_initialisation(net: Patch2PixNet, path: str | Path) -> None:
    """Backbone + NCNet weights from ncn_ivd_5ep.pth (official format) or from a corrlab NCNet checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.ncnet_weights: no such file '{path}' (official ncn_ivd_5ep.pth or a corrlab NCNet .ckpt)"
        )
    content = torch_load(path, "model.ncnet_weights") if path.suffix == ".ckpt" else None
    if content is None or "pytorch-lightning_version" not in content:
        load_official_ncnet(net, path)
        return
    prefix = "net."
    state = {k[len(prefix) :]: v for k, v in content["state_dict"].items() if k.startswith(prefix)}
    wanted = {k for k in net.state_dict() if k.startswith(("backbone.", "consensus."))}
    missing = sorted(wanted - set(state))
    if missing:
        raise KeyError(f"{path}: not a corrlab NCNet checkpoint, missing {missing[:8]}")
    net.load_state_dict({k: state[k] for k in wanted}, strict=False)
    log.info("loaded backbone + NCNet from %s", path)
