"""Where weights came from (file, sha256 prefix, format) and which files a config names, hashed by content."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SHA_DIGITS = 16


def sha256_prefix(path: str | Path, digits: int = SHA_DIGITS) -> str:
    """The first `digits` hex digits of the sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:digits]


def weights_record(path: str | Path, format: str, role: str | None = None) -> dict[str, str]:
    """One provenance record: {role, file, sha256, format} (role: e.g. 'student', 'model.ncnet_weights')."""
    record = {"file": str(Path(path).resolve()), "sha256": sha256_prefix(path), "format": format}
    return {"role": role, **record} if role else record


def weight_sources(weights: Any) -> dict[str, str]:
    """`weights=` as {role: path}: one path is role 'model'; a mapping (weights.student=...) keeps its keys."""
    if weights is None:
        return {}
    if isinstance(weights, Mapping):
        sources = {str(role): str(path) for role, path in weights.items() if path is not None}
        if not sources:
            raise ValueError("weights: the mapping names no file (e.g. weights.student=<path> weights.teacher=<path>)")
        return sources
    return {"model": str(weights)}


def config_files(config: Any, prefix: str = "") -> dict[str, str]:
    """{dotted key: sha256 prefix} of every string value of a (nested) config that names an existing file,
    so a fingerprint changes when a weight or index file named by the config changes content."""
    items = config.items() if isinstance(config, Mapping) else enumerate(config) if isinstance(config, list) else ()
    out: dict[str, str] = {}
    for key, value in items:
        dotted = f"{prefix}{key}"
        if isinstance(value, (Mapping, list)):
            out.update(config_files(value, f"{dotted}."))
        elif isinstance(value, str) and value and Path(value).is_file():
            out[dotted] = sha256_prefix(value)
    return out
