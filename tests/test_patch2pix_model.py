"""Patch2Pix / NCNet inference: equivalence with a slow literal implementation of the reference on the same official
checkpoint, strict loading of the official formats, the backbone, the network input size and the match contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet34

from corrlab.datamodules.image_io import read_image
from corrlab.geometry.scaling import to_original
from corrlab.models.patch2pix.backbone import ResNet34Stride8
from corrlab.models.patch2pix.input_size import network_size, to_network_frame
from corrlab.models.patch2pix.official import OfficialCheckpointError, read_official
from corrlab.models.patch2pix.pipeline import coarse_proposals
from corrlab.modules.ncnet import NCNet
from corrlab.modules.patch2pix import Patch2Pix
from tests.conftest import shared_data
from tests.helpers.patch2pix_reference import ReferencePatch2Pix, official_checkpoint, randomize_


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """HPatches v_boat 1 -> 2 at 128 x 96 (network size: no internal resize)."""
    folder = shared_data("hpatches", "partial_pairs", "v_boat")
    load = lambda name: F.interpolate(read_image(folder / name)[None], size=(96, 128), mode="area")  # noqa: E731
    return load("1.png"), load("2.png")


@pytest.fixture(scope="module")
def reference(pair) -> ReferencePatch2Pix:
    torch.manual_seed(0)
    return randomize_(ReferencePatch2Pix(), *pair, seed=0)


@pytest.fixture(scope="module")
def released(reference, tmp_path_factory) -> Path:
    """The reference's random weights written as patch2pix_pretrained.pth."""
    return official_checkpoint(reference, tmp_path_factory.mktemp("official") / "patch2pix_pretrained.pth")


@pytest.fixture(scope="module")
def expected(reference, pair) -> dict:
    """The slow reference's coarse matches (with scores) and refined matches before the io threshold."""
    return reference.predict(*pair, io_thres=0.0)


@pytest.fixture(scope="module")
def ours(released) -> Patch2Pix:
    module = Patch2Pix()
    module.load_official(released)
    return module.eval()


@pytest.mark.slow
def test_fixture_has_the_official_format(released):
    content = read_official(released)
    assert {"state_dict", "backbone", "feat_idx", "change_stride", "regressor_config"} <= set(content)
    keys = content["state_dict"].keys()
    assert "extract.layer4.2.bn2.running_var" in keys and "regress_fine.fc.6.bias" in keys
    assert content["state_dict"]["ncn.conv.0.weight"].shape == (3, 16, 1, 3, 3, 3)  # (S, Co, Ci, S, S, S)
    assert content["regressor_config"].conv_dims == [512, 512]


@pytest.mark.slow
def test_conv4d_weights_are_relaid_out(ours, released):
    stored = read_official(released)["state_dict"]["ncn.conv.2.weight"]  # (3, 1, 16, 3, 3, 3)
    assert torch.equal(ours.net.consensus.conv[2].weight, stored.permute(1, 2, 0, 3, 4, 5))


@pytest.mark.slow
def test_coarse_matches_equal_the_reference(ours, expected, pair):
    levels0, levels1 = ours.net.features(pair[0]), ours.net.features(pair[1])
    with torch.no_grad():
        ((coarse, scores),) = coarse_proposals(ours.net, levels0, levels1, 0.0)
    assert len(expected["coarse"]) >= 20  # non-degenerate weights: enough mutual matches to compare
    assert torch.equal(coarse, expected["coarse"])
    torch.testing.assert_close(scores, expected["scores"], atol=1e-4, rtol=0)  # consensus sums in another order


@pytest.mark.slow
@pytest.mark.parametrize("io_thres", [0.0, 0.25, 0.5, 0.9, 0.99])
def test_refined_matches_equal_the_reference(ours, expected, pair, io_thres):
    fine, probability = expected["fine"], expected["probability"]
    keep = probability > io_thres
    if keep.any():  # the reference returns every match when none passes the threshold
        fine, probability = fine[keep], probability[keep]
    matches = ours.match({"image0": pair[0], "image1": pair[1]}, io_thres=io_thres)
    # float32 summation orders differ (channels-last convolutions, Conv4d): agreement to 1e-3 px
    torch.testing.assert_close(torch.cat([matches.kpts0, matches.kpts1], dim=1), fine, atol=1e-3, rtol=0)
    torch.testing.assert_close(matches.scores, probability, atol=1e-4, rtol=0)
    assert (0 < keep.sum() < len(keep)) if io_thres == 0.5 else True
    assert (keep.sum() == 0 and len(matches) == len(keep)) if io_thres == 0.99 else True


@pytest.mark.slow
def test_ncnet_baseline_loads_the_pretraining_file_and_equals_the_reference(reference, expected, pair, tmp_path):
    backbone_and_ncn = ReferencePatch2Pix(regressors=False)
    backbone_and_ncn.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("regress_")})
    path = official_checkpoint(backbone_and_ncn.eval(), tmp_path / "ncn_ivd_5ep.pth")
    model = NCNet()
    model.load_official(path)
    model.eval()
    for threshold in (0.9, 0.0):
        keep = expected["scores"] > threshold  # the reference's score filter, all mutual matches when none passes
        keep = keep if keep.any() else torch.ones_like(keep)
        model.ncn_thres = threshold
        matches = model.match({"image0": pair[0], "image1": pair[1]})
        assert torch.equal(torch.cat([matches.kpts0, matches.kpts1], dim=1), expected["coarse"][keep])
        torch.testing.assert_close(matches.scores, expected["scores"][keep], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_official_loading_is_strict(released, tmp_path):
    content = torch.load(released, weights_only=False)
    missing = dict(content, state_dict={k: v for k, v in content["state_dict"].items() if k != "regress_mid.fc.0.bias"})
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(OfficialCheckpointError, match="regress_mid.fc.0.bias"):
        Patch2Pix().load_official(tmp_path / "missing.pth")
    extra = dict(content, state_dict={**content["state_dict"], "extract.fc.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(OfficialCheckpointError, match="extract.fc.weight"):
        Patch2Pix().load_official(tmp_path / "extra.pth")
    other = dict(content, feat_idx=[1, 2, 3, 4])
    torch.save(other, tmp_path / "other.pth")
    with pytest.raises(OfficialCheckpointError, match="feat_idx"):
        Patch2Pix().load_official(tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        Patch2Pix().load_official(tmp_path / "nope.pth")


def test_backbone_levels_and_imagenet_loading(tmp_path):
    backbone = ResNet34Stride8()
    levels = backbone(torch.rand(1, 3, 50, 70))
    assert [tuple(level.shape[1:]) for level in levels] == [
        (3, 50, 70),
        (64, 25, 35),
        (64, 13, 18),
        (128, 7, 9),
        (256, 7, 9),
    ]
    imagenet = resnet34(weights=None).state_dict()  # torchvision's file layout, layer4 and fc included
    torch.save(imagenet, tmp_path / "resnet34.pth")
    backbone.load_imagenet(tmp_path / "resnet34.pth")
    assert torch.equal(backbone.layer3[5].bn2.running_var, imagenet["layer3.5.bn2.running_var"])
    torch.save({k: v for k, v in imagenet.items() if not k.startswith("layer2.")}, tmp_path / "partial.pth")
    with pytest.raises(KeyError, match="layer2"):
        backbone.load_imagenet(tmp_path / "partial.pth")
    with pytest.raises(FileNotFoundError, match="model.backbone.weights"):
        backbone.load_imagenet(tmp_path / "absent.pth")


@pytest.mark.parametrize(
    "size,max_side,expected",
    [
        ((1200, 1600), 1024, (768, 1024)),
        ((899, 769), 1024, (896, 768)),
        ((100, 130), 1024, (96, 128)),
        ((2000, 3000), 1024, (672, 1024)),
        ((480, 320), None, (480, 320)),
    ],
)
def test_network_size_never_upsamples_and_floors_to_16(size, max_side, expected):
    assert network_size(*size, max_side) == expected


@pytest.mark.slow
def test_matches_come_back_in_batch_pixels(ours, pair):
    big0, big1 = (F.interpolate(image, size=(150, 200), mode="bilinear", align_corners=False) for image in pair)
    ours.max_side = 128
    try:
        matches = ours.match({"image0": big0, "image1": big1})
    finally:
        ours.max_side = 1024
    small0, scale0 = to_network_frame(big0, 128, resample=ours.resample)
    small1, scale1 = to_network_frame(big1, 128, resample=ours.resample)
    assert tuple(small0.shape[-2:]) == (96, 128)
    direct = ours.match({"image0": small0, "image1": small1})
    torch.testing.assert_close(matches.kpts0, to_original(torch.cat([direct.kpts0]), scale0))
    torch.testing.assert_close(matches.kpts1, to_original(direct.kpts1, scale1))


@pytest.mark.parametrize("module_class", [Patch2Pix, NCNet])
def test_match_contract_at_odd_sizes_with_a_batch(module_class):
    torch.manual_seed(0)
    module = module_class(max_side=160).eval()
    batch = {"image0": torch.rand(2, 3, 101, 133), "image1": torch.rand(2, 3, 117, 150)}
    matches = module.match(batch)
    assert set(matches.batch_idx.tolist()) <= {0, 1} and len(matches) > 0
    for kpts, (h, w) in ((matches.kpts0, (101, 133)), (matches.kpts1, (117, 150))):
        assert (kpts[:, 0] >= -0.5).all() and (kpts[:, 0] <= w - 0.5).all()
        assert (kpts[:, 1] >= -0.5).all() and (kpts[:, 1] <= h - 0.5).all()
    assert ((matches.scores >= 0) & (matches.scores <= 1)).all()
    with pytest.raises(ValueError, match="too small"):
        module.match({"image0": torch.rand(1, 3, 12, 40), "image1": torch.rand(1, 3, 40, 40)})
