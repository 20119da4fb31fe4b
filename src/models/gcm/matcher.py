"""GCM's matching pipeline (DFM `DeepFeatureMatcher.match` + GCM's patch-descriptor step) on two uint8 images.

1. ImageNet-normalise, zero-pad right/bottom to a multiple of 16 (in the normalised space).
2. Stage 0: dense mutual-NN + ratio matches of the coarsest maps of A and B, cell centres to pixels
   ((p + 0.5) * 16 - 0.5), OpenCV RANSAC homography B -> A (16 sqrt 2 + 1 px), B warped onto A as C.
3. Dense matches A <-> C on the second-coarsest map, then one `refine_points` per finer level, then (with a fine
   descriptor) one more at full resolution.
4. C's points mapped back to B by H_init^-1, kept inside the images, final RANSAC homography (3 px).
`reference_compatible=True` keeps the reference's defects (module docstring of corrlab.modules.gcm) and the
reference's full-resolution trunk passes, bit for bit.  The default evaluates the student (and a fine R2D2 / student
descriptor) with `FoldedTrunk`: the pooled pyramid from the pooled head, the full-resolution map only at the pixels
the last refinement reads; equal up to float rounding (docs/gcm.md, Performance).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from corrlab.models.gcm.backbones import BACKBONES
from corrlab.models.gcm.dense_matching import dense_feature_matching
from corrlab.models.gcm.refinement import refine_points
from corrlab.models.gcm.student import coarse_student_level, pooled_student_pyramid, student_quad_l2net_confcfs
from corrlab.models.r2d2.folded_trunk import FoldedTrunk, RawAtPixels
from corrlab.models.r2d2.patchnet import R2D2Net, quad_l2net_confcfs

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PADDING = 16  # the coarsest stride of every backbone (the reference's up_sample[0])
FINE_DESCRIPTORS = {"student": student_quad_l2net_confcfs, "r2d2": quad_l2net_confcfs}


@dataclass
class GCMResult:
    """Matches (N, 2) float64 (x, y), pixel centres at integers, and the two homographies B -> A (3 x 3)."""

    points_a: Tensor
    points_b: Tensor
    homography: np.ndarray
    homography_init: np.ndarray


def prepare(image: np.ndarray, device: torch.device) -> tuple[Tensor, tuple[int, int]]:
    """H x W x 3 uint8 -> 1 x 3 x H' x W' normalised and zero-padded to multiples of 16, and (pad_right, pad_bottom)."""
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(device).float().div(255)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(-1, 1, 1)
    x = x.sub_(mean).div_(std)
    pad_right = (PADDING - image.shape[1] % PADDING) % PADDING
    pad_bottom = (PADDING - image.shape[0] % PADDING) % PADDING
    return F.pad(x, (0, pad_right, 0, pad_bottom)).unsqueeze(0), (pad_right, pad_bottom)


def ransac_homography(src: Tensor, dst: Tensor, threshold: float) -> np.ndarray:
    """cv2.findHomography(src -> dst, RANSAC, threshold, 5000 iterations, 0.9999) of (2, N) points; identity when
    there are fewer than 4 points or OpenCV finds none."""
    if src.shape[1] < 4:
        return np.eye(3, dtype=np.double)
    H, _ = cv2.findHomography(
        np.ascontiguousarray(src.t().cpu().numpy()),
        np.ascontiguousarray(dst.t().cpu().numpy()),
        method=cv2.RANSAC,
        ransacReprojThreshold=threshold,
        maxIters=5000,
        confidence=0.9999,
    )
    return np.eye(3, dtype=np.double) if H is None else H


class GCMMatcher(nn.Module):
    """The backbone pyramid (`backbone`: student | vgg19 | resnet18), an optional full-resolution descriptor
    (`fine`: student | r2d2 | None) and the matching thresholds.  `ratio_th[k]` is the threshold of pyramid level k
    (0 = finest, last = stage 0; 1.0 = mutual NN only, -1.0 = flexible); `fine_ratio` that of the fine step."""

    def __init__(
        self,
        backbone: str,
        ratio_th: list[float],
        fine: str | None = None,
        fine_ratio: float | None = None,
        two_stage: bool = True,
        bidirectional: bool = True,
        reference_compatible: bool = False,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown GCM backbone '{backbone}'; valid: {sorted(BACKBONES)}")
        if fine is not None and fine not in FINE_DESCRIPTORS:
            raise ValueError(f"unknown GCM fine descriptor '{fine}'; valid: {sorted(FINE_DESCRIPTORS)} or null")
        if fine is not None and fine_ratio is None:
            raise ValueError("a fine descriptor needs fine_ratio")
        self.backbone = BACKBONES[backbone]()
        if len(ratio_th) != len(self.backbone.strides):
            raise ValueError(
                f"ratio_th needs {len(self.backbone.strides)} values for backbone '{backbone}' "
                f"(one per level, strides {self.backbone.strides}), got {len(ratio_th)}"
            )
        self.backbone_name, self.fine_name = backbone, fine
        self.fine = FINE_DESCRIPTORS[fine]() if fine is not None else None
        self.ratio_th = [float(r) for r in ratio_th]
        self.fine_ratio = None if fine_ratio is None else float(fine_ratio)
        self.two_stage, self.bidirectional = two_stage, bidirectional
        self.reference_compatible = reference_compatible
        # full-resolution trunk passes as the reference (always with reference_compatible; settable for comparisons)
        self.exact_features = reference_compatible

    def folded(self, net: R2D2Net | None) -> FoldedTrunk | None:
        """The FoldedTrunk of an R2D2 / student network (folded at each match: weights may have been loaded since),
        or None where the exact passes are used."""
        return None if self.exact_features or net is None else FoldedTrunk(net)

    def pyramid(self, image: Tensor, trunk: FoldedTrunk | None) -> list[Tensor | RawAtPixels]:
        """The backbone's maps, finest first; with a folded student trunk the finest is a RawAtPixels (computed
        when the last refinement reads it)."""
        if trunk is None:
            return self.backbone(image)
        levels = pooled_student_pyramid(trunk.pooled(image))
        return [trunk.raw_at_pixels(image), *levels, levels[-1]]

    def coarsest(self, image: Tensor, trunk: FoldedTrunk | None) -> Tensor:
        """The coarsest map only (image B in stage 0); the student's finer levels are freed as they go."""
        if trunk is not None:
            return pooled_student_pyramid(trunk.pooled(image))[-1]
        if self.backbone_name == "student":
            return coarse_student_level(self.backbone.raw(image))
        return self.backbone(image)[-1]

    def fine_features(self, image: Tensor, trunk: FoldedTrunk | None) -> Tensor | RawAtPixels:
        return self.fine.features(image) if trunk is None else trunk.raw_at_pixels(image)

    @torch.no_grad()
    def match(self, image_a: np.ndarray, image_b: np.ndarray) -> GCMResult:
        """Matches between two H x W x 3 uint8 RGB images (A is the reference frame)."""
        device = next(self.parameters()).device
        inp_a, pad_a = prepare(image_a, device)
        inp_b, pad_b = prepare(image_b, device)
        trunk = self.folded(self.backbone.net) if self.backbone_name == "student" else None
        fine_trunk = self.folded(self.fine)
        maps_a = self.pyramid(inp_a, trunk)
        H_init = np.eye(3, dtype=np.double)
        inp_c = inp_b
        if self.two_stage:
            points_a, points_b = dense_feature_matching(
                maps_a[-1], self.coarsest(inp_b, trunk), self.ratio_th[-1], self.bidirectional
            )
            H_init = ransac_homography(
                (points_b + 0.5) * PADDING - 0.5, (points_a + 0.5) * PADDING - 0.5, 16 * np.sqrt(2) + 1
            )
            image_c = cv2.warpPerspective(image_b, H_init, (image_a.shape[1], image_a.shape[0]))
            inp_c, _ = prepare(image_c, device)
        fine_a = fine_c = None
        if self.fine is not None:
            fine_c, fine_a = self.fine_features(inp_c, fine_trunk), self.fine_features(inp_a, fine_trunk)
        maps_c = self.pyramid(inp_c, trunk)
        points_a, points_c = dense_feature_matching(maps_a[-2], maps_c[-2], self.ratio_th[-2], self.bidirectional)
        for k in range(len(maps_a) - 3, -1, -1):
            maps_a[k + 1] = maps_c[k + 1] = None  # coarser levels are done with
            points_a, points_c = refine_points(
                points_a,
                points_c,
                maps_a[k],
                maps_c[k],
                self.ratio_th[k],
                self.bidirectional,
                self.reference_compatible,
            )
        del maps_a, maps_c
        if self.fine is not None:
            points_a, points_c = refine_points(
                points_a, points_c, fine_a, fine_c, self.fine_ratio, self.bidirectional, self.reference_compatible
            )
        points_c, points_a = points_c.cpu(), points_a.cpu()
        # C -> B: H_init maps zero-based pixel indices, no half-pixel shift (as the reference)
        homogeneous = torch.vstack((points_c, torch.ones((1, points_c.shape[1])))).double()
        points_b = torch.from_numpy(np.linalg.inv(H_init)) @ homogeneous
        points_b = points_b[0:2, :] / points_b[2, :]
        points_a = points_a.double()
        keep = self.inside(points_a, points_b, image_a.shape[:2], image_b.shape[:2], inp_b.shape[-2:], pad_b)
        points_a, points_b = points_a[:, keep], points_b[:, keep]
        H = ransac_homography(points_b, points_a, 3.0)
        return GCMResult(points_a.t().contiguous(), points_b.t().contiguous(), H, H_init)

    def inside(self, points_a, points_b, size_a, size_b, padded_b, pad_b) -> Tensor:
        """Which matches lie in both images.  The reference bounds x < W and y < H for A and x < W for B but
        y < padded width - bottom padding for B (and has no lower bound); the mended filter keeps points of B whose
        pixel footprint centre is in [-0.5, W - 0.5) x [-0.5, H - 0.5)."""
        (h_a, w_a), (h_b, w_b) = size_a, size_b
        in_a = (points_a[0] < w_a) & (points_a[1] < h_a)
        if self.reference_compatible:
            return in_a & (points_b[0] < w_b) & (points_b[1] < padded_b[1] - pad_b[1])
        in_b = (points_b[0] >= -0.5) & (points_b[0] < w_b - 0.5) & (points_b[1] >= -0.5) & (points_b[1] < h_b - 0.5)
        return in_a & in_b
