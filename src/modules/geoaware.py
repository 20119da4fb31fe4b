"""GeoAware-SC (Zhang et al., "Telling Left from Right", CVPR 2024): frozen SD + DINOv2 features, a trained
post-processor, window soft-argmax read-out and adaptive pose alignment (flip test).  docs/geoaware.md."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch import Tensor

from corrlab.losses.geoaware import GeoAwareLoss
from corrlab.matches import Matches
from corrlab.models.geoaware.aggregation import AggregationNetwork, DummyAggregationNetwork, normalize_descriptors
from corrlab.models.geoaware.flip import flip_queries, flip_table, permutation
from corrlab.models.geoaware.letterbox import Letterbox
from corrlab.models.geoaware.readout import (
    masked_distance,
    mutual_nn_distance,
    nearest_patch,
    patch_index,
    patch_to_pixel,
    soft_argmax_patch,
)
from corrlab.modules.base import MatchingModule

POST_PROCESSORS = ("aggregation", "dummy")
FLIP_DISTANCES = ("mutual_nn", "mask")


def image_key(batch: dict, side: int, b: int) -> tuple[str, bool]:
    """(feature key, mirrored) of image `side` of pair b from batch['image<side>_id'] (the path under the dataset
    root, '#mirrored' when the batch shows it flipped): the key is that path without its extension."""
    key = f"image{side}_id"
    if key not in batch:
        raise KeyError(f"GeoAware-SC reads features per image: the batch has no '{key}' (pair '{batch['name'][b]}')")
    path, _, variant = str(batch[key][b]).partition("#")
    if variant not in ("", "mirrored"):
        raise ValueError(f"image id '{batch[key][b]}': GeoAware-SC has features for the image and its mirror only")
    return str(PurePosixPath(path).with_suffix("")), variant == "mirrored"


class GeoAwareSC(MatchingModule):
    """features: a callable (key, image, flip) -> (3968, g, g) (model/features=cache|reference_cache).
    post_processor: aggregation (supervised) | dummy (zero-shot).  soft_eval: window soft-argmax
    (window w: (2w+1)^2 patches; 0 = full soft-argmax) instead of nearest neighbour.  adapt_flip: also transfer
    from the mirrored source and keep it when its flip distance (mutual_nn, or mask with `mask_dir`) is lower.
    """

    def __init__(
        self,
        features: Callable[..., Tensor],
        post_processor: str = "aggregation",
        projection_dim: int = 768,
        feat_map_dropout: float = 0.2,
        soft_eval: bool = True,
        window: int = 7,
        adapt_flip: bool = False,
        flip_distance: str = "mutual_nn",
        mask_dir: str | None = None,
        flip_table: str = "spair",
        image_size: int = 840,
        grid: int = 60,
        losses: dict[str, Any] | None = None,
        init_weights: str | None = None,
        descriptor_cache: int = 64,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "step",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval)
        if post_processor not in POST_PROCESSORS:
            raise ValueError(f"model.post_processor must be one of {POST_PROCESSORS}, got '{post_processor}'")
        if flip_distance not in FLIP_DISTANCES:
            raise ValueError(f"model.flip_distance must be one of {FLIP_DISTANCES}, got '{flip_distance}'")
        if flip_distance == "mask" and not mask_dir:
            raise ValueError("model.flip_distance=mask needs model.mask_dir (<img>_mask.png, <img>_mask_flip.png)")
        self.features = features
        self.zero_shot = post_processor == "dummy"
        self.requires_weights = not self.zero_shot
        self.net = (
            DummyAggregationNetwork()
            if self.zero_shot
            else AggregationNetwork(projection_dim=projection_dim, feat_map_dropout=feat_map_dropout)
        )
        self.soft_eval, self.window = soft_eval, window
        self.adapt_flip, self.flip_distance = adapt_flip, flip_distance
        self.mask_dir = Path(mask_dir) if mask_dir else None
        self.flip_table = flip_table
        self.image_size, self.grid = image_size, grid
        self.loss = GeoAwareLoss(grid=grid, image_size=image_size, **(losses or {}))
        self.descriptor_cache = descriptor_cache
        self._descriptors: OrderedDict[tuple[str, bool], Tensor] = OrderedDict()
        self._flip_decisions: OrderedDict[tuple[str, str], bool] = OrderedDict()
        if init_weights:
            self.load_official(init_weights)

    # --- weights ----------------------------------------------------------------------------
    def load_official(self, path: str | Path) -> None:
        """A released AggregationNetwork state_dict (best_856.PTH, AP-10K last.PTH), strict keys."""
        if self.zero_shot:
            raise ValueError("the zero-shot model (post_processor=dummy) has no weights to load")
        self.net.load_official(path)
        self.clear_caches()

    def clear_caches(self) -> None:
        self._descriptors.clear()
        self._flip_decisions.clear()

    def train(self, mode: bool = True):
        self.clear_caches()  # descriptors of another weight state must not be reused
        return super().train(mode)

    # --- descriptors ------------------------------------------------------------------------
    def describe(self, features: Tensor) -> Tensor:
        """(3968, g, g) features -> (g*g, C) L2-normalised descriptors (row = y * g + x)."""
        out = self.net(features[None].to(self.device))[0]
        return normalize_descriptors(out.flatten(1).T, separate_sd=self.zero_shot)

    def descriptors(self, batch: dict, side: int, b: int, flip: bool = False) -> Tensor:
        """Descriptors of one image (mirrored when `flip`), kept per image id while evaluating: an image shared
        by several pairs is described once."""
        key = self.stored_view(batch, side, b, flip)
        if self.training or not self.descriptor_cache:
            return self.describe(self.read_features(batch, side, b, key, flip))
        if key not in self._descriptors:
            self._descriptors[key] = self.describe(self.read_features(batch, side, b, key, flip))
            while len(self._descriptors) > self.descriptor_cache:
                self._descriptors.popitem(last=False)
        return self._descriptors[key]

    @staticmethod
    def stored_view(batch: dict, side: int, b: int, flip: bool) -> tuple[str, bool]:
        """(feature key, whether the stored mirror is meant) of image `side`, mirrored once more if `flip`."""
        stored, mirrored = image_key(batch, side, b)
        return stored, flip != mirrored

    def read_features(self, batch: dict, side: int, b: int, key: tuple[str, bool], flip: bool) -> Tensor:
        """Backbones compute from the batch image (mirrored if `flip`); caches read the stored image `key`."""
        if getattr(self.features, "reads_images", False):
            return self.features(key[0], batch[f"image{side}"][b], flip)
        return self.features(key[0], None, key[1])

    def letterbox(self, batch: dict, side: int, b: int) -> Letterbox:
        h, w = batch[f"image{side}"][b].shape[-2:]
        return Letterbox(int(h), int(w), self.image_size)

    # --- inference --------------------------------------------------------------------------
    def readout(self, desc0: Tensor, desc1: Tensor, queries: Tensor) -> Tensor:
        """Letterboxed image-1 pixels (Q, 2) of letterboxed image-0 queries (Q, 2)."""
        rows = desc0[patch_index(queries, self.image_size, self.grid)] @ desc1.T
        patch = soft_argmax_patch(rows, self.window, self.grid) if self.soft_eval else nearest_patch(rows, self.grid)
        return patch_to_pixel(patch, self.image_size, self.grid)

    def flip_distance_of(self, batch: dict, b: int, desc0: Tensor, desc1: Tensor, flip: bool) -> Tensor:
        if self.flip_distance == "mutual_nn":
            return mutual_nn_distance(desc0, desc1)
        masks = [self.instance_mask(*self.stored_view(batch, side, b, flip and side == 0)) for side in (0, 1)]
        return masked_distance(desc0, desc1, masks[0], masks[1], self.grid)

    def instance_mask(self, key: str, flip: bool) -> Tensor:
        """The SAM mask of the letterboxed image as 0/1 (gray > 127), where the reference's preprocess_mask_sam.py
        puts it: <mask_dir>/<key with JPEGImages -> features>_mask[_flip].png (mask_dir = the dataset root)."""
        from corrlab.datamodules.image_io import read_image
        from corrlab.models.geoaware.feature_cache import reference_stem

        path = self.mask_dir / f"{reference_stem(key)}_mask{'_flip' if flip else ''}.png"
        if not path.is_file():
            raise FileNotFoundError(f"model.mask_dir: no instance mask {path}")
        return (read_image(path).mean(0) * 255 > 127).float().to(self.device)

    def use_flip(self, batch: dict, b: int) -> bool:
        """The flip test of pair b: is the mirrored source closer to the target (kept per image-id pair)?"""
        key = (self.stored_view(batch, 0, b, False), self.stored_view(batch, 1, b, False))
        if key not in self._flip_decisions or self.training:
            desc1 = self.descriptors(batch, 1, b)
            original = self.flip_distance_of(batch, b, self.descriptors(batch, 0, b), desc1, False)
            flipped = self.flip_distance_of(batch, b, self.descriptors(batch, 0, b, flip=True), desc1, True)
            self._flip_decisions[key] = bool(flipped < original)
            while len(self._flip_decisions) > 4096:
                self._flip_decisions.popitem(last=False)
        return self._flip_decisions[key]

    def transfer(self, batch: dict, query_kpts0: Tensor) -> Tensor:
        """Image-1 positions (B, Q, 2) of image-0 queries, in batch pixels.  With adapt_flip the queries are
        the keypoint slots (kpts_valid gives the mutually visible ones) of a category with a left/right table."""
        out = []
        for b in range(query_kpts0.shape[0]):
            box0, box1 = self.letterbox(batch, 0, b), self.letterbox(batch, 1, b)
            queries = box0.forward(query_kpts0[b].float().to(self.device))
            desc0, desc1 = self.descriptors(batch, 0, b), self.descriptors(batch, 1, b)
            pred = self.readout(desc0, desc1, queries)
            if self.adapt_flip and self.use_flip(batch, b):
                pred = self.flipped_prediction(batch, b, queries, pred, desc1)
            out.append(box1.inverse(pred))
        return torch.stack(out).to(query_kpts0.device)

    def flipped_prediction(self, batch: dict, b: int, queries: Tensor, pred: Tensor, desc1: Tensor) -> Tensor:
        """Predictions from the mirrored source, replacing those of the slots that stay mutually visible."""
        if "kpts_valid" not in batch or queries.shape[0] != batch["kpts_valid"].shape[1]:
            raise ValueError("model.adapt_flip needs keypoint-slot queries (a semantic batch with kpts_valid)")
        valid = batch["kpts_valid"][b].bool().cpu().numpy()
        groups = flip_table(self.flip_table, batch["category"][b])
        flipped_queries = flip_queries(queries, self.image_size, permutation(groups, len(valid), valid))
        flipped = self.readout(self.descriptors(batch, 0, b, flip=True), desc1, flipped_queries)
        keep = valid & valid[permutation(groups, len(valid))]
        keep = torch.from_numpy(keep).to(pred.device)
        return torch.where(keep[:, None], flipped, pred)

    def match(self, batch: dict) -> Matches:
        """Mutual nearest neighbours on the patch grid, at patch centres in batch pixels; score = cosine."""
        parts = []
        for b in range(batch["image0"].shape[0]):
            desc0, desc1 = self.descriptors(batch, 0, b), self.descriptors(batch, 1, b)
            sim = desc0 @ desc1.T
            score, forward = sim.max(dim=1)
            mutual = sim.argmax(dim=0)[forward] == torch.arange(len(forward), device=sim.device)
            src = torch.nonzero(mutual)[:, 0]
            cells = torch.stack([src % self.grid, src // self.grid], -1).float()
            trg = forward[src]
            cells1 = torch.stack([trg % self.grid, trg // self.grid], -1).float()
            kpts0 = self.letterbox(batch, 0, b).inverse(patch_to_pixel(cells, self.image_size, self.grid))
            kpts1 = self.letterbox(batch, 1, b).inverse(patch_to_pixel(cells1, self.image_size, self.grid))
            parts.append(Matches(kpts0, kpts1, score[src], torch.full((len(src),), b, device=sim.device)))
        return Matches.concat(parts)

    # --- training ---------------------------------------------------------------------------
    def compute_losses(self, batch: dict) -> dict[str, Tensor]:
        """GeoAware-SC objective per pair (sparse CLIP + dense soft-argmax + flip-augmented pairs), batch mean."""
        if self.zero_shot:
            raise ValueError("the zero-shot model (post_processor=dummy) is training-free: evaluate it with eval.py")
        totals: list[dict[str, Tensor]] = []
        for b in range(batch["image0"].shape[0]):
            boxes = [self.letterbox(batch, side, b) for side in (0, 1)]
            kpts = [boxes[s].forward(batch[f"kpts{s}"][b].float().to(self.device)) for s in (0, 1)]
            valid = batch["kpts_valid"][b].bool().to(self.device)
            bbox = [boxes[s].forward(batch[f"bbox{s}"][b].float().reshape(2, 2).to(self.device)) for s in (0, 1)]
            thresholds = [float((box[1] - box[0]).max()) * self.grid / self.image_size for box in bbox]
            flip = self.loss.uses_flips
            desc = [self.descriptors(batch, s, b) for s in (0, 1)]
            desc_flip = [self.descriptors(batch, s, b, flip=True) for s in (0, 1)] if flip else None
            groups = flip_table(self.flip_table, batch["category"][b]) if flip else ()
            source = (
                boxes[0].forward(batch["kpts_image0"][b].float().to(self.device)),
                batch["kpts_image_valid0"][b].bool().to(self.device),
            )
            scale = self.net.logit_scale.exp()
            totals.append(self.loss(desc, kpts, valid, thresholds, scale, desc_flip, groups, source))
        names = {k for t in totals for k in t}
        return {k: torch.stack([t[k] for t in totals if k in t]).mean() for k in sorted(names)}
