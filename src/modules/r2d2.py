"""R2D2 (Revaud et al., NeurIPS 2019) as a matching baseline: naver/r2d2's multi-scale keypoints
(reliability x repeatability maxima, top-k) and mutual-nearest-neighbour matching of their descriptors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from corrlab.matches import Matches
from corrlab.models.r2d2.checkpoint import build_from_net_string, load_official
from corrlab.models.r2d2.extract import ExtractionConfig, Keypoints, extract_keypoints, mutual_nearest_neighbours
from corrlab.models.r2d2.patchnet import R2D2Net
from corrlab.modules.base import MatchingModule


class R2D2(MatchingModule):
    """`architecture`: the checkpoint-style constructor string of the network to build before weights are
    loaded (`load_official` builds the one its file names).  `extraction`: extract.py's options
    (ExtractionConfig).  `streamed`: each level through the folded trunk by rows (faster, far less memory, equal up to
    float rounding; docs/r2d2.md).  Matches are in batch pixels, scored by descriptor similarity.  The keypoints of
    the two most recently used images are kept, so an image shared by consecutive pairs (HPatches' reference image in
    its five pairs) is extracted once; the outputs are the same."""

    requires_weights = True

    def __init__(
        self, architecture: str = "Quad_L2Net_ConfCFS()", extraction: dict | None = None, streamed: bool = False
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.streamed = streamed
        self.net = self.checked(build_from_net_string(architecture))
        self.extraction = ExtractionConfig(**(extraction or {}))
        self.recent: list[tuple[Tensor, Keypoints]] = []

    def load_official(self, path: str | Path) -> None:
        """A released naver/r2d2 `.pt` (a pickle: load only files from a trusted source); strict keys."""
        self.net = self.checked(load_official(path).to(next(self.net.parameters()).device))
        self.recent = []

    def checked(self, net: R2D2Net) -> R2D2Net:
        """`net`, refused when `streamed` is asked of a network the folded trunk cannot run."""
        if self.streamed and net.upsample != 1:
            raise ValueError(
                "model.streamed=true runs the Quad_L2Net_ConfCFS networks only (r2d2_W*_N16.pt, r2d2_WASF_N8_big.pt); "
                "the fast variants (faster2d2_*.pt) max-pool and upsample inside: set model.streamed=false"
            )
        return net

    def keypoints(self, image: Tensor) -> Keypoints:
        """extract.py's keypoints of one 3 x H x W image in [0, 1] (x, y in its pixels)."""
        for index, (seen, keypoints) in enumerate(self.recent):
            if seen.shape == image.shape and seen.device == image.device and torch.equal(seen, image):
                self.recent.append(self.recent.pop(index))  # most recently used last
                return keypoints
        keypoints = extract_keypoints(self.net, image, self.extraction, self.streamed)
        self.recent = [*self.recent[-1:], (image.clone(), keypoints)]
        return keypoints

    @torch.inference_mode()
    def match(self, batch: dict) -> Matches:
        parts = []
        for b in range(batch["image0"].shape[0]):
            kp0, kp1 = self.keypoints(batch["image0"][b]), self.keypoints(batch["image1"][b])
            i0, i1, similarity = mutual_nearest_neighbours(kp0.descriptors, kp1.descriptors)
            parts.append(Matches(kp0.xys[i0, :2], kp1.xys[i1, :2], similarity, torch.full_like(i0, b)))
        matches = Matches.concat(parts)
        return matches.to(batch["image0"].device)
