"""Lightning callback: after each validation, draw the matches of the first validation pair to PNG."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from corrlab.matches import Matches
from corrlab.tracking.correctness import match_correctness
from corrlab.tracking.figures import draw_matches


class MatchFigureCallback(L.Callback):
    """Writes `<dirpath>/val_epoch<NNN>.png` and keeps a copy of the latest as `<dirpath>/val_matches.png`.
    Loggers with a `log_image(key, images=[path])` method (W&B, Visdom) receive it too."""

    def __init__(self, dirpath: str, threshold_px: float = 3.0) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self.threshold_px = threshold_px

    @rank_zero_only
    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx != 0 or dataloader_idx != 0 or trainer.sanity_checking or not isinstance(outputs, Matches):
            return
        pair = outputs.pair(0)
        correct = match_correctness(batch, 0, pair, self.threshold_px)
        path = draw_matches(
            batch["image0"][0],
            batch["image1"][0],
            pair.kpts0,
            pair.kpts1,
            self.dirpath / f"val_epoch{trainer.current_epoch:03d}.png",
            correct=correct,
            title=f"{batch['name'][0]}  epoch {trainer.current_epoch}",
            threshold_px=self.threshold_px,
        )
        shutil.copyfile(path, self.dirpath / "val_matches.png")
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="val/matches", images=[str(path)], step=trainer.global_step)
