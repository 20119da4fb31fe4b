"""PUMP (Revaud et al., CVPR 2022): ConvMixer pixel descriptors trained with a pixel AP loss on
homography pairs + the unsupervised DeepMatching loss on real pairs; DeepMatching-pyramid matching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from corrlab.geometry.scaling import to_original
from corrlab.losses.deepmatching import DeepMatchingLoss
from corrlab.losses.pixel_ap import NeighbourSampler, PixelAPLoss
from corrlab.matches import Matches
from corrlab.models.convmixer import ConvMixer
from corrlab.models.pump.images import check_image_size, matcher_input, warn_if_resized_twice
from corrlab.models.pump.matcher import apply_affine
from corrlab.models.pump.modes import MODES, make_matcher
from corrlab.models.pump.output import save_corres
from corrlab.models.pump.post_filter import densify, filter_corres
from corrlab.modules.base import MatchingModule


class PUMP(MatchingModule):
    """Config groups (conf/model/pump.yaml holds the paper's values):

    descriptor: ConvMixer arguments.  losses: `ap_weight` x PixelAPLoss on pairs with a finite
    `H_0to1` + `dm_weight` x DeepMatchingLoss on the others (`ap`, `dm`: their arguments).
    matching: `mode` single | multi | recursive, `resize` (longer side matched, 0 = as given),
    pyramid arguments (levels, min_shape, power, border_norm, chunk_mb, level0), multi-scale (max_scale,
    max_rot, rot_step, ms_levels) and recursive (coarse_size, fine_size, overlap, score_thr,
    fast_thr) options.  post_filter: `enabled`, `locality`, `min_cc_size`, `densify`.
    """

    requires_weights = True

    def __init__(
        self,
        descriptor: dict[str, Any] | None = None,
        losses: dict[str, Any] | None = None,
        matching: dict[str, Any] | None = None,
        post_filter: dict[str, Any] | None = None,
        optimizer=None,
        scheduler=None,
    ) -> None:
        super().__init__(optimizer=optimizer, scheduler=scheduler)
        self.save_hyperparameters(logger=False, ignore=["optimizer", "scheduler"])
        losses = dict(losses or {})
        self.ap_weight = float(losses.pop("ap_weight", 1.0))
        self.dm_weight = float(losses.pop("dm_weight", 0.3))
        ap, dm = dict(losses.pop("ap", {})), dict(losses.pop("dm", {}))
        if losses:
            raise TypeError(f"unknown PUMP loss options: {sorted(losses)} (valid: ap_weight, dm_weight, ap, dm)")
        self.net = ConvMixer(**(descriptor or {}))
        self.ap_loss = PixelAPLoss(sampler=NeighbourSampler(**ap.pop("sampler", {})), **ap)
        self.dm_loss = DeepMatchingLoss(**dm)
        self.matching = {"mode": "single", "resize": 512, **(matching or {})}
        if self.matching["mode"] not in MODES:
            raise ValueError(f"matching.mode must be one of {MODES}, got '{self.matching['mode']}'")
        self.post = {"enabled": False, "locality": 2.0, "min_cc_size": 50, "densify": False, **(post_filter or {})}

    # --- weights --------------------------------------------------------------------------
    def load_official(self, path: str | Path) -> None:
        """The released PUMP.pt / PUMP-stytrf.pt: a plain ConvMixer state_dict, loaded strictly."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            raise ValueError(
                f"{path} looks like a Lightning checkpoint: evaluate it with ckpt_path= instead of weights="
            )
        self.net.load_state_dict(state, strict=True)
        self.note_weights(path, "official PUMP ConvMixer state_dict (PUMP.pt)")

    # --- training -------------------------------------------------------------------------
    def compute_losses(self, batch: dict) -> dict[str, Tensor]:
        desc0, desc1 = self.net(batch["image0"]), self.net(batch["image1"])
        H = batch.get("H_0to1")
        supervised = (
            torch.isfinite(H).flatten(1).all(1)
            if H is not None
            else torch.zeros(len(desc0), dtype=torch.bool, device=desc0.device)
        )
        ap = self.ap_loss(desc0[supervised], desc1[supervised], H[supervised]) if supervised.any() else desc0.sum() * 0
        dm = self.dm_loss(desc0[~supervised], desc1[~supervised]) if (~supervised).any() else desc0.sum() * 0
        total = self.ap_weight * ap + self.dm_weight * dm
        return {"total": total, "ap": ap.detach(), "dm": dm.detach()}

    # --- matching -------------------------------------------------------------------------
    def match_pair(self, image0: Tensor, image1: Tensor, name: str = "pair") -> Tensor:
        """(N, 6) [x0, y0, x1, y1, score, code] between two (3, H, W) images, in their pixels."""
        inputs, backs = [], []
        for role, image in (("image0", image0), ("image1", image1)):
            resized, back = matcher_input(image, self.matching)
            check_image_size(
                *resized.shape[-2:], f"{role} of {name} ({image.shape[-2]}x{image.shape[-1]} before resizing)"
            )
            inputs.append(resized)
            backs.append(back)
        corres = make_matcher(self.net, self.matching)(*inputs)
        if self.post["enabled"] and len(corres):
            kept = filter_corres(corres.double().cpu().numpy(), self.post["locality"], self.post["min_cc_size"])
            corres = torch.from_numpy(kept).to(corres)
        corres = corres.clone()
        corres[:, 0:2] = apply_affine(backs[0], corres[:, 0:2])
        corres[:, 2:4] = apply_affine(backs[1], corres[:, 2:4])
        return corres

    @torch.no_grad()
    def match(self, batch: dict) -> Matches:
        warn_if_resized_twice(batch, self.matching)
        images0, images1 = batch["image0"], batch["image1"]
        parts, warps, certainties = [], [], []
        for b in range(images0.shape[0]):
            corres = self.match_pair(images0[b], images1[b], name=f"pair '{batch['name'][b]}'")
            matches = Matches(
                corres[:, 0:2],
                corres[:, 2:4],
                corres[:, 4],
                torch.full((len(corres),), b, dtype=torch.long, device=corres.device),
            )
            matches.extras["scale_rot_code"] = corres[:, 5]
            parts.append(matches)
            if self.post["densify"]:
                warp, inside = self.dense_warp(corres, *images0.shape[-2:])
                warps.append(warp)
                certainties.append(inside)
        out = Matches.concat(parts)
        if warps:
            out.warp, out.certainty = torch.stack(warps), torch.stack(certainties)
        return out

    def dense_warp(self, corres: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
        """(H, W, 2) positions in image 1 of every pixel of image 0 (NaN without 4 matches) and the
        (H, W) mask of pixels inside the matches' convex hull."""
        if len(corres) < 4:
            return corres.new_full((height, width, 2), float("nan")), corres.new_zeros(height, width)
        points = corres.double().cpu().numpy()
        dense, inside = densify(points[:, 0:2], points[:, 2:4], height, width, full=True)
        return torch.from_numpy(dense).to(corres), torch.from_numpy(inside).to(corres)

    # --- the reference's output file ------------------------------------------------------
    def export_corres(self, batch: dict, b: int, matches: Matches, path: str | Path) -> Path:
        """Write pair b's matches as the reference's npz (`corres`) in ORIGINAL-image pixels:
        (N, 6) [x1, y1, x2, y2, score, code], or with post_filter.densify the (H * W, 4) dense
        rows [x1, y1, x2, y2] on the original image-1 grid, row-major (right at any resize)."""
        pair = matches.pair(b)
        codes = matches.extras.get("scale_rot_code", torch.zeros(len(matches)))[matches.batch_idx == b]
        kpts0 = to_original(pair.kpts0.double().cpu(), batch["scale0"][b].double().cpu())
        kpts1 = to_original(pair.kpts1.double().cpu(), batch["scale1"][b].double().cpu())
        if self.post["densify"]:
            height, width = (int(v) for v in batch["size0"][b])
            dense, _ = densify(kpts0.numpy(), kpts1.numpy(), height, width, full=True)
            ys, xs = np.mgrid[0:height, 0:width]
            rows = np.concatenate([np.stack([xs, ys], -1).reshape(-1, 2), dense.reshape(-1, 2)], 1)
        else:
            rows = torch.cat(
                [kpts0, kpts1, pair.scores.double().cpu()[:, None], codes.double().cpu()[:, None]], 1
            ).numpy()
        return save_corres(path, rows)
