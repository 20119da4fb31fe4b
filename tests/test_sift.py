"""SIFT baseline: keypoints are OpenCV SIFT on OpenCV's luminance grey, as published SIFT baselines compute them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage.data

from corrlab.datamodules.image_io import read_image
from corrlab.modules.sift import SIFTMatcher


def test_sift_runs_on_opencv_luminance_grey(tmp_path: Path) -> None:
    path = tmp_path / "coffee.png"
    cv2.imwrite(str(path), cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR))
    kpts, desc = SIFTMatcher().detect(read_image(path))

    grey = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)  # the BGR path, computed independently
    expected, expected_desc = cv2.SIFT_create().detectAndCompute(grey, None)
    np.testing.assert_array_equal(kpts, np.array([k.pt for k in expected], np.float32))
    np.testing.assert_array_equal(desc, expected_desc)

    mean_grey = skimage.data.coffee().mean(axis=2).round().astype(np.uint8)  # what an RGB mean would give
    assert len(cv2.SIFT_create().detect(mean_grey, None)) != len(expected)
