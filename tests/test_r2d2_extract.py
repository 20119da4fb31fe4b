"""R2D2 extraction as extract.py does it: the scale pyramid (hand-computed), 3x3 NMS with inclusive
thresholds, coordinates and patch sizes per scale, cascaded resizing, top-k order, mutual NN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from corrlab.models.r2d2.extract import (
    ExtractionConfig,
    Keypoints,
    extract_multiscale,
    local_maxima,
    mutual_nearest_neighbours,
    normalize_image,
    pyramid,
    top_k,
)
from corrlab.models.r2d2.patchnet import R2D2Output


def test_pyramid_of_a_600_x_450_image():
    # s = 2^(-k/4) while s >= 256/600 = 0.4267: k = 0..4 (k = 5 gives 0.4204); sizes round(450 s) x round(600 s)
    levels = pyramid(450, 600, ExtractionConfig())
    assert [(h, w) for _, h, w, _ in levels] == [(450, 600), (378, 505), (318, 424), (268, 357), (225, 300)]
    assert [e for *_, e in levels] == [True] * 5
    assert levels[3][0] == pytest.approx(2**-0.75)


def test_pyramid_skips_scales_above_max_size_and_below_min_scale():
    # longest 1200: s = 1 > 1024 / 1200 = 0.853 is visited (downscaled from) but not extracted; 0.841 is
    levels = pyramid(900, 1200, ExtractionConfig())
    assert [e for *_, e in levels][:2] == [False, True] and levels[1][1:3] == (757, 1009)
    # down to 256 / 1200 = 0.2133: k = 0..8 (s = 0.25), not k = 9 (s = 0.2102)
    assert len(levels) == 9 and levels[-1][:3] == (pytest.approx(0.25), 225, 300)
    limited = pyramid(900, 1200, ExtractionConfig(min_scale=0.5))
    assert [round(s, 4) for s, *_ in limited] == [1.0, 0.8409, 0.7071, 0.5946, 0.5]


def test_pyramid_of_an_image_smaller_than_min_size_is_its_own_size():
    assert pyramid(100, 120, ExtractionConfig()) == [(1.0, 100, 120, True)]


def test_local_maxima_are_3x3_peaks_with_inclusive_thresholds():
    repeatability = torch.zeros(1, 1, 5, 6)
    repeatability[0, 0, 1, 1] = 0.7  # peak exactly at the threshold: kept
    repeatability[0, 0, 1, 2] = 0.6  # neighbour of a higher peak
    repeatability[0, 0, 3, 4] = 0.9
    repeatability[0, 0, 3, 5] = 0.9  # plateau: both equal the 3x3 max
    repeatability[0, 0, 4, 0] = 0.69  # under the threshold
    reliability = torch.full_like(repeatability, 0.8)
    reliability[0, 0, 3, 5] = 0.699  # unreliable
    y, x = local_maxima(reliability, repeatability, ExtractionConfig())
    assert list(zip(y.tolist(), x.tolist(), strict=True)) == [(1, 1), (3, 4)]


class StubNet(torch.nn.Module):
    """Reliability 1; repeatability with a single peak at the pixel nearest to a fixed point of the
    original image; descriptors = the pixel's position.  Records the input images."""

    dim = 2

    def __init__(self, point: tuple[float, float], original: tuple[int, int]) -> None:
        super().__init__()
        self.point, self.original, self.inputs = point, original, []

    def forward(self, image):
        self.inputs.append(image.clone())
        h, w = image.shape[-2:]
        ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
        px, py = self.point[0] * w / self.original[1], self.point[1] * h / self.original[0]
        repeatability = (1 - ((xs - px) ** 2 + (ys - py) ** 2) / 1e4).clamp(min=0)[None, None]
        descriptors = F.normalize(torch.stack([xs + 1, ys + 1])[None], dim=1)
        return R2D2Output(descriptors, torch.ones_like(repeatability), repeatability)


def test_multiscale_coordinates_sizes_and_cascaded_resizing():
    net = StubNet(point=(201.0, 101.0), original=(300, 400))
    image = torch.randn(1, 3, 300, 400)
    keypoints = extract_multiscale(net, image, ExtractionConfig(repeatability_thr=0.5))
    levels = pyramid(300, 400, ExtractionConfig())
    assert [tuple(i.shape[-2:]) for i in net.inputs] == [(h, w) for _, h, w, _ in levels]
    second = F.interpolate(image, levels[1][1:3], mode="bilinear", align_corners=False)
    third = F.interpolate(second, levels[2][1:3], mode="bilinear", align_corners=False)
    assert torch.equal(net.inputs[2], third)  # resized from the previous level, not from the original
    assert len(keypoints) == len(levels)  # one peak per level
    for (s, h, w, _), xys in zip(levels, keypoints.xys.tolist(), strict=True):
        px, py = round(201 * w / 400), round(101 * h / 300)  # the peak pixel at that level
        assert xys == pytest.approx([px * 400 / w, py * 300 / h, 32 / s])
    assert torch.allclose(keypoints.scores, 1 - torch.zeros(len(levels)), atol=1e-3)


def test_top_k_keeps_the_best_in_ascending_order():
    scores = torch.tensor([0.5, 0.9, 0.1, 0.7])
    keypoints = Keypoints(torch.arange(12.0).reshape(4, 3), torch.eye(4), scores)
    best = top_k(keypoints, 2)
    assert best.scores.tolist() == pytest.approx([0.7, 0.9]) and best.xys[:, 0].tolist() == [9.0, 3.0]
    assert len(top_k(keypoints, 0)) == 4 and len(top_k(keypoints, 10)) == 4


def test_mutual_nearest_neighbours():
    desc0 = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), dim=1)
    desc1 = F.normalize(torch.tensor([[1.0, 0.05], [0.1, 1.0]]), dim=1)
    i0, i1, similarity = mutual_nearest_neighbours(desc0, desc1)
    assert i0.tolist() == [0, 2] and i1.tolist() == [0, 1]  # desc0[1] -> desc1[0] is not mutual
    torch.testing.assert_close(similarity, (desc0[[0, 2]] * desc1[[0, 1]]).sum(1))
    assert len(mutual_nearest_neighbours(desc0, desc1[:0])[0]) == 0


def test_normalisation_is_imagenet_mean_std():
    image = torch.tensor([0.485, 0.456 + 0.224, 0.406 - 0.225]).reshape(1, 3, 1, 1)
    torch.testing.assert_close(normalize_image(image).flatten(), torch.tensor([0.0, 1.0, -1.0]))
