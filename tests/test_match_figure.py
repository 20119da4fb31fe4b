"""Match figures are readable: wide enough, and the title says what "correct" means and what is drawn."""

from __future__ import annotations

import torch
from PIL import Image

from corrlab.tracking.figures import draw_matches, match_legend


def test_small_pair_is_drawn_wide_with_its_legend(tmp_path):
    g = torch.Generator().manual_seed(0)
    image0, image1 = torch.rand(3, 168, 128, generator=g), torch.rand(3, 168, 128, generator=g)
    kpts0 = torch.rand(500, 2, generator=g) * 120
    kpts1 = kpts0 + torch.randn(500, 2, generator=g)
    correct = (kpts1 - kpts0).norm(dim=1) <= 1.0
    path = draw_matches(image0, image1, kpts0, kpts1, tmp_path / "f.png", correct, "pair", threshold_px=3.0)
    width, height = Image.open(path).size
    assert width == 1000 and height > 168 * 1000 / 256  # 256 x 168 side by side, zoomed to 1000 px plus the title


def test_legend_says_what_correct_means_and_which_matches_are_drawn():
    correct = torch.tensor([True, False, True, True])
    assert match_legend(4, 4, correct, 3.0, "v_boat/1-2") == (
        "v_boat/1-2   4 matches, 3 correct\ngreen: correct (error <= 3 px), red: wrong; all drawn"
    )
    assert match_legend(1200, 300, None, None, "") == (
        "1200 matches\nblue: no ground truth to check them; drawn: a random 300 of 1200"
    )
