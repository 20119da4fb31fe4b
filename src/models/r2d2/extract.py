"""R2D2's multi-scale keypoint extraction, as naver/r2d2 `extract.py` does it, and mutual-NN matching.

Scales s = 1, 1/f, 1/f^2, ... (f = 2^0.25) are visited while s * max(H, W) >= min_size; those with
s <= max_size / max(H, W) (and within [min_scale, max_scale]) are extracted.  Each smaller image is
resized bilinearly from the previous one (a cascade, not from the original), to round(H s) x round(W s).
At each scale: maxima of the repeatability in a 3x3 window where reliability and repeatability are both
>= their thresholds; keypoints (x W / w, y H / h, 32 / s), score = reliability x repeatability.  The
top-k scores over all scales are kept (numpy's argsort, ascending, as the reference).

`streamed=True` runs each level through the folded trunk (BatchNorm folded, channels-last) by chunks of rows and
finds the maxima of a chunk's rows as soon as the rows below them exist: no full-resolution map is held, only the
two confidence maps.  Other kernels, so the floats differ from extract.py's by ~1e-6 (docs/r2d2.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.models.r2d2.folded_trunk import FoldedTrunk
from corrlab.models.r2d2.patchnet import R2D2Net, R2D2Output, normalize_channels_

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ExtractionConfig:
    """extract.py's command-line defaults (the paper's HPatches setting, `size-256-1024`)."""

    top_k: int = 5000  # 0 keeps every keypoint
    scale_f: float = 2**0.25
    min_size: int = 256
    max_size: int = 1024
    min_scale: float = 0.0
    max_scale: float = 1.0
    reliability_thr: float = 0.7
    repeatability_thr: float = 0.7

    def __post_init__(self) -> None:
        if self.max_scale > 1:
            raise ValueError(f"max_scale must be <= 1 (extract.py never upsamples), got {self.max_scale}")
        if self.scale_f <= 1:
            raise ValueError(f"scale_f must be > 1, got {self.scale_f}")


@dataclass
class Keypoints:
    """Keypoints of one image in its input pixels: xys (N, 3) = x, y, patch diameter 32 / s;
    descriptors (N, D) L2-normalised; scores (N,) reliability x repeatability, ascending."""

    xys: Tensor
    descriptors: Tensor
    scores: Tensor

    def __len__(self) -> int:
        return self.xys.shape[0]


def normalize_image(image: Tensor) -> Tensor:
    """ImageNet mean / std normalisation of a B x 3 x H x W image in [0, 1] (torchvision's Normalize)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device)[:, None, None]
    return (image - mean) / std


def pyramid(height: int, width: int, config: ExtractionConfig) -> list[tuple[float, int, int, bool]]:
    """(scale, image height, image width, extracted?) for every level extract.py visits, in order.

    An image whose longest side is under min_size has no level in extract.py (which then fails);
    here it is extracted at its own size only."""
    levels = []
    s, h, w = 1.0, height, width
    longest = max(height, width)
    while s + 0.001 >= max(config.min_scale, config.min_size / longest):
        levels.append((s, h, w, s - 0.001 <= min(config.max_scale, config.max_size / longest)))
        s /= config.scale_f
        h, w = round(height * s), round(width * s)
    return levels or [(1.0, height, width, True)]


def local_maxima(reliability: Tensor, repeatability: Tensor, config: ExtractionConfig) -> tuple[Tensor, Tensor]:
    """(y, x) of the 3x3 repeatability maxima above both thresholds, row-major, of 1 x 1 x H x W maps."""
    maxima = repeatability == F.max_pool2d(repeatability, kernel_size=3, stride=1, padding=1)
    maxima &= repeatability >= config.repeatability_thr
    maxima &= reliability >= config.reliability_thr
    y, x = maxima[0, 0].nonzero().t()
    return y, x


def whole_level(net: R2D2Net, image: Tensor, config: ExtractionConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(y, x, score, descriptor) of one level's keypoints, row-major, from one pass of the network (extract.py)."""
    out = net(image)
    y, x = local_maxima(out.reliability, out.repeatability, config)
    return y, x, out.reliability[0, 0, y, x] * out.repeatability[0, 0, y, x], out.descriptors[0, :, y, x].t()


class StreamedLevel:
    """One level's keypoints from its rows of network outputs, top to bottom: the confidence maps are filled as the
    rows come, and the maxima of a row are found once the row below it exists; a chunk of descriptors is kept only
    until every row it holds is decided."""

    def __init__(self, image: Tensor, config: ExtractionConfig, dim: int) -> None:
        self.config, self.height, self.dim = config, image.shape[2], dim
        self.reliability = image.new_empty(1, 1, *image.shape[2:])
        self.repeatability = image.new_empty(1, 1, *image.shape[2:])
        self.chunks: list[tuple[int, Tensor]] = []  # (first row, 1 x dim x rows x W descriptors) not all decided
        self.filled = self.decided = 0
        self.found: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []

    def add(self, out: R2D2Output) -> None:
        rows = out.reliability.shape[2]
        self.reliability[:, :, self.filled : self.filled + rows] = out.reliability
        self.repeatability[:, :, self.filled : self.filled + rows] = out.repeatability
        self.chunks.append((self.filled, out.descriptors))
        self.filled += rows
        self.decide(self.filled if self.filled == self.height else self.filled - 1)

    def decide(self, bottom: int) -> None:
        """The keypoints of rows [decided, bottom): local_maxima on those rows and one row either side."""
        start, end = max(self.decided - 1, 0), min(bottom + 1, self.height)
        y, x = local_maxima(self.reliability[:, :, start:end], self.repeatability[:, :, start:end], self.config)
        y = y + start
        inside = (y >= self.decided) & (y < bottom)
        y, x = y[inside], x[inside]
        for top, descriptors in self.chunks:
            here = (y >= top) & (y < top + descriptors.shape[2])
            if here.any():
                yy, xx = y[here], x[here]
                score = self.reliability[0, 0, yy, xx] * self.repeatability[0, 0, yy, xx]
                self.found.append((yy, xx, score, descriptors[0, :, yy - top, xx].t()))
        self.decided = bottom
        self.chunks = [(top, d) for top, d in self.chunks if top + d.shape[2] > bottom]

    def keypoints(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if not self.found:
            empty = torch.zeros(0, dtype=torch.long, device=self.reliability.device)
            return empty, empty, self.reliability.new_zeros(0), self.reliability.new_zeros(0, self.dim)
        return tuple(torch.cat(parts) for parts in zip(*self.found, strict=True))


def streamed_level(
    net: R2D2Net, trunk: FoldedTrunk, image: Tensor, config: ExtractionConfig
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """whole_level's outputs from the folded trunk's rows (other kernels: equal up to float rounding)."""
    level, squared = StreamedLevel(image, config, net.dim), None
    for raw in trunk.feature_rows(image):
        if squared is None or squared.shape[2] < raw.shape[2]:  # chunks vary: the trunk's reach delays the first
            squared = torch.empty_like(raw)
        level.add(chunk_heads(net, raw, squared[:, :, : raw.shape[2]]))
    return level.keypoints()


def chunk_heads(net: R2D2Net, raw: Tensor, squared: Tensor) -> R2D2Output:
    """`net.heads(raw)` with x² written into `squared` (a buffer kept across chunks) and `raw` normalised in place
    (F.normalize's arithmetic): two chunk-sized tensors fewer per chunk, each a fresh mmap (page faults) under
    eval.py's allocator setting."""
    torch.mul(raw, raw, out=squared)
    reliability, repeatability = net.confidences(squared)
    return R2D2Output(normalize_channels_(raw), reliability, repeatability)


@torch.inference_mode()
def extract_multiscale(
    net: R2D2Net, image: Tensor, config: ExtractionConfig = ExtractionConfig(), streamed: bool = False
) -> Keypoints:
    """Keypoints of one ImageNet-normalised 1 x 3 x H x W image over the scale pyramid (before top-k)."""
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"expected a 1 x 3 x H x W image, got {tuple(image.shape)}")
    height, width = image.shape[-2:]
    trunk = FoldedTrunk(net) if streamed else None
    xs, ys, sizes, scores, descriptors = [], [], [], [], []
    levels = pyramid(height, width, config)
    for index, (s, h, w, extracted) in enumerate(levels):
        if index > 0:
            image = F.interpolate(image, (h, w), mode="bilinear", align_corners=False)
        if not extracted:
            continue
        y, x, score, descriptor = (
            whole_level(net, image, config) if trunk is None else streamed_level(net, trunk, image, config)
        )
        xs.append(x.float() * width / w)
        ys.append(y.float() * height / h)
        sizes.append(torch.full((len(x),), 32 / s, dtype=torch.float32, device=image.device))
        scores.append(score)
        descriptors.append(descriptor)
    if not xs:
        return Keypoints(image.new_zeros(0, 3), image.new_zeros(0, net.dim), image.new_zeros(0))
    xys = torch.stack([torch.cat(xs), torch.cat(ys), torch.cat(sizes)], dim=-1)
    return Keypoints(xys, torch.cat(descriptors), torch.cat(scores))


def top_k(keypoints: Keypoints, k: int) -> Keypoints:
    """The k best-scored keypoints in extract.py's order (numpy argsort ascending; k = 0 keeps all)."""
    order = np.argsort(keypoints.scores.cpu().numpy())[-k or None :]
    index = torch.from_numpy(order).to(keypoints.scores.device)
    return Keypoints(keypoints.xys[index], keypoints.descriptors[index], keypoints.scores[index])


def extract_keypoints(
    net: R2D2Net, image: Tensor, config: ExtractionConfig = ExtractionConfig(), streamed: bool = False
) -> Keypoints:
    """extract.py for one 3 x H x W RGB image in [0, 1]: normalise, multi-scale extraction, top-k."""
    return top_k(extract_multiscale(net, normalize_image(image[None]), config, streamed), config.top_k)


def mutual_nearest_neighbours(desc0: Tensor, desc1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Indices (i0, i1) of the mutual nearest neighbours by dot product, and their similarity
    (D2-Net's `mnn_matcher`, the matcher of R2D2's HPatches evaluation)."""
    if len(desc0) == 0 or len(desc1) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=desc0.device)
        return empty, empty, desc0.new_zeros(0)
    similarity = desc0 @ desc1.t()
    best, nn01 = similarity.max(dim=1)
    nn10 = similarity.max(dim=0)[1]
    ids0 = torch.arange(len(desc0), device=desc0.device)
    mutual = nn10[nn01] == ids0
    return ids0[mutual], nn01[mutual], best[mutual]
