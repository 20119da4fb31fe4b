"""PUMP's ConvMixer: the official checkpoint layout, output contract, strict official loading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from corrlab.models.convmixer import ConvMixer
from corrlab.modules.pump import PUMP

# the released PUMP.pt / PUMP-stytrf.pt hold exactly these 114 keys (nn.Sequential indices of the reference)
OFFICIAL_FIRST_KEYS = [
    "0.weight",
    "0.bias",
    "2.weight",
    "2.bias",
    "2.running_mean",
    "2.running_var",
    "2.num_batches_tracked",
    "3.weight",
]
OFFICIAL_LAST_KEYS = ["33.running_var", "33.num_batches_tracked", "34.weight", "34.bias"]


def test_state_dict_has_the_official_layout():
    keys = list(ConvMixer().state_dict())
    assert len(keys) == 114
    assert keys[:8] == OFFICIAL_FIRST_KEYS and keys[-4:] == OFFICIAL_LAST_KEYS
    assert "6.fn.0.weight" in keys and "6.fn.2.running_mean" in keys  # residual depthwise blocks
    shapes = ConvMixer().state_dict()
    assert shapes["6.fn.0.weight"].shape == (512, 1, 9, 9) and shapes["34.weight"].shape == (512, 512, 1, 1)
    assert sum(p.numel() for p in ConvMixer().parameters()) == 3_469_568  # the paper's model


def test_descriptors_are_unit_norm_at_every_pixel_of_a_multiple_of_4():
    net = ConvMixer().eval()
    with torch.no_grad():
        desc = net(torch.rand(2, 3, 67, 93))
    assert desc.shape == (2, 128, 64, 92)
    assert torch.allclose(desc.norm(dim=1), torch.ones(2, 64, 92), atol=1e-5)


def test_imagenet_normalisation_is_inside_the_model():
    net = ConvMixer().eval()
    image = torch.rand(1, 3, 32, 32)
    normalised = (image - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = F.normalize(torch.nn.Sequential(*net)(normalised), dim=1)
        assert torch.allclose(net(image), expected, atol=1e-6)


def test_training_layout_gives_the_same_descriptors():
    net = ConvMixer().eval()
    image = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        inference = net(image)
    assert torch.allclose(net(image), inference, atol=1e-5)  # grad enabled: channels-last path


def test_load_official_is_strict(tmp_path):
    source = ConvMixer()
    torch.nn.init.normal_(source[0].weight)
    path = tmp_path / "PUMP.pt"
    torch.save(source.state_dict(), path)
    module = PUMP()
    module.load_official(path)
    assert torch.equal(module.net[0].weight, source[0].weight)
    state = source.state_dict()
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        module.load_official(path)
    del state["extra.weight"], state["34.bias"]
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="Missing key"):
        module.load_official(path)
