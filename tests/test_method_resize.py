"""One resize, owned by one place: each method's config declares its reference's evaluation resize
(`model.input_resize`), the datamodule applies exactly that one, and the method's own resize is then a no-op; the
user's data resize wins.  On data=hpatches with odd-size images, per method."""

from __future__ import annotations

import warnings

import pytest
import torch

from corrlab.config.schema import CONFIG_DIR
from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.resize import ResizePolicy
from corrlab.models.patch2pix.input_size import to_network_frame
from corrlab.models.patch2pix.pipeline import network_frame
from corrlab.models.pump.images import matcher_input, warn_if_resized_twice
from corrlab.pipeline.instantiate import instantiate
from tests.conftest import compose_config
from tests.helpers.hpatches_fixture import write_hpatches

SIZE = (237, 331)  # H x W, odd: 237 * 200 / 331 = 143.2 (floored), 331 -> 200
# methods whose reference feeds the images as the protocol gives them (their networks' internal resizes excepted)
AS_GIVEN = [
    "sift",
    "r2d2",
    "gcm",
    "glunet",
    "glunet_gocor",
    "pwcnet",
    "pwcnet_gocor",
    "geoaware",
    "geoaware_zero_shot",
    "gcm_distill",
]


@pytest.fixture(scope="module")
def hpatches(tmp_path_factory):
    return write_hpatches(tmp_path_factory.mktemp("hp") / "hpatches", num_images=2, size=SIZE)


def first_batch(hpatches, tmp_path, model: str, *overrides: str) -> tuple[dict, torch.Tensor]:
    """The first sample of data=hpatches composed with `model`, and the original image 0 it was made from."""
    cfg = compose_config("eval", [f"model={model}", "data=hpatches", f"data.root={hpatches}", *overrides], tmp_path)
    datamodule = instantiate(cfg.data)
    sample = datamodule.dataset("test")[0]
    sequence = sample["name"].split("/")[0]
    return sample, read_image(hpatches / sequence / "1.ppm")


def test_every_method_config_declares_its_input_resize():
    names = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
    assert sorted([*AS_GIVEN, "pump", "patch2pix", "ncnet"]) == names


@pytest.mark.parametrize("model", AS_GIVEN)
def test_methods_without_an_input_resize_see_the_original_images(hpatches, tmp_path, model):
    sample, original = first_batch(hpatches, tmp_path, model)
    assert torch.equal(sample["image0"], original) and sample["scale0"].tolist() == [1.0, 1.0]


def test_patch2pix_sees_one_pil_bicubic_resize_with_its_own_arithmetic(hpatches, tmp_path):
    sample, original = first_batch(hpatches, tmp_path, "patch2pix", "model.max_side=200")
    # Patch2Pix's reference: longer side 200, both sides floored to 16 -> 128 x 192, PIL bicubic on the 8-bit image
    expected, _ = to_network_frame(original[None], 200, 16, "pil_bicubic")
    assert sample["image0"].shape == (3, 128, 192) and torch.equal(sample["image0"], expected[0])
    batch = {k: (v[None] if torch.is_tensor(v) else [v]) for k, v in sample.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'images resized twice'
        images0, _, scale0, _ = network_frame(batch, 200, 16, "pil_bicubic")
    assert torch.equal(images0, batch["image0"]) and scale0.tolist() == [1.0, 1.0]


def test_ncnet_sees_one_torch_bicubic_resize(hpatches, tmp_path):
    sample, original = first_batch(hpatches, tmp_path, "ncnet", "model.max_side=200")
    expected, _ = to_network_frame(original[None], 200, 16, "torch_bicubic")
    assert sample["image0"].shape == (3, 128, 192) and torch.allclose(sample["image0"], expected[0], atol=1e-6)


def test_pump_sees_its_reference_resize_once(hpatches, tmp_path):
    sample, original = first_batch(hpatches, tmp_path, "pump", "model.matching.resize=200")
    matching = {"mode": "single", "resize": 200}
    expected, _ = matcher_input(original, matching)  # area on the 8-bit image, truncated: 143 x 200
    assert sample["image0"].shape == (3, 143, 200) and torch.equal(sample["image0"], expected)
    again, back = matcher_input(sample["image0"], matching)
    assert torch.equal(again, sample["image0"]) and torch.equal(back, torch.eye(3, dtype=torch.float64))
    batch = {k: (v[None] if torch.is_tensor(v) else [v]) for k, v in sample.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_resized_twice(batch, matching)


def test_the_users_data_resize_wins_over_the_methods(hpatches, tmp_path):
    sample, original = first_batch(hpatches, tmp_path, "patch2pix", "data.resize={mode:long,size:100}")
    assert sample["image0"].shape == (3, 72, 100)  # round(237 * 100 / 331) = 71.6 -> 72, bilinear
    assert torch.equal(sample["image0"], ResizePolicy("long", 100)(original)[0])
    short, _ = first_batch(hpatches, tmp_path, "patch2pix", "data.resolution=short480")  # the protocol's frame
    assert short["image0"].shape[-2:] == (480, 670)


def test_floor_rounding_and_area_uint8_by_hand():
    policy = ResizePolicy("long", 200, rounding="floor", upscale=False)
    assert policy.content_size(237, 331) == (143, 200) and ResizePolicy("long", 200).content_size(237, 331) == (
        143,
        200,
    )
    assert policy.content_size(239, 331) == (144, 200)  # 144.41: floor 144, round 144
    assert ResizePolicy("long", 200, rounding="floor").content_size(3, 4) == (150, 200)  # upscale allowed
    assert ResizePolicy("long", 200, rounding="floor").content_size(1, 3) == (66, 200)  # 66.67 floors, round gives 67
    image = torch.tensor([[[10, 13], [0, 0]]], dtype=torch.float32) / 255  # 1 x 2 x 2 -> 1 x 1: mean 5.75 -> 5
    shrunk = ResizePolicy("fixed", [1, 1], interpolation="area_uint8").resample(image, 1, 1)
    assert (shrunk * 255).round().flatten().tolist() == [5.0]


def test_megadepth_replaces_its_default_resize_by_the_methods_but_keeps_the_users():
    from corrlab.datamodules.megadepth import DEFAULT_EVAL_RESIZE, MegaDepthDataModule

    method = {"mode": "long", "size": 1024, "divisible_by": 16, "upscale": False, "rounding": "floor"}
    chosen = MegaDepthDataModule(root="/absent", eval_resize=dict(DEFAULT_EVAL_RESIZE), method_resize=method)
    assert chosen.eval_resize == ResizePolicy(**method) and chosen.val_resize == chosen.eval_resize  # 1600 -> 1024 once
    users = MegaDepthDataModule(root="/absent", eval_resize={"mode": "long", "size": 360}, method_resize=method)
    assert users.eval_resize == ResizePolicy("long", 360)
    plain = MegaDepthDataModule(root="/absent", eval_resize=dict(DEFAULT_EVAL_RESIZE), method_resize=None)
    assert plain.eval_resize == ResizePolicy("long", 1200)
