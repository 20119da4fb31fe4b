"""One resize: the datamodule's resize policy with the references' resampling (PIL), letterbox and no-upscale;
PUMP's two entry points resize alike; Patch2Pix resamples with PIL and warns when it would resize a second time."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.resize import ResizePolicy
from corrlab.datamodules.synthetic import skimage_photo_dir
from corrlab.models.convmixer import ConvMixer
from corrlab.models.patch2pix.pipeline import network_frame
from corrlab.models.pump import cli
from corrlab.models.pump.images import warn_if_resized_twice
from corrlab.models.pump.output import load_corres
from corrlab.modules.pump import PUMP


@pytest.fixture
def photo_file(tmp_path):
    """A 8-bit RGB PNG of odd size (123 x 171)."""
    rgb = np.asarray(Image.open(skimage_photo_dir() / "astronaut.png").convert("RGB"))[100:223, 120:291]
    path = tmp_path / "photo.png"
    Image.fromarray(np.ascontiguousarray(rgb)).save(path)
    return path


def test_pil_interpolation_equals_pil_on_the_8bit_file(photo_file):
    policy = ResizePolicy("long", 64, interpolation="pil_bicubic")
    resized, scale = policy(read_image(photo_file))
    expected = np.asarray(Image.open(photo_file).resize((64, 46), Image.Resampling.BICUBIC))
    assert resized.shape == (3, 46, 64) and torch.equal(scale, torch.tensor([64 / 171, 46 / 123]))
    assert torch.equal((resized * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(expected.copy()))
    torch_bicubic = ResizePolicy("long", 64, interpolation="bicubic")(read_image(photo_file))[0]
    assert (torch_bicubic - resized).abs().max() > 2 / 255  # the two resamplings differ: the choice matters


def test_letterbox_pads_bottom_right_and_keeps_scale_only(photo_file):
    image = read_image(photo_file)
    boxed, scale = ResizePolicy("letterbox", 96)(image)
    content, same_scale = ResizePolicy("long", 96)(image)
    assert boxed.shape == (3, 96, 96) and content.shape == (3, 69, 96) and torch.equal(scale, same_scale)
    assert torch.equal(boxed[:, :69], content) and (boxed[:, 69:] == 0).all()
    assert ResizePolicy("letterbox", 96).output_size(123, 171) == (96, 96)


def test_no_upscale_and_fingerprints_of_default_policies_unchanged():
    assert ResizePolicy("long", 1024, divisible_by=16, upscale=False).output_size(480, 640) == (480, 640)
    assert ResizePolicy("long", 1024, divisible_by=16).output_size(480, 640) == (768, 1024)
    assert ResizePolicy("long", 1200).describe() == {"mode": "long", "size": 1200, "divisible_by": 1}
    assert ResizePolicy("long", 1200, interpolation="pil_bicubic").describe()["interpolation"] == "pil_bicubic"
    with pytest.raises(ValueError, match="pil_bicubic"):
        ResizePolicy("long", 10, interpolation="lanczos")


@pytest.mark.slow
def test_pump_module_and_cli_resize_and_match_alike(photo_file, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "pump.pt"
    torch.save(ConvMixer().state_dict(), weights)
    other = tmp_path / "other.png"
    rgb = cv2.imread(str(photo_file))
    cv2.imwrite(str(other), cv2.warpAffine(rgb, np.float32([[1, 0, 6], [0, 1, -4]]), (rgb.shape[1], rgb.shape[0])))
    output = tmp_path / "cli.corres"
    cli.main(
        [
            "--img1",
            str(photo_file),
            "--img2",
            str(other),
            "--weights",
            str(weights),
            "--resize",
            "40",
            "--output",
            str(output),
        ]
    )
    module = PUMP(matching={"resize": 40}).eval()
    module.load_official(weights)
    batch = {"image0": read_image(photo_file)[None], "image1": read_image(other)[None]}
    ours = module.match_pair(batch["image0"][0], batch["image1"][0]).double().numpy()
    theirs = load_corres(output)
    assert len(theirs) > 5 and ours.shape == theirs.shape and np.abs(ours[:, :4] - theirs[:, :4]).max() < 1e-4
    assert np.array_equal(ours[:, 4].astype(np.float32), theirs[:, 4])  # one gray level of input changes scores


def test_patch2pix_resamples_with_pil_and_warns_on_a_second_resize(photo_file):
    image = read_image(photo_file)[None]
    batch = {"image0": image, "image1": image, "scale0": torch.ones(1, 2), "scale1": torch.ones(1, 2)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an original-size batch resized once: no warning
        resized, _, scale, _ = network_frame(batch, 96, 16, "pil_bicubic")
    expected = np.asarray(Image.open(photo_file).resize((96, 64), Image.Resampling.BICUBIC))
    assert resized.shape == (1, 3, 64, 96) and torch.equal(scale, torch.tensor([96 / 171, 64 / 123]))
    assert torch.equal((resized[0] * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(expected.copy()))
    twice = {**batch, "scale0": torch.full((1, 2), 0.5)}
    with pytest.warns(UserWarning, match="resized twice"):
        network_frame(twice, 96, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # already at the network size: not resized again, no warning
        at_size = {**twice, "image0": resized, "image1": resized}
        network_frame(at_size, 96, 16)


def test_pump_warns_when_it_would_resize_a_resized_batch():
    image = torch.zeros(1, 3, 120, 160)
    batch = {"image0": image, "image1": image, "scale0": torch.full((1, 2), 0.5), "scale1": torch.full((1, 2), 0.5)}
    with pytest.warns(UserWarning, match="resized twice"):
        warn_if_resized_twice(batch, {"mode": "single", "resize": 100})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_resized_twice(batch, {"mode": "single", "resize": 160})  # within the size: not resized again
        warn_if_resized_twice(batch, {"mode": "recursive", "resize": 100})  # recursive: no pre-resize
        warn_if_resized_twice(
            {**batch, "scale0": torch.ones(1, 2), "scale1": torch.ones(1, 2)}, {"mode": "single", "resize": 100}
        )
