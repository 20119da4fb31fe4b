"""PUMP matching: the streamed single-scale matcher against an independent naive implementation,
invariance to chunking and backend, geometric sanity (translation, scale, rotation), post-filter,
densify at any resize, the reference's output file, and the Matches contract at odd sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.synthetic import skimage_photo_dir
from corrlab.geometry.scale_rotation_code import decode_scale_rot, encode_scale_rot
from corrlab.matches import Matches
from corrlab.models.convmixer import ConvMixer
from corrlab.models.pump.matcher import PumpMatcher
from corrlab.models.pump.multi_scale import MultiScalePump
from corrlab.models.pump.output import load_corres
from corrlab.models.pump.post_filter import densify, filter_corres
from corrlab.models.pump.recursive import RecursivePump
from corrlab.models.pump.single_scale import PyramidMatcher
from corrlab.modules.pump import PUMP
from corrlab.ops import pyramid
from tests.helpers.pump_naive import naive_single_scale


def smooth_descriptors(dim: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Random unit descriptors, smoothed over ~2 px so that neighbouring pixels look alike."""
    noise = torch.randn(1, dim, height, width, generator=torch.Generator().manual_seed(seed))
    return F.normalize(F.avg_pool2d(noise, 3, 1, 1), dim=1)[0]


def cells_of(desc: torch.Tensor) -> torch.Tensor:
    return desc[:, 2::4, 2::4].contiguous()


def sort_rows(rows: torch.Tensor) -> torch.Tensor:
    return rows[np.lexsort((rows[:, 0].numpy(), rows[:, 1].numpy()))]


@pytest.mark.slow
def test_streamed_matcher_equals_naive_reference_algorithm():
    desc1 = smooth_descriptors(16, 22, 25, seed=0)
    desc2 = F.normalize(torch.roll(desc1, (3, -2), (1, 2)) + 0.3 * smooth_descriptors(16, 22, 25, seed=1), dim=0)[
        :, :20, :24
    ]
    expected = naive_single_scale(cells_of(desc1), desc2)
    ours = PyramidMatcher(chunk_bytes=1)(cells_of(desc1), desc2).reciprocal()
    assert len(expected) > 5
    ours, expected = sort_rows(ours), sort_rows(expected)
    assert torch.equal(ours[:, :4], expected[:, :4])
    assert torch.allclose(ours[:, 4], expected[:, 4], rtol=1e-5)


def test_level0_by_convolution_reproduces_the_naive_reference_bitwise():
    # level0="conv" is the reference's reduction order: scores too are equal, not just close (128-D, as PUMP's
    # descriptors and 24 x 24 maps: there a matrix product rounds differently from the convolution on most elements)
    desc1 = smooth_descriptors(128, 24, 24, seed=6)
    desc2 = F.normalize(torch.roll(desc1, (2, 3), (1, 2)) + 0.5 * smooth_descriptors(128, 24, 24, seed=7), dim=0)
    expected = sort_rows(naive_single_scale(cells_of(desc1), desc2))
    ours = sort_rows(PyramidMatcher(chunk_bytes=1, level0="conv")(cells_of(desc1), desc2).reciprocal())
    assert len(expected) > 10
    assert torch.equal(ours, expected)


def test_unknown_level0_is_refused():
    with pytest.raises(ValueError, match="level0 must be one of"):
        PyramidMatcher(level0="fft")


def raw_tensors(raw):
    return raw.pos1, raw.score1, raw.pos2, raw.score2, raw.best1, raw.best2


def test_results_do_not_depend_on_chunk_size_or_backend(monkeypatch):
    desc1, desc2 = smooth_descriptors(32, 36, 44, seed=2), smooth_descriptors(32, 40, 28, seed=3)
    reference = raw_tensors(PyramidMatcher(chunk_bytes=2**30)(cells_of(desc1), desc2))
    for chunk in (1, 40_000):
        assert all(
            torch.equal(a, b)
            for a, b in zip(raw_tensors(PyramidMatcher(chunk_bytes=chunk)(cells_of(desc1), desc2)), reference)
        )
    monkeypatch.setenv("CORRLAB_OPS", "torch")
    assert all(
        torch.equal(a, b) for a, b in zip(raw_tensors(PyramidMatcher(chunk_bytes=1)(cells_of(desc1), desc2)), reference)
    )


@pytest.mark.parametrize("backend", ["torch", "cpp"])
def test_activation_after_max_pool_equals_the_reference_order_bitwise(monkeypatch, backend):
    # our forward pass activates level 0 after pooling (1/4 of the work); the reference activates first
    monkeypatch.setenv("CORRLAB_OPS", backend)
    desc1, desc2 = smooth_descriptors(16, 22, 25, seed=4), smooth_descriptors(16, 21, 27, seed=5)
    matcher = PyramidMatcher()
    cells = cells_of(desc1)
    chunks, buffer = matcher.row_chunks(cells, desc2)
    level0 = matcher.level0(cells, desc2, chunks[0], buffer).clone()
    assert (level0 < 0).any() and (level0 > 0).any()
    ours = matcher.activate_(pyramid.max_pool(level0.clone()))
    reference_order = pyramid.max_pool(matcher.activate_(level0.clone()))
    assert torch.equal(ours, reference_order)


def test_translation_is_recovered():
    desc1 = smooth_descriptors(32, 48, 64, seed=4)
    desc2 = torch.roll(desc1, (4, 8), (1, 2))  # image 2 = image 1 moved by (+8, +4), wrapping around
    corres = PyramidMatcher()(cells_of(desc1), desc2).reciprocal()
    assert len(corres) > 100
    inside = (corres[:, 0] < 64 - 8) & (corres[:, 1] < 48 - 4)
    shift = corres[inside, 2:4] - corres[inside, 0:2]
    assert (shift == torch.tensor([8.0, 4.0])).all(1).float().mean() > 0.95


def photo(size: int = 128) -> torch.Tensor:
    image = read_image(skimage_photo_dir() / "astronaut.png")
    return F.interpolate(image[None], size=(size, size), mode="area")[0]


def texture(size: int, seed: int = 1) -> torch.Tensor:
    """A smooth random colour texture (3, size, size): distinctive everywhere."""
    noise = torch.rand(1, 3, size + 2, size + 2, generator=torch.Generator().manual_seed(seed))
    return F.avg_pool2d(noise, 3, 1)[0]


class PatchDescriptor(nn.Module):
    """Normalised 5x5 colour patches: a content-only descriptor (a randomly initialised ConvMixer is
    nearly constant, so it mostly matches every pixel to the same position)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        h, w = h // 4 * 4, w // 4 * 4
        images = images[:, :, :h, :w] - images[:, :, :h, :w].mean((2, 3), keepdim=True)
        return F.normalize(F.unfold(images, 5, padding=2).view(b, -1, h, w), dim=1)


@pytest.fixture(scope="module")
def patch_matcher() -> PumpMatcher:
    return PumpMatcher(PatchDescriptor(), PyramidMatcher())


@pytest.mark.slow
def test_multi_scale_finds_a_scale_change(patch_matcher):
    image1 = F.interpolate(texture(64)[None], scale_factor=2, mode="bilinear")[0]  # smooth enough to shrink
    image2 = F.interpolate(image1[None], scale_factor=0.5, mode="area")[0]  # image 2 = image 1 at half size
    corres = MultiScalePump(patch_matcher, max_scale=2.0)(image1, image2)
    assert len(corres) > 50
    expected = (corres[:, 0:2] + 0.5) / 2 - 0.5
    good = (corres[:, 2:4] - expected).norm(dim=1) < 2
    assert good.float().mean() > 0.8
    scales, _ = decode_scale_rot(corres[good, 5].long().numpy())
    assert np.median(scales) == pytest.approx(2**-1)  # found by the run that shrank image 1 by 2


@pytest.mark.slow
def test_multi_scale_with_rotations_finds_a_quarter_turn(patch_matcher):
    image1 = texture(96)
    image2 = torch.rot90(image1, 1, dims=(1, 2))  # 90 degrees counter-clockwise: (x, y) -> (y, 95 - x)
    corres = MultiScalePump(patch_matcher, max_scale=1.0, max_rot=90)(image1, image2)
    expected = torch.stack([corres[:, 1], 95 - corres[:, 0]], 1)
    good = (corres[:, 2:4] - expected).norm(dim=1) < 2
    assert len(corres) > 50 and good.float().mean() > 0.8
    _, rotations = decode_scale_rot(corres[good, 5].long().numpy())
    assert set(np.unique(rotations)) == {90} or set(np.unique(rotations)) == {-90}


class DescriptorPerRun(MultiScalePump):
    """The multi-scale matcher describing its inputs afresh at every scale, as the reference does."""

    def unrotated_dense(self, whole, side, factor, image):
        return self.matcher.dense(image)


@pytest.mark.slow
def test_multi_scale_describes_each_input_once_with_the_same_matches(patch_matcher, monkeypatch):
    image1 = F.interpolate(texture(48)[None], scale_factor=2, mode="bilinear")[0]
    image2 = F.interpolate(image1[None], scale_factor=0.75, mode="bilinear")[0]
    calls = []
    describe = patch_matcher.dense
    monkeypatch.setattr(patch_matcher, "dense", lambda image: calls.append(tuple(image.shape)) or describe(image))
    # 5 scales (1/2 .. 2): the unrotated inputs are image 1 and 2 whole, and each shrunk by 2^-1/2 and 1/2:
    # 6 descriptors; each extra rotation (+-45 degrees) of the first image is described in its own run.
    # Afresh: per scale, the second image once and the first once per rotation.
    for max_rot, fresh_calls, unique in ((0, 5 * 2, 6), (45, 5 * (1 + 3), 6 + 2 * 5)):
        calls.clear()
        fresh = DescriptorPerRun(patch_matcher, max_scale=2.0, max_rot=max_rot)(image1, image2)
        assert len(calls) == fresh_calls
        calls.clear()
        corres = MultiScalePump(patch_matcher, max_scale=2.0, max_rot=max_rot)(image1, image2)
        assert len(corres) > 20 and torch.equal(corres, fresh)
        assert len(calls) == unique


def test_scale_rot_codes_round_trip():
    for scale in (0.25, 0.5**0.5, 1.0, 2.0, 4.0):
        for rotation in (-135, -45, 0, 45, 90, 180):
            s, r = decode_scale_rot(encode_scale_rot(scale, rotation))
            assert s == pytest.approx(scale) and (r - rotation) % 360 == 0


@pytest.mark.slow
def test_recursive_puts_tiles_back_at_their_offsets(patch_matcher):
    big = texture(148)
    image1, image2 = big[:, :128, :128], big[:, 8:136, 12:140]  # image 2 = image 1 moved by (-12, -8)
    matcher = RecursivePump(patch_matcher, coarse_size=64, fine_size=80, score_thr=0.0)
    corres = matcher(image1, image2)
    assert len(corres) > 500
    assert ((corres[:, 2:4] - corres[:, 0:2] + torch.tensor([12.0, 8.0])).norm(dim=1) < 2).float().mean() > 0.95


def test_post_filter_keeps_large_consistent_groups():
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.arange(10) * 4.0, np.arange(8) * 4.0), -1).reshape(-1, 2)  # 80 matches 4 px apart
    good = np.concatenate([grid, grid + [30.0, 5.0], np.ones((80, 1)), np.zeros((80, 1))], 1)
    outliers = np.concatenate(
        [rng.uniform(100, 200, (20, 2)), rng.uniform(100, 200, (20, 2)), np.ones((20, 1)), np.zeros((20, 1))], 1
    )
    kept = filter_corres(np.concatenate([good, outliers]), locality=2, min_cc_size=50)
    assert len(kept) == 80
    assert np.allclose(kept[:, 4], 1 + np.log2(80))
    flipped = good.copy()
    flipped[:, 2:4] = 200 - flipped[:, 2:4]  # displacements reversed: 180 degrees off, never consistent
    assert len(filter_corres(flipped, min_cc_size=50)) == 0


def affine_matches(height: int, width: int, step: int = 7) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height:step, 0:width:step]
    p0 = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    A = np.array([[0.9, 0.1, 5.0], [-0.05, 1.1, -3.0]])
    return p0, p0 @ A[:, :2].T + A[:, 2]


def test_densify_interpolates_an_affine_field_exactly():
    p0, p1 = affine_matches(40, 50)
    dense, inside = densify(p0, p1, 45, 52)
    ys, xs = np.mgrid[0:45, 0:52]
    expected = np.stack([0.9 * xs + 0.1 * ys + 5, -0.05 * xs + 1.1 * ys - 3], -1)
    assert np.allclose(dense[inside], expected[inside], atol=1e-6)
    assert inside.mean() > 0.7 and dense.shape == (45, 52, 2)


def test_densified_output_file_is_right_after_a_resize(tmp_path):
    # the batch images are the originals (300 x 400) resized by 1/2; matches are an affine map in batch pixels
    s = 0.5
    p0, p1 = affine_matches(150, 200, step=6)
    kpts0, kpts1 = torch.from_numpy(p0).float(), torch.from_numpy(p1).float()
    matches = Matches(kpts0, kpts1, torch.ones(len(p0)), torch.zeros(len(p0), dtype=torch.long))
    batch = {"scale0": torch.tensor([[s, s]]), "scale1": torch.tensor([[s, s]]), "size0": torch.tensor([[300, 400]])}
    module = PUMP(post_filter={"densify": True})
    rows = load_corres(module.export_corres(batch, 0, matches, tmp_path / "dense.corres"))
    assert rows.shape == (300 * 400, 4)  # the whole ORIGINAL image-1 grid (the reference gives 150 x 200 here)
    x, y = rows[:, 0], rows[:, 1]
    # the same affine map in original pixels: x_o = (x_b + 0.5) / s - 0.5
    xb, yb = (x + 0.5) * s - 0.5, (y + 0.5) * s - 0.5
    expected = np.stack([0.9 * xb + 0.1 * yb + 5, -0.05 * xb + 1.1 * yb - 3], 1)
    expected = (expected + 0.5) / s - 0.5
    centre = (xb > 10) & (xb < 150) & (yb > 10) & (yb < 120)
    assert np.abs(rows[centre, 2:4] - expected[centre]).max() < 1e-3


def test_sparse_output_file_has_the_reference_columns(tmp_path):
    matches = Matches(
        torch.tensor([[2.0, 2.0]]), torch.tensor([[5.0, 7.0]]), torch.tensor([1.5]), torch.zeros(1, dtype=torch.long)
    )
    matches.extras["scale_rot_code"] = torch.tensor([8.0])
    batch = {
        "scale0": torch.tensor([[0.5, 0.5]]),
        "scale1": torch.tensor([[1.0, 1.0]]),
        "size0": torch.tensor([[20, 20]]),
    }
    rows = load_corres(PUMP().export_corres(batch, 0, matches, tmp_path / "out.npy"))
    assert rows.dtype == np.float32 and rows.tolist() == [[4.5, 4.5, 5.0, 7.0, 1.5, 8.0]]


@pytest.mark.slow
def test_match_contract_at_odd_sizes():
    torch.manual_seed(0)
    module = PUMP(matching={"resize": 96}, post_filter={"densify": True}).eval()
    batch = {"image0": photo(339)[:, :257], "image1": photo(301)[:, :, :211]}
    batch = {k: v[None] for k, v in batch.items()} | {"name": ["odd_sizes"]}
    matches = module.match(batch)
    assert len(matches) > 10 and (matches.batch_idx == 0).all()
    assert (matches.kpts0 >= 0).all() and (matches.kpts0[:, 0] <= 338).all() and (matches.kpts0[:, 1] <= 256).all()
    assert (matches.kpts1 >= 0).all() and (matches.kpts1[:, 0] <= 210).all() and (matches.kpts1[:, 1] <= 300).all()
    assert torch.isfinite(matches.scores).all()
    assert matches.warp.shape == (1, 257, 339, 2) and matches.certainty.shape == (1, 257, 339)
    # transfer samples the densified warp: at a match's own point, deep inside the matches' hull, it gives that match
    # back (a half-pixel slip of the warp's frame would move every point by about 0.5 px)
    kpts0, kpts1, inside = matches.kpts0, matches.kpts1, matches.certainty[0] > 0
    x, y = kpts0[:, 0].floor().long(), kpts0[:, 1].floor().long()
    interior = (x >= 1) & (y >= 1) & (x < 339 - 2) & (y < 257 - 2)
    for dy in (-1, 0, 1, 2):
        for dx in (-1, 0, 1, 2):
            interior &= inside[(y + dy).clamp(0, 256), (x + dx).clamp(0, 338)]
    unique = torch.cdist(kpts0, kpts0).lt(1e-6).sum(1) == 1  # a point matched twice is interpolated between both
    chosen = interior & unique
    error = (module.transfer(batch, kpts0[None, chosen])[0] - kpts1[chosen]).norm(dim=1)
    assert chosen.sum() > 20 and error.median() < 1e-3 and (error < 0.05).float().mean() > 0.6  # measured 0.71


def test_non_finite_descriptors_are_an_error_naming_their_source(patch_matcher):
    image = texture(32)
    broken = image.clone()
    broken[0, 5, 7] = float("nan")
    with pytest.raises(ValueError, match="not finite.*the image"):
        patch_matcher(broken, image)
    diverged = PumpMatcher(ConvMixer(), PyramidMatcher())
    with torch.no_grad():
        diverged.descriptor[0].weight[0, 0] = float("inf")  # a diverged training run's weights
    with pytest.raises(ValueError, match="not finite.*weights"):
        diverged(image, image)
