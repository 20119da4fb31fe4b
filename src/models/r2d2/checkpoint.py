"""Loading naver/r2d2's released `.pt` files without executing the `net` string they carry.

The files are legacy torch pickles `{'net': 'Quad_L2Net_ConfCFS()', 'state_dict': {...}}` (the fast
models also hold a `training_losses` defaultdict and a `git` log).  The reference runs `eval(net)`; here
the string is parsed with `ast` into a known architecture name and literal keyword arguments, and the
pickle is read with `torch.load(weights_only=True)` or, for the files with a defaultdict that torch's
safe unpickler rejects, an unpickler that allows only OrderedDict, defaultdict, list and tensor rebuilds.
These files are pickles all the same: load only ones from a trusted source (naver/r2d2's `models/`).
"""

from __future__ import annotations

import ast
import collections
import pickle
import types
from pathlib import Path
from typing import Any

import torch

from corrlab.models.r2d2.patchnet import ARCHITECTURES, R2D2Net

ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("__builtin__", "list"): list,
    ("builtins", "list"): list,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a released R2D2 checkpoint needs; anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an R2D2 checkpoint")
        return ALLOWED_GLOBALS[(module, name)]


def _restricted_load(file, **kwargs) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


_RESTRICTED_PICKLE = types.SimpleNamespace(__name__="r2d2_restricted_pickle", Unpickler=_RestrictedUnpickler)
_RESTRICTED_PICKLE.load = _restricted_load


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of a released R2D2 file (on the CPU), read without running arbitrary code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"R2D2 weights not found: {path} (naver/r2d2 `models/*.pt`)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED_PICKLE)
    if not isinstance(checkpoint, dict) or "net" not in checkpoint or "state_dict" not in checkpoint:
        keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path} is not a naver/r2d2 checkpoint: expected keys 'net' and 'state_dict', got {keys}")
    return checkpoint


def parse_net_string(net: str) -> tuple[str, dict[str, Any]]:
    """`'Quad_L2Net_ConfCFS(mchan=6)'` -> ('Quad_L2Net_ConfCFS', {'mchan': 6}); literals only, known names only."""
    try:
        call = ast.parse(net.strip(), mode="eval").body
    except SyntaxError as error:
        raise ValueError(f"cannot parse the checkpoint's net string {net!r}") from error
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.args:
        raise ValueError(f"net string {net!r} is not `Name(key=literal, ...)`")
    if call.func.id not in ARCHITECTURES:
        raise ValueError(f"unknown R2D2 architecture {call.func.id!r} in {net!r}; known: {sorted(ARCHITECTURES)}")
    kwargs = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise ValueError(f"net string {net!r} uses ** arguments")
        try:
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError as error:
            raise ValueError(f"argument {keyword.arg} of {net!r} is not a literal") from error
    return call.func.id, kwargs


def build_from_net_string(net: str) -> R2D2Net:
    """The architecture a checkpoint's `net` string names, built from our table (never `eval`)."""
    name, kwargs = parse_net_string(net)
    try:
        return ARCHITECTURES[name](**kwargs)
    except TypeError as error:
        raise ValueError(f"bad arguments in net string {net!r}: {error}") from error


def load_official(path: str | Path) -> R2D2Net:
    """The network of a released naver/r2d2 `.pt` file, weights loaded strictly (`module.` prefix stripped), in eval mode."""
    checkpoint = read_checkpoint(path)
    net = build_from_net_string(checkpoint["net"])
    state = {key.removeprefix("module."): value for key, value in checkpoint["state_dict"].items()}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit {checkpoint['net']}: {error}") from error
    return net.eval()
