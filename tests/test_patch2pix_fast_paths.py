"""Patch2Pix's faster inference paths against literal computations: the regressor input written in place (any
layout / dtype) and the bfloat16 regressor option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corrlab.models.patch2pix.local_patches import pair_patches
from corrlab.models.patch2pix.refinement import reduced_precision_copy, regress_matches
from corrlab.modules.patch2pix import Patch2Pix

STRIDES = (1, 2, 4, 8)


def random_levels(generator: torch.Generator, height: int = 48, width: int = 64) -> list[torch.Tensor]:
    return [torch.randn(2, c, height // s, width // s, generator=generator) for c, s in zip((3, 4, 5, 6), STRIDES)]


def literal_patch(levels: list[torch.Tensor], batch: int, x: int, y: int) -> torch.Tensor:
    """(C, 16, 16): the reference's per-match read (numpy floor-division and clipping per level), then L2 over C."""
    height, width = levels[0].shape[-2:]
    grid = np.arange(16) - 8
    columns = []
    for level, ds in zip(levels, STRIDES):
        ys = np.clip(np.floor_divide(y + grid, ds), 0, height // ds - 1)
        xs = np.clip(np.floor_divide(x + grid, ds), 0, width // ds - 1)
        columns.append(level[batch][:, ys][:, :, xs])
    patch = torch.cat(columns)
    return patch / torch.pow(torch.sum(torch.pow(patch, 2), dim=0) + 1e-6, 0.5)


def test_regressor_input_is_the_literal_patches_in_every_layout():
    generator = torch.Generator().manual_seed(0)
    levels0, levels1 = random_levels(generator), random_levels(generator)
    # borders, negative and fractional coordinates (truncated towards zero as the reference's .long())
    matches = torch.tensor([[0.0, 0.0, 63.0, 47.0], [5.7, 40.2, 30.0, 2.9], [-0.5, 12.0, 60.4, 44.0]])
    expected = torch.stack(
        [
            torch.cat([literal_patch(levels0, 1, int(x0), int(y0)), literal_patch(levels1, 1, int(x1), int(y1))])
            for x0, y0, x1, y1 in matches.tolist()
        ]
    )
    default = pair_patches(levels0, levels1, STRIDES, 1, matches, 16)
    assert default.is_contiguous() and torch.equal(default, expected)
    fast = pair_patches(levels0, levels1, STRIDES, 1, matches, 16, torch.bfloat16, torch.channels_last)
    assert fast.dtype == torch.bfloat16 and fast.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fast, expected.to(torch.bfloat16))  # rounded once, from the float32 values


@pytest.mark.slow
def test_bfloat16_regression_follows_float32_within_its_precision():
    torch.manual_seed(0)
    net = Patch2Pix(max_side=None).net.eval()
    levels = net.patch_features(net.features(torch.rand(1, 3, 64, 96)))
    matches = torch.rand(16, 4) * torch.tensor([95.0, 63.0, 95.0, 63.0])
    weights = {k: v.clone() for k, v in net.regress_mid.state_dict().items()}
    with torch.no_grad():
        reference, probability = regress_matches(net.regress_mid, levels, levels, net.patch_strides, 0, matches, 16, 8)
        copy = reduced_precision_copy(net.regress_mid, torch.bfloat16)
        fine, fast_probability = regress_matches(
            copy, levels, levels, net.patch_strides, 0, matches, 16, 8, dtype=torch.bfloat16
        )
        outputs = [net.regress_mid(pair_patches(levels, levels, net.patch_strides, 0, matches, 16))]
        outputs.append(copy(pair_patches(levels, levels, net.patch_strides, 0, matches, 16, torch.bfloat16)).float())
    assert fine.dtype == torch.float32 and not torch.equal(fine, reference)  # it did run in bfloat16
    # raw outputs agree to bfloat16's 8-bit mantissa relative to their scale; refined matches follow
    scale = outputs[0].abs().max()
    assert (outputs[1] - outputs[0]).abs().max() < 0.03 * scale
    torch.testing.assert_close(fast_probability, probability, atol=0.02, rtol=0)
    assert all(
        torch.equal(v, weights[k]) and v.dtype == weights[k].dtype for k, v in net.regress_mid.state_dict().items()
    )


def test_regressor_dtype_is_checked():
    with pytest.raises(ValueError, match=r"regressor_dtype: 'float16' is not one of \['bfloat16', 'float32'\]"):
        Patch2Pix(regressor_dtype="float16")
