"""Build-on-first-use of the C++/CUDA backends through torch.utils.cpp_extension, with a cached build
and a fallback to the PyTorch reference when no compiler (or no GPU) is there.

Backend choice for an op call: CORRLAB_OPS=torch|cpp|cuda forces one (an error if it cannot be
built); otherwise tensors on a GPU use `cuda`, CPU tensors use `cpp`, and either falls back to
`torch` with a single warning when its extension cannot be built.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import time
import warnings
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import torch

CSRC = Path(__file__).resolve().parent / "csrc"
BACKENDS = ("torch", "cpp", "cuda")
CFLAGS = ("-O3", "-fopenmp", "-ffp-contract=off")  # no fused multiply-add: bit-equal to the torch references
CUDA_CFLAGS = ("-O3", "--fmad=false")
log = logging.getLogger(__name__)


class ExtensionUnavailableError(RuntimeError):
    """A compiled backend was forced but could not be built or loaded."""


def build_dir() -> Path:
    """Where compiled extensions are cached: $CORRLAB_OPS_CACHE or ~/.cache/corrlab/ops/<torch version>."""
    root = os.environ.get("CORRLAB_OPS_CACHE") or Path.home() / ".cache" / "corrlab" / "ops"
    path = Path(root) / f"torch{torch.__version__.split('+')[0]}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=None)
def load_extension(name: str, sources: tuple[str, ...], cuda: bool) -> ModuleType:
    """Compile (once, cached on disk) and import the extension made of csrc/<sources>.  A build that loaded
    once before is imported directly: torch's `load` would re-run ninja and its compiler checks (~0.1 s) and, without
    a CUDA toolkit on PATH, warn "No CUDA runtime is found" in every process."""
    paths = [str(CSRC / s) for s in sources]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ExtensionUnavailableError(f"sources of extension '{name}' not found: {missing}")
    target = build_dir() / f"{name}-{sources_hash(paths, cuda)}"
    if (target / LOADED).is_file():
        try:
            return import_built(name, target / f"{name}.so")
        except ImportError as error:  # removed or damaged since: build it again
            log.info("rebuilding extension '%s': its cached build does not import (%s)", name, error)
    return build_and_load(name, paths, cuda, target)


LOADED = "loaded-once"  # written into a build folder once torch's `load` has built and imported the extension there


def import_built(name: str, library: Path) -> ModuleType:
    """Import an extension module from its built library."""
    spec = importlib.util.spec_from_file_location(name, library)
    if spec is None:
        raise ImportError(f"no extension module at {library}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_and_load(name: str, paths: list[str], cuda: bool, target: Path) -> ModuleType:
    """torch's `load`: compile csrc/<sources> into `target` when they changed, then import the result."""
    from torch.utils.cpp_extension import load

    first_build = not any(target.glob("*.so"))
    if first_build:
        files = ", ".join(Path(p).name for p in paths)
        message = (
            f"corrlab: compiling the {'CUDA' if cuda else 'C++'} extension '{name}' ({files}) into {target}; "
            "this happens once per source version and takes about 1-3 minutes"
        )
        log.info(message)
        print(message, file=sys.stderr, flush=True)
    target.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    module = load(
        name=name,
        sources=paths,
        extra_cflags=list(CFLAGS),
        extra_ldflags=["-fopenmp"],
        extra_cuda_cflags=list(CUDA_CFLAGS) if cuda else None,
        with_cuda=cuda,
        build_directory=str(target),
        verbose=False,
    )
    if first_build:
        print(f"corrlab: extension '{name}' built in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    (target / LOADED).touch()
    return module


def sources_hash(paths: list[str], cuda: bool) -> str:
    """A short hash of the sources and flags: checkouts with different sources never share a build folder."""
    # the interpreter's ABI tag too: builds for another Python version never share a folder
    digest = hashlib.sha256(repr((CFLAGS, CUDA_CFLAGS if cuda else None, sys.implementation.cache_tag)).encode())
    for path in paths:
        digest.update(Path(path).read_bytes())
    for header in sorted(CSRC.glob("*.h")):  # headers are included by the sources
        digest.update(header.read_bytes())
    return digest.hexdigest()[:12]


def forced_backend() -> str | None:
    value = os.environ.get("CORRLAB_OPS")
    if value is not None and value not in BACKENDS:
        raise ValueError(f"CORRLAB_OPS must be one of {BACKENDS}, got '{value}'")
    return value


_warned: set[str] = set()


def compiled_or_none(name: str, sources: tuple[str, ...], cuda: bool, forced: bool) -> ModuleType | None:
    """The built extension, or None (after one warning) when it cannot be built and was not forced."""
    try:
        return load_extension(name, sources, cuda)
    except Exception as error:  # compiler missing, build error, CUDA toolkit absent ...
        if forced:
            raise ExtensionUnavailableError(
                f"CORRLAB_OPS forced extension '{name}' but it failed to build: {error}"
            ) from error
        if name not in _warned:
            _warned.add(name)
            warnings.warn(
                f"corrlab: extension '{name}' unavailable ({type(error).__name__}: {error}); using the PyTorch reference",
                stacklevel=3,
            )
        return None


def select_backend(device: torch.device) -> str:
    """The backend an op should use for tensors on `device` (before fallback)."""
    forced = forced_backend()
    if forced is not None:
        if forced == "cuda" and device.type != "cuda":
            raise ExtensionUnavailableError("CORRLAB_OPS=cuda but the tensors are not on a CUDA device")
        if forced == "cpp" and device.type != "cpu":
            raise ExtensionUnavailableError("CORRLAB_OPS=cpp but the tensors are on a CUDA device")
        return forced
    return "cuda" if device.type == "cuda" else "cpp"
