"""MatchingModule: the LightningModule contract every method implements (losses, match, transfer, weights)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.benchmarks.base import Benchmark
from corrlab.matches import Matches
from corrlab.pipeline.provenance import weights_record


class MatchingModule(L.LightningModule):
    """Base of every method.

    Subclasses implement `match(batch) -> Matches` and, when trainable, `compute_losses(batch)`
    returning a dict with `total` plus named components (all logged).  Validation runs the
    datamodule's benchmark for the val split through `match` and logs `val/<metric>` plus
    `val/score` (the datamodule's `main_metric`, higher is better) for checkpointing.  `requires_weights` says whether
    evaluating the module without loaded weights is meaningless (eval.py refuses that).
    `weight_roles`: the roles of a module loading several official files (eval.py `weights.<role>=<path>`;
    empty: one file).  Whatever loads weights calls `note_weights`, so `loaded_weights` says what was loaded.
    `mixed_precision`: evaluation may run under autocast (eval.py precision=bf16-mixed|16-mixed).
    """

    requires_weights = True
    weight_roles: tuple[str, ...] = ()
    mixed_precision = False

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.val_benchmark: Benchmark | None = None
        self.loaded_weights: list[dict[str, str]] = []

    def note_weights(self, path: str | Path, format: str, role: str | None = None) -> None:
        """Record a loaded weight file (file, sha256 prefix, format) for summary.json."""
        self.loaded_weights.append(weights_record(path, format, role))

    # --- methods subclasses implement -------------------------------------------------------
    def match(self, batch: dict) -> Matches:
        raise NotImplementedError(f"{type(self).__name__} does not implement match()")

    def compute_losses(self, batch: dict) -> dict[str, Tensor]:
        raise NotImplementedError(
            f"{type(self).__name__} is training-free: evaluate it with eval.py instead of training it"
        )

    def load_official(self, path: str | Path | dict[str, Path]) -> None:
        """Load the authors' released checkpoint (strict: missing or unexpected keys fail); a {role: path}
        mapping for modules with `weight_roles`.  Implementations call `note_weights` for each file."""
        raise NotImplementedError(f"{type(self).__name__} has no official checkpoint format")

    # --- query-point transfer ---------------------------------------------------------------
    def transfer(self, batch: dict, query_kpts0: Tensor) -> Tensor:
        """Image-1 positions (B, Q, 2) of query points (B, Q, 2) of image 0, in batch pixels.

        Dense methods read their warp (bilinear); sparse methods take the match whose image-0 point
        is nearest to the query and shift by its displacement.  NaN where a pair has no match.
        """
        matches = self.match(batch)
        if matches.warp is not None:
            return sample_warp(matches.warp, query_kpts0)
        out = torch.full_like(query_kpts0, float("nan"))
        for b in range(query_kpts0.shape[0]):
            pair = matches.pair(b)
            if len(pair) == 0:
                continue
            nearest = torch.cdist(query_kpts0[b].to(pair.kpts0), pair.kpts0).argmin(dim=1)
            out[b] = (query_kpts0[b] + (pair.kpts1[nearest] - pair.kpts0[nearest])).to(out)
        return out

    # --- Lightning hooks --------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage in ("fit", "validate") and datamodule is not None and hasattr(datamodule, "make_benchmark"):
            self.val_benchmark = datamodule.make_benchmark("val")

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        losses = self.compute_losses(batch)
        if "total" not in losses:
            raise KeyError(f"{type(self).__name__}.compute_losses must return a 'total' entry, got {sorted(losses)}")
        batch_size = batch["image0"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=batch_size, prog_bar=False)
        self.log("loss", losses["total"].detach(), batch_size=batch_size, prog_bar=True, logger=False)
        return losses["total"]

    def validation_step(self, batch: dict, batch_idx: int) -> Matches:
        if self.val_benchmark is None:
            return self.match(batch)
        matches = self.val_benchmark.predict(self, batch)
        self.val_benchmark.update(batch, matches)
        return matches

    def on_validation_epoch_end(self) -> None:
        if self.val_benchmark is None:
            return
        metrics = self.val_benchmark.compute()
        self.log_dict({f"val/{k}": float(v) for k, v in metrics.items()}, sync_dist=False)
        main_metric = getattr(self.trainer.datamodule, "main_metric", None)
        if main_metric in metrics:
            self.log("val/score", float(metrics[main_metric]), prog_bar=True, sync_dist=False)
        self.val_benchmark.reset()

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError(f"{type(self).__name__} has no optimizer configured (model.optimizer)")
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}


def sample_warp(warp: Tensor, points: Tensor) -> Tensor:
    """Bilinear lookup of a dense warp (B, H, W, 2) at points (B, Q, 2) in pixels (centres at integers)."""
    _, h, w, _ = warp.shape
    grid = torch.stack([(points[..., 0] + 0.5) / w * 2 - 1, (points[..., 1] + 0.5) / h * 2 - 1], dim=-1)
    sampled = F.grid_sample(warp.permute(0, 3, 1, 2), grid[:, None].to(warp), mode="bilinear", align_corners=False)
    return sampled[:, :, 0].permute(0, 2, 1)
