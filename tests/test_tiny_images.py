"""Images too small for PUMP are refused naming the image (or pair) and the minimum size."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from corrlab.models.convmixer import ConvMixer
from corrlab.models.pump import cli as pump_cli
from corrlab.modules.pump import PUMP


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("pump") / "PUMP.pt"
    torch.save(ConvMixer().state_dict(), path)
    return path


@pytest.mark.parametrize("height,width", [(1, 1), (3, 300)])
def test_cli_names_the_tiny_image_and_the_minimum(tmp_path, weights, height, width):
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((height, width, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "ok.png"), np.full((32, 32, 3), 128, np.uint8))
    args = ["--img1", str(tmp_path / "ok.png"), "--img2", str(tmp_path / "tiny.png"), "--weights", str(weights)]
    with pytest.raises(SystemExit) as error:
        pump_cli.main([*args, "--output", str(tmp_path / "out.npz")])
    message = str(error.value.code)
    assert f"tiny.png' (longer side resized to 512) is {height}x{width} pixels" in message
    assert "at least 4 pixels on each side" in message


def test_module_names_the_pair_and_the_minimum():
    batch = {"image0": torch.rand(1, 3, 32, 32), "image1": torch.rand(1, 3, 3, 300), "name": ["scene/a-b"]}
    with pytest.raises(ValueError, match=r"image1 of pair 'scene/a-b' \(3x300 before resizing\).*at least 4 pixels"):
        PUMP().match(batch)


def test_elongated_image_too_thin_after_the_max_side_resize():
    """3 x 2000 resized to longer side 512 is 0 x 512: refused although 3 rows were there."""
    batch = {"image0": torch.rand(1, 3, 4, 2000), "image1": torch.rand(1, 3, 32, 32), "name": ["p"]}
    with pytest.raises(ValueError, match=r"image0 of pair 'p' \(4x2000 before resizing\) is 1x512"):
        PUMP().match(batch)
