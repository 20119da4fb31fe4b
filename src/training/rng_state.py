"""Per-rank random streams that survive a resume."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist


def collect_rng_states() -> dict[str, Any]:
    """python, numpy, torch (and CUDA) generator states, as types torch.load(weights_only=True) accepts."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of collect_rng_states."""
    random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in states["python"]))
    name, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def rank_seed(seed: int, rank: int) -> int:
    """A 32-bit seed for (seed, rank)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


class RNGStateCallback(L.Callback):
    """At train start every rank seeds python, numpy and torch with (seed, rank), so ranks draw
    different random numbers; when resuming, each rank instead gets back the states it had when the
    checkpoint was written.  Checkpoints hold every rank's states (key `rng_states`, a list by rank)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._loaded: list[dict[str, Any]] | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        states, self._loaded = self._loaded, None
        rank = trainer.global_rank
        if states is not None and rank < len(states):
            set_rng_states(states[rank])
            return
        seed = rank_seed(self.seed, rank)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        states = collect_rng_states()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, states)
            checkpoint["rng_states"] = gathered
        else:
            checkpoint["rng_states"] = [states]

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._loaded = checkpoint.get("rng_states")
