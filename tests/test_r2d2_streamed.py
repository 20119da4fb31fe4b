"""R2D2's streamed extraction (`streamed=True`): the keypoints of a level found from its rows of network outputs, as
they come, equal those of the whole maps (exactly, on hand-built maps cut at every chunk size, peaks and plateaus on
the cuts); through the folded trunk they equal the folded network run on whole levels, bit for bit, and with the real
weights they are extract.py's keypoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from corrlab.datamodules.image_io import read_image
from corrlab.models.r2d2.checkpoint import load_official
from corrlab.models.r2d2.extract import (
    ExtractionConfig,
    StreamedLevel,
    extract_keypoints,
    extract_multiscale,
    local_maxima,
)
from corrlab.models.r2d2.folded_trunk import FoldedTrunk
from corrlab.models.r2d2.patchnet import R2D2Net, R2D2Output, fast_quad_l2net_confcfs, quad_l2net_confcfs
from corrlab.modules.r2d2 import R2D2
from tests.conftest import shared_data
from tests.test_r2d2_folded_trunk import dense_raw, randomised


def hand_built_maps() -> R2D2Output:
    """9 x 7 maps: peaks on rows 0 and 8 (the first and last), a vertical plateau across rows 4-5, a peak beaten by
    the row below it (6 by 7) and one by the row above it (3 by 2), an unreliable peak; descriptors = (row, column, 1)
    normalised."""
    repeatability = torch.zeros(1, 1, 9, 7)
    for (y, x), value in {
        (0, 2): 0.8,
        (2, 3): 0.9,
        (3, 3): 0.85,
        (3, 5): 0.9,
        (4, 1): 0.95,
        (5, 1): 0.95,
        (6, 4): 0.8,
        (7, 4): 0.85,
    }.items():
        repeatability[0, 0, y, x] = value
    repeatability[0, 0, 8, 6] = 0.75
    reliability = torch.full_like(repeatability, 0.9)
    reliability[0, 0, 3, 5] = 0.5
    ys, xs = torch.meshgrid(torch.arange(9.0), torch.arange(7.0), indexing="ij")
    descriptors = F.normalize(torch.stack([ys, xs, torch.ones_like(xs)])[None], dim=1)
    return R2D2Output(descriptors, reliability, repeatability)


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 9])
def test_streamed_level_equals_the_whole_maps_at_every_chunk_size(rows):
    maps, config = hand_built_maps(), ExtractionConfig()
    y, x = local_maxima(maps.reliability, maps.repeatability, config)
    assert list(zip(y.tolist(), x.tolist(), strict=True)) == [(0, 2), (2, 3), (4, 1), (5, 1), (7, 4), (8, 6)]  # by hand
    level = StreamedLevel(maps.reliability, config, dim=3)
    for top in range(0, 9, rows):
        rows_of = (m[:, :, top : top + rows] for m in (maps.descriptors, maps.reliability, maps.repeatability))
        level.add(R2D2Output(*rows_of))
    got_y, got_x, scores, descriptors = level.keypoints()
    assert torch.equal(got_y, y) and torch.equal(got_x, x)  # same pixels, row-major
    assert torch.equal(scores, maps.reliability[0, 0, y, x] * maps.repeatability[0, 0, y, x])
    assert torch.equal(descriptors, maps.descriptors[0, :, y, x].t())


def test_a_level_without_keypoints_gives_empty_tensors_of_the_descriptor_width():
    maps = hand_built_maps()
    level = StreamedLevel(maps.reliability, ExtractionConfig(repeatability_thr=0.99), dim=3)
    level.add(maps)
    y, x, scores, descriptors = level.keypoints()
    assert len(y) == len(x) == len(scores) == 0 and descriptors.shape == (0, 3)


class DenseFolded(torch.nn.Module):
    """The folded trunk's convolutions run over each whole level, then the network's heads."""

    def __init__(self, net: R2D2Net) -> None:
        super().__init__()
        self.net, self.dim = net, net.dim

    def forward(self, image: torch.Tensor) -> R2D2Output:
        return self.net.heads(dense_raw(FoldedTrunk(self.net), image))


@pytest.mark.filterwarnings("error")  # e.g. a reused buffer that torch has to resize
def test_streamed_extraction_equals_the_folded_network_on_whole_levels():
    # bit for bit: the rows streamed through the folded trunk are its whole-map convolutions (the folded trunk's own
    # tests bound those against the plain forward; the real weights keep extract.py's keypoints, below)
    net = randomised(quad_l2net_confcfs(), seed=3)
    image = torch.randn(1, 3, 150, 134, generator=torch.Generator().manual_seed(4))
    config = ExtractionConfig(min_size=100, reliability_thr=0.0, repeatability_thr=0.0)  # 150, 126, 106: 3 levels
    whole, streamed = extract_multiscale(DenseFolded(net), image, config), extract_multiscale(net, image, config, True)
    assert len(whole) > 1000
    assert torch.equal(streamed.xys, whole.xys)  # same keypoints, same order
    assert torch.equal(streamed.scores, whole.scores) and torch.equal(streamed.descriptors, whole.descriptors)


@pytest.mark.slow
def test_streamed_keeps_extract_py_keypoints_with_the_real_weights():
    # v_adam/1 at max size 384: extract.py's 991 keypoints (tests/test_r2d2_real.py), descriptors within 1e-5
    net = load_official(shared_data("weights", "r2d2", "r2d2_WASF_N16.pt"))
    image = read_image(shared_data("hpatches", "partial_pairs", "v_adam", "1.ppm"))
    config = ExtractionConfig(max_size=384)
    exact, streamed = extract_keypoints(net, image, config), extract_keypoints(net, image, config, streamed=True)
    assert len(streamed) == len(exact) == 991
    order_exact, order_streamed = (np.lexsort(k.xys.numpy().T[::-1]) for k in (exact, streamed))
    assert torch.equal(streamed.xys[order_streamed], exact.xys[order_exact])
    torch.testing.assert_close(streamed.descriptors[order_streamed], exact.descriptors[order_exact], rtol=0, atol=1e-5)
    torch.testing.assert_close(streamed.scores[order_streamed], exact.scores[order_exact], rtol=0, atol=1e-5)


def test_streamed_refuses_the_fast_variants_by_name():
    module = R2D2(architecture="Quad_L2Net_ConfCFS()", streamed=True)
    assert module.streamed
    with pytest.raises(ValueError, match="faster2d2.*model.streamed=false"):
        module.checked(fast_quad_l2net_confcfs())
