"""Official GLU-Net / GLU-Net-GOCor / PWC-Net / PWC-Net-GOCor checkpoints (GOCor and DenseMatching model zoos):
their `state_dict` key names mapped onto ours, loaded strictly."""

from __future__ import annotations

import re
from pathlib import Path

from torch import Tensor, nn

from corrlab.safe_loading import torch_load

PREDICTORS = r"(label_map_predictor|spatial_weight_predictor|target_mask_predictor)"
GLUNET_RULES = [
    (rf"^corr\.corr_module\.filter_optimizer\.{PREDICTORS}\.", r"global_corr.filter_optimizer.predictors.\1."),
    (r"^corr\.corr_module\.", "global_corr."),
    (rf"^local_corr\.filter_optimizer\.{PREDICTORS}\.", r"local_corr.filter_optimizer.predictors.\1."),
    (r"^dc_conv", "refine3.dc_conv"),
    (r"^l_dc_conv", "refine1.l_dc_conv"),
]
PWCNET_RULES = [
    (r"^conv(\d)_(\d)\.", r"decoder\1.conv_\2."),
    (r"^predict_flow(\d)\.", r"decoder\1.predict_flow."),
    (r"^dc_conv", "context.dc_conv"),
    (rf"^(local_corr_\d)\.filter_optimizer\.{PREDICTORS}\.", r"\1.filter_optimizer.predictors.\2."),
]


def map_keys(state: dict[str, Tensor], rules: list[tuple[str, str]]) -> dict[str, Tensor]:
    mapped = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            key, count = re.subn(pattern, replacement, key)
            if count:
                break
        mapped[key] = value
    return mapped


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The state dict of a model-zoo file: either {'state_dict': ...} or the state dict itself."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official checkpoint not found: '{path}'")
    checkpoint = torch_load(path, "weights")  # refuses (naming the file) one that would run pickled code
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"'{path}' does not hold a GLU-Net / PWC-Net state_dict")
    return state


def load_official_weights(net: nn.Module, path: str | Path, rules: list[tuple[str, str]]) -> None:
    """Map the reference key names and load strictly (missing or unexpected keys raise, naming them)."""
    state = map_keys(read_checkpoint(path), rules)
    result = net.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(
            f"'{path}' does not match {type(net).__name__}: missing {result.missing_keys[:8]} "
            f"({len(result.missing_keys)}), unexpected {result.unexpected_keys[:8]} ({len(result.unexpected_keys)})"
        )
