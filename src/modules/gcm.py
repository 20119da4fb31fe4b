"""GCM (Han et al., "Generalized Correspondence Matching via Flexible Hierarchical Refinement and Patch Descriptor
Distillation", arXiv 2403.05388; reference AlexHan5832/GCM on ufukefe/DFM).  Training-free matcher on top of
pretrained features; docs/gcm.md.

`reference_compatible=True` reproduces the reference's matches bit for bit, its defects included:
* the final keep-filter bounds B's y by the padded *width* (drops about 25 % of a portrait pair's matches) and has
  no lower bound;
* the refinement's C -> A ratio is read at A's child index instead of at the matched child.
The default mends both.  The loading defects (Windows paths, CUDA-only torch.load, `*_R2D2_*` configs whose
teacher file cannot load into the student the reference always builds) are mended in both modes, except that
`reference_compatible=True` refuses the teacher configs the way the reference fails on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from corrlab.matches import Matches
from corrlab.models.gcm.matcher import GCMMatcher
from corrlab.models.gcm.official import load_student, load_teacher
from corrlab.modules.base import MatchingModule

WEIGHT_KEYS = ("fine", "backbone")


class GCM(MatchingModule):
    """Configs (conf/model/gcm/<name>.yaml, one per reference config): `backbone` student | vgg19 | resnet18,
    `ratio_th` per pyramid level (finest first; the last one is stage 0), `fine` student | r2d2 | null and
    `fine_ratio`.  Matches come with unit scores: GCM gives none."""

    requires_weights = True
    weight_roles = WEIGHT_KEYS

    def __init__(
        self,
        backbone: str = "vgg19",
        ratio_th: list[float] = (1.0, 1.0, 1.0, 1.0, 1.0),
        fine: str | None = "student",
        fine_ratio: float | None = 0.95,
        two_stage: bool = True,
        bidirectional: bool = True,
        reference_compatible: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        if reference_compatible and fine == "r2d2":
            raise ValueError(
                "the reference cannot run its ResNet18_R2D2_* configs: it always builds the student network for the "
                "fine descriptor, and the R2D2 teacher's weights do not fit it (strict load_state_dict fails); "
                "use reference_compatible=false for the mended teacher descriptor"
            )
        self.matcher = GCMMatcher(
            backbone, list(ratio_th), fine, fine_ratio, two_stage, bidirectional, reference_compatible
        )

    # --- weights ------------------------------------------------------------------------------
    def load_official(self, weights: str | Path | Mapping) -> None:
        """`weights` = one path (the student, dstl_r2d2.pt, or for `fine: r2d2` the teacher file) or a mapping
        {fine: <descriptor file>, backbone: <torchvision ImageNet file for vgg19 / resnet18>}."""
        if isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(WEIGHT_KEYS))
            if unknown:
                raise KeyError(f"unknown weights keys {unknown}; valid: {list(WEIGHT_KEYS)}")
            fine, backbone = weights.get("fine"), weights.get("backbone")
        else:
            fine, backbone = weights, None
        matcher = self.matcher
        if matcher.backbone_name == "student":
            if backbone is not None:
                raise ValueError(
                    "this config's backbone is the distilled student: give its file as weights=<dstl_r2d2.pt> "
                    "or weights.fine=<dstl_r2d2.pt>, not weights.backbone"
                )
            if fine is None:
                raise ValueError("weights.fine: the student pyramid needs dstl_r2d2.pt")
            load_student(matcher.backbone.net, fine)
            return
        if backbone is None:
            raise ValueError(
                f"weights.backbone: the {matcher.backbone_name} backbone needs torchvision's ImageNet file "
                "(give weights.fine=<descriptor .pt> weights.backbone=<torchvision .pth>)"
            )
        matcher.backbone.load_imagenet(backbone, key="weights.backbone")
        if matcher.fine is None:
            if fine is not None:
                raise ValueError("weights.fine given but this config has no fine descriptor (fine: null)")
            return
        if fine is None:
            raise ValueError(f"weights.fine: the {matcher.fine_name} fine descriptor needs its .pt file")
        (load_student if matcher.fine_name == "student" else load_teacher)(matcher.fine, fine)

    # --- matching -----------------------------------------------------------------------------
    @torch.no_grad()
    def match(self, batch: dict) -> Matches:
        """Per pair: images to uint8 (the reference works on uint8 arrays and warps them with OpenCV), then
        GCMMatcher.match; kpts in batch pixels (float64), pixel centres at integers."""
        device = batch["image0"].device
        parts = []
        for b in range(batch["image0"].shape[0]):
            result = self.matcher.match(to_uint8(batch["image0"][b]), to_uint8(batch["image1"][b]))
            n = len(result.points_a)
            parts.append(
                Matches(
                    kpts0=result.points_a.to(device),
                    kpts1=result.points_b.to(device),
                    scores=torch.ones(n, dtype=torch.float64, device=device),
                    batch_idx=torch.full((n,), b, dtype=torch.long, device=device),
                )
            )
        return Matches.concat(parts)


def to_uint8(image: torch.Tensor):
    """3 x H x W float in [0, 1] -> H x W x 3 uint8 numpy (exact for images read as uint8 / 255)."""
    return (image * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
