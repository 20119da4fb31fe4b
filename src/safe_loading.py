"""Loading files that may hold pickles without running code from them.

- Checkpoints: torch.load(weights_only=True) only; a file that needs other pickled objects is refused,
  and torch's advice to retry with weights_only=False (which runs the file's code) is never passed on.
- Official index files that store pickled numpy object arrays (D2-Net / LoFTR scene-info .npz, ETH3D
  pair lists): unpickled by a restricted unpickler that builds only numpy arrays, scalars and builtin
  containers; any other global (e.g. os.system in a crafted file) is refused naming the file.
"""

from __future__ import annotations

import io
import pickle
import re
import traceback
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corrlab.datamodules.errors import UnreadableFileError

SAFE_GLOBALS = frozenset(
    {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    }
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # _codecs.encode: bytes in protocol-2 pickles
    | {("builtins", name) for name in ("set", "frozenset", "slice", "complex", "bytearray")}
)


class UnsafeFileError(UnreadableFileError):
    """A file needs unpickling objects that could run code; corrlab refuses to load it."""


NAMESPACE_GLOBALS = frozenset({("argparse", "Namespace"), ("copyreg", "__newobj__")})  # Patch2Pix's pair records


class RestrictedUnpickler(pickle.Unpickler):
    """Builds only the allowed globals (numpy arrays, dtypes, scalars, builtin values); any other is refused."""

    def __init__(self, handle: io.BufferedIOBase, allowed: frozenset = SAFE_GLOBALS, **kwargs: Any) -> None:
        super().__init__(handle, **kwargs)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to unpickle {module}.{name} (only numpy arrays and builtin values)")


def restricted_unpickle(handle: io.BufferedIOBase, path: str | Path, extra: frozenset = frozenset()) -> Any:
    """The pickled value in `handle` (Python 3 or 2 pickles), or UnsafeFileError naming `path`."""
    start = handle.tell()
    try:
        try:
            return RestrictedUnpickler(handle, SAFE_GLOBALS | extra).load()
        except UnicodeDecodeError:  # written by Python 2
            handle.seek(start)
            return RestrictedUnpickler(handle, SAFE_GLOBALS | extra, encoding="latin1").load()
    except pickle.UnpicklingError as error:
        if "refused to unpickle" in str(error):
            raise UnsafeFileError(path, f"{error}; it was not loaded") from None
        raise


def load_pickle(path: str | Path) -> Any:
    """A pickle file of numpy arrays and builtin values, without running code from it."""
    with open(path, "rb") as handle:
        return restricted_unpickle(handle, path)


def read_npy(data: bytes, path: str | Path, extra: frozenset = frozenset()) -> np.ndarray:
    """One .npy file's bytes: plain arrays by numpy without pickles, object arrays by the restricted unpickler
    (`extra`: further globals it may build)."""
    buffer = io.BytesIO(data)
    version = np.lib.format.read_magic(buffer)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    _, _, dtype = read_header(buffer)
    if dtype.hasobject:
        return restricted_unpickle(buffer, path, extra)
    buffer.seek(0)
    return np.lib.format.read_array(buffer, allow_pickle=False)


def load_npz(path: str | Path, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The listed entries (all when None) of an .npz archive, object arrays included, without running code."""
    with zipfile.ZipFile(path) as archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        wanted = list(members) if keys is None else [k for k in keys if k in members]
        return {key: read_npy(archive.read(members[key]), path) for key in wanted}


def npz_keys(path: str | Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [name.removesuffix(".npy") for name in archive.namelist()]


def torch_failure_reason(error: BaseException) -> str:
    """What torch.load reported, without its advice to retry with weights_only=False."""
    text = str(error)
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", text, flags=re.S)
    if found:
        return " ".join(found.group(1).split())
    return text.split(". ")[0].split("\n")[0]


def refused_globals(path: str | Path) -> list[str]:
    """The pickled globals torch's weights_only loader would refuse ([] when none or unreadable)."""
    import torch

    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError, OSError, pickle.UnpicklingError, EOFError):
        return []


def checkpoint_load_error(path: str | Path, option: str, error: BaseException) -> UnreadableFileError:
    """The error for a file torch.load(weights_only=True) could not read: unsafe content or not a checkpoint."""
    unsafe = refused_globals(path)
    if unsafe:
        return UnsafeFileError(
            path,
            f"{option}: it needs unpickling {', '.join(unsafe[:5])}, which can run code, so corrlab does not load "
            "it (checkpoints load with torch.load(weights_only=True)); save its state_dict from a trusted copy",
        )
    return UnreadableFileError(
        path, f"{option}: not a valid checkpoint file (torch.load: {torch_failure_reason(error)})"
    )


TORCH_LOAD_FILES = ("torch/serialization.py", "torch/_weights_only_unpickler.py")


def is_torch_load_failure(error: BaseException) -> bool:
    """An error raised inside torch.load, i.e. a file that is not a readable checkpoint (not a later key or
    shape mismatch). Arbitrary bytes fail in many ways there (IndexError, KeyError, struct.error, ...)."""
    if isinstance(error, (pickle.UnpicklingError, EOFError)):
        return True
    if isinstance(error, RuntimeError) and "PytorchStreamReader" in str(error):
        return True
    frames = traceback.walk_tb(error.__traceback__)
    return any(frame.f_code.co_filename.replace("\\", "/").endswith(TORCH_LOAD_FILES) for frame, _ in frames)


def torch_load(path: str | Path, option: str, safe_globals: Sequence[Any] = ()) -> Any:
    """torch.load(weights_only=True) on the CPU; a failure names the file and the config option."""
    import torch  # here, so that reading index files (and `corrlab-data`) does not import torch

    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        if is_torch_load_failure(error):
            raise checkpoint_load_error(path, option, error) from None
        raise
