"""R2D2 with the released r2d2_WASF_N16.pt on real HPatches images against values recorded from naver/r2d2's
extract.py (`python bench/r2d2_fidelity.py --reference ... --max-size 384 --record`; our outputs were
bit-identical there).  A max size of 384 keeps the test short; bench/r2d2_fidelity.py checks the defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corrlab.datamodules.image_io import read_image
from corrlab.models.r2d2.checkpoint import load_official
from corrlab.models.r2d2.extract import ExtractionConfig, extract_keypoints, mutual_nearest_neighbours
from tests.conftest import shared_data

# image: (count, the 3 best keypoints (x, y, 32/s), sum of scores, sum of |descriptors|) from extract.py
REFERENCE = {
    "v_adam/1.ppm": (
        991,
        [[62.0, 196.0, 64.0], [166.3866, 334.1418, 53.8174], [62.1849, 194.7761, 53.8174]],
        944.3717,
        6832.894,
    ),
    "v_adam/3.ppm": (
        860,
        [[274.0, 208.0, 64.0], [100.8403, 48.694, 53.8174], [273.9496, 208.209, 53.8174]],
        799.9530,
        6065.996,
    ),
    "v_calder/1.ppm": (
        1135,
        [[134.4, 836.64, 107.6347], [134.4, 789.6, 107.6347], [135.9101, 792.809, 90.5097]],
        1087.1062,
        8075.374,
    ),
}
# v_adam 1-3 by the D2-Net notebook on extract.py's outputs: 224 mutual matches, MMA@1/3/5
ADAM_MATCHES, ADAM_MMA = 224, (0.2679, 0.8125, 0.9018)


@pytest.fixture(scope="module")
def keypoints():
    net = load_official(shared_data("weights", "r2d2", "r2d2_WASF_N16.pt"))
    folder = shared_data("hpatches", "partial_pairs")
    config = ExtractionConfig(max_size=384)
    return {name: extract_keypoints(net, read_image(folder / name), config) for name in REFERENCE}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_keypoints_equal_the_reference(keypoints, name):
    count, best, score_sum, descriptor_sum = REFERENCE[name]
    ours = keypoints[name]
    assert len(ours) == count
    np.testing.assert_allclose(ours.xys[-3:].numpy(), best, atol=1e-4)
    assert float(ours.scores.sum()) == pytest.approx(score_sum, abs=1e-3)
    assert float(ours.descriptors.abs().sum()) == pytest.approx(descriptor_sum, abs=1e-2)
    assert (ours.scores[1:] >= ours.scores[:-1]).all()  # extract.py's ascending order


@pytest.mark.slow
def test_matches_and_mma_equal_the_reference(keypoints):
    a, b = keypoints["v_adam/1.ppm"], keypoints["v_adam/3.ppm"]
    i0, i1, _ = mutual_nearest_neighbours(a.descriptors, b.descriptors)
    assert len(i0) == ADAM_MATCHES
    H = torch.from_numpy(np.loadtxt(shared_data("hpatches", "partial_pairs", "v_adam", "H_1_3"))).float()
    projected = torch.cat([a.xys[i0, :2], torch.ones(len(i0), 1)], dim=1) @ H.t()
    dist = (projected[:, :2] / projected[:, 2:] - b.xys[i1, :2]).norm(dim=1)
    mma = [float((dist <= t).float().mean()) for t in (1, 3, 5)]
    assert mma == pytest.approx(ADAM_MMA, abs=1e-4)
