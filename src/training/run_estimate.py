"""One line at the start of training: parameter count and activation memory per batch."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class SavedTensorMeter:
    """Context that sums the bytes of the distinct tensor storages autograd saves for backward, i.e.
    the activation memory of a forward pass (parameters excluded)."""

    def __init__(self, exclude: list[torch.Tensor]) -> None:
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self._seen: set[int] = set()
        self.bytes = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in self._seen and key not in self._exclude:
            self._seen.add(key)
            self.bytes += storage.nbytes()
        return tensor

    def __enter__(self) -> SavedTensorMeter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)


class RunEstimate(L.Callback):
    """Measures the first training batch's activations (tensors saved for backward, from its forward
    pass to its backward) and logs, once, e.g. `model: 3.5 K parameters (3.5 K trainable, 13.7 KiB);
    activations 2.1 MiB per batch of 2 pairs`."""

    def __init__(self) -> None:
        self._meter: SavedTensorMeter | None = None
        self._pairs = 0
        self._done = False

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._done:
            return
        self._pairs = len(batch["name"]) if isinstance(batch, dict) and "name" in batch else 0
        self._meter = SavedTensorMeter(list(pl_module.parameters()))
        self._meter.__enter__()

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        self._finish(pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._finish(pl_module)

    def _finish(self, pl_module: L.LightningModule) -> None:
        if self._meter is None:
            return
        meter, self._meter = self._meter, None
        meter.__exit__(None, None, None)
        self._done = True
        rank_zero_info(estimate_line(pl_module, meter.bytes, self._pairs))


def count(n: int) -> str:
    """3500 -> '3.5 K'."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def estimate_line(module: torch.nn.Module, activation_bytes: int, pairs: int) -> str:
    """The one-line summary of parameters and measured activation memory."""
    params = list(module.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    weights = sum(p.numel() * p.element_size() for p in params)
    return (
        f"model: {count(total)} parameters ({count(trainable)} trainable, {format_bytes(weights)}); "
        f"activations {format_bytes(activation_bytes)} per batch of {pairs} pairs (measured on the first step)"
    )
