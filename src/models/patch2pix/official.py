"""The authors' checkpoint formats and their mapping onto Patch2PixNet.

patch2pix_pretrained.pth: {'state_dict', 'backbone': 'ResNet34', 'feat_idx': [0, 1, 2, 3], 'change_stride': True,
'regressor_config': argparse.Namespace(conv_dims, conv_kers, conv_strs, fc_dims, feat_comb, psize, pshift, panc,
shared, feat_dim), ...} (training files add last_epoch, best_vals, optim, lr_scheduler).
ncn_ivd_5ep.pth: the backbone + NCNet part, as a bare state dict or {'state_dict': ...}.
State-dict keys: extract.* (ResNet-34 incl. the unused layer4), ncn.conv.{0,2}.{weight,bias} with Conv4d weights
stored as (S, Co, Ci, S, S, S), regress_mid.* / regress_fine.* (conv.{0..3}, fc.{0..6}).
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from corrlab.models.patch2pix.consensus import from_reference_layout, to_reference_layout
from corrlab.models.patch2pix.network import Patch2PixNet

UNUSED_PREFIXES = ("extract.layer4.",)  # the reference keeps ResNet's layer4 without ever running it


class OfficialCheckpointError(ValueError):
    """An official file does not have the expected format or does not fit the configured network."""


def allowed_globals() -> list:
    """What the official files pickle besides tensors: argparse.Namespace (regressor_config) and numpy float scalars
    (best_vals), under numpy 1 and numpy 2 names."""
    scalar = np._core.multiarray.scalar
    dtypes = [type(np.dtype(name)) for name in ("float64", "float32", "int64", "int32", "bool")]
    return [Namespace, scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]


def read_official(path: str | Path) -> dict:
    """torch.load of an official file with weights_only=True (only the globals above are unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such official checkpoint '{path}'")
    with torch.serialization.safe_globals(allowed_globals()):
        content = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(content, dict):
        raise OfficialCheckpointError(f"{path}: expected a dict, got {type(content).__name__}")
    return content


def from_official_keys(state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """Rename official keys to Patch2PixNet's (extract. -> backbone., ncn. -> consensus. with the Conv4d weight
    re-laid out); layer4 is dropped; any other key is an error naming it."""
    converted, unknown = {}, []
    for key, value in state.items():
        if key.startswith(UNUSED_PREFIXES):
            continue
        if key.startswith("extract."):
            converted["backbone." + key[len("extract.") :]] = value
        elif key.startswith("ncn.conv."):
            name = "consensus." + key[len("ncn.") :]
            converted[name] = from_reference_layout(value) if key.endswith(".weight") else value
        elif key.startswith(("regress_mid.", "regress_fine.")):
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise OfficialCheckpointError(f"{source}: unexpected keys {unknown[:10]}")
    return converted


def to_official_keys(net: Patch2PixNet) -> dict[str, Tensor]:
    """The network's weights under the official key names and layouts (layer4 excluded)."""
    official = {}
    for key, value in net.state_dict().items():
        if key.startswith("backbone."):
            official["extract." + key[len("backbone.") :]] = value
        elif key.startswith("consensus."):
            official["ncn." + key[len("consensus.") :]] = (
                to_reference_layout(value) if key.endswith(".weight") else value
            )
        else:
            official[key] = value
    return official


def released_regressor_config(anchors: int = 8) -> Namespace:
    """The `regressor_config` the released patch2pix_pretrained.pth records (the authors' training settings:
    `anchors` is their `panc`, 8 in training, 1 at inference), the single place benches and tests take it from."""
    return Namespace(
        conv_dims=[512, 512],
        conv_kers=[3, 3],
        conv_strs=[2, 1],
        fc_dims=[512, 256],
        feat_comb="pre",
        psize=[16, 16],
        pshift=8,
        panc=anchors,
        shared=False,
        feat_dim=259,
    )


def check_patch2pix_config(content: dict, net: Patch2PixNet, source: str) -> None:
    """The architecture recorded in patch2pix_pretrained.pth must be the configured one."""
    missing = [
        k for k in ("state_dict", "backbone", "feat_idx", "change_stride", "regressor_config") if k not in content
    ]
    if missing:
        raise OfficialCheckpointError(f"{source}: not a Patch2Pix checkpoint, missing entries {missing}")
    config = content["regressor_config"]
    regressor = net.regress_mid
    if regressor is None:
        raise OfficialCheckpointError(f"{source}: a Patch2Pix checkpoint needs a network with regressors")
    expected = {
        "backbone": ("ResNet34", content["backbone"]),
        "change_stride": (True, content["change_stride"]),
        "feat_idx": (list(net.patch_levels), list(content["feat_idx"])),
        "feat_comb": ("pre", getattr(config, "feat_comb", None)),
        "shared": (False, getattr(config, "shared", None)),
        "psize": ([net.psize, net.psize], list(getattr(config, "psize", []))),
    }
    wrong = {k: f"file {found!r}, configured {want!r}" for k, (want, found) in expected.items() if want != found}
    if wrong:
        raise OfficialCheckpointError(f"{source}: architecture differs from the configured network: {wrong}")


def check_keys(state: dict[str, Tensor], expected: set[str], ignored: tuple[str, ...], source: str) -> None:
    """Official key names present in `state` must be exactly `expected` (plus keys starting with `ignored`)."""
    keys = {k for k in state if not k.startswith(ignored)}
    missing, unexpected = sorted(expected - keys), sorted(keys - expected)
    if missing or unexpected:
        raise OfficialCheckpointError(f"{source}: missing keys {missing[:10]}, unexpected keys {unexpected[:10]}")


def load_official_patch2pix(net: Patch2PixNet, path: str | Path) -> None:
    """Load patch2pix_pretrained.pth (strict: every network weight must be in the file, nothing else)."""
    content = read_official(path)
    check_patch2pix_config(content, net, str(path))
    check_keys(content["state_dict"], set(to_official_keys(net)), UNUSED_PREFIXES, str(path))
    net.load_state_dict(from_official_keys(content["state_dict"], str(path)), strict=True)


def load_official_ncnet(net: Patch2PixNet, path: str | Path) -> None:
    """Load the backbone + NCNet of ncn_ivd_5ep.pth (or of a Patch2Pix file, whose regressors are then ignored);
    the network's regressors, if any, are left as they are."""
    content = read_official(path)
    state = content["state_dict"] if "state_dict" in content else content
    expected = {k for k in to_official_keys(net) if not k.startswith("regress_")}
    check_keys(state, expected, (*UNUSED_PREFIXES, "regress_"), str(path))
    converted = {k: v for k, v in from_official_keys(state, str(path)).items() if not k.startswith("regress_")}
    net.load_state_dict(converted, strict=False)
