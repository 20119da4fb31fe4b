"""GLU-Net / PWC-Net (plain and GOCor): official-format loading on random weights saved under DenseMatching's key
names (tests/data/gocor_reference_keys.json, read from their models), flow conventions, the VGG weights error, the
optim-iter switch, and the match / transfer contract at an odd image size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from corrlab.models.dense_flow.official import GLUNET_RULES, PWCNET_RULES, map_keys
from corrlab.models.dense_flow.warping import normalised_mapping_to_flow, resize_flow, warp
from corrlab.modules.glunet import GLUNetMatcher
from corrlab.modules.pwcnet import PWCNetMatcher

REFERENCE_KEYS = json.loads((Path(__file__).parent / "data" / "gocor_reference_keys.json").read_text())
MODULES = {
    "glunet": (lambda: GLUNetMatcher(gocor=False), GLUNET_RULES),
    "glunet_gocor": (lambda: GLUNetMatcher(gocor=True), GLUNET_RULES),
    "pwcnet": (lambda: PWCNetMatcher(gocor=False), PWCNET_RULES),
    "pwcnet_gocor": (lambda: PWCNetMatcher(gocor=True), PWCNET_RULES),
}


def reference_checkpoint(name: str, path: Path) -> dict[str, torch.Tensor]:
    """Random tensors of the reference's shapes under its key names, saved as {'state_dict': ...}."""
    g = torch.Generator().manual_seed(0)
    state = {
        key: (
            torch.randint(0, 100, shape, generator=g)
            if key.endswith("num_batches_tracked")
            else torch.randn(shape, generator=g)
        )
        for key, shape in REFERENCE_KEYS[name].items()
    }
    torch.save({"state_dict": state}, path)
    return state


@pytest.mark.parametrize("name", list(MODULES))
def test_official_format_loads_strictly_and_every_tensor_lands(name, tmp_path):
    build, rules = MODULES[name]
    module = build()
    state = reference_checkpoint(name, tmp_path / "official.pth")
    module.load_official(tmp_path / "official.pth")
    ours = module.net.state_dict()
    mapped = map_keys(state, rules)
    assert set(mapped) == set(ours)
    for theirs, key in zip(state, mapped):
        assert torch.equal(ours[key], state[theirs]), (theirs, key)


def test_official_loading_names_missing_and_unexpected_keys(tmp_path):
    state = reference_checkpoint("pwcnet_gocor", tmp_path / "ok.pth")
    state.pop("conv6_0.0.weight")
    state["local_corr_7.scaling"] = torch.ones(1)
    torch.save(state, tmp_path / "bad.pth")  # a bare state dict is accepted too
    with pytest.raises(
        KeyError, match=r"missing \['decoder6.conv_0.0.weight'\].*unexpected \['local_corr_7.scaling'\]"
    ):
        PWCNetMatcher(gocor=True).load_official(tmp_path / "bad.pth")


def test_missing_vgg_weights_name_the_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model\.backbone_weights.*vgg16-397923af\.pth"):
        GLUNetMatcher(backbone_weights=str(tmp_path / "vgg16.pth"))


def test_optim_iter_switch_reaches_every_gocor_module():
    glunet = GLUNetMatcher(gocor=True, global_optim_iter=2, local_optim_iter=7).net
    assert glunet.global_corr.filter_optimizer.num_iter == 2 and glunet.local_corr.filter_optimizer.num_iter == 7
    pwcnet = PWCNetMatcher(gocor=True, local_optim_iter=7).net
    assert [getattr(pwcnet, f"local_corr_{lvl}").filter_optimizer.num_iter for lvl in (6, 5, 4, 3, 2)] == [7] * 5
    assert not hasattr(GLUNetMatcher(gocor=False).net, "local_corr")


def test_flow_conventions_on_a_known_shift():
    x = torch.arange(5 * 7, dtype=torch.float32).reshape(1, 1, 5, 7)
    flow = torch.zeros(1, 2, 5, 7)
    flow[:, 0] = 2.0  # target pixel (x, y) matches source (x + 2, y)
    shifted = warp(x, flow)
    torch.testing.assert_close(shifted[0, 0, :, :5], x[0, 0, :, 2:])
    assert (shifted[0, 0, :, 6] == 0).all()  # beyond the source: zeros
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 4), torch.linspace(-1, 1, 6), indexing="ij")
    identity = torch.stack((xs, ys))[None]
    torch.testing.assert_close(normalised_mapping_to_flow(identity), torch.zeros(1, 2, 4, 6), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        resize_flow(torch.ones(1, 2, 4, 6), (8, 3)),
        torch.cat([torch.full((1, 1, 8, 3), 0.5), torch.full((1, 1, 8, 3), 2.0)], 1),
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["glunet_gocor", "pwcnet_gocor"])
def test_match_and_transfer_contract_at_odd_size(name, monkeypatch):
    monkeypatch.setenv("CORRLAB_OPS", "torch")
    torch.manual_seed(0)
    build, _ = MODULES[name]
    module = build().eval()
    module.sampler.num_matches = 50
    image = torch.rand(1, 3, 257, 339)
    batch = {"image0": image, "image1": torch.roll(image, shifts=3, dims=-1)}
    matches = module.match(batch)
    assert matches.warp.shape == (1, 257, 339, 2) and matches.certainty.shape == (1, 257, 339)
    assert torch.isfinite(matches.warp).all()
    assert ((matches.certainty > 0) & (matches.certainty <= 1)).all()
    assert 0 < len(matches.kpts0) <= 50
    assert (matches.kpts1[:, 0] <= 338.5).all() and (matches.kpts1[:, 0] >= -0.5).all()
    # the sparse matches are cells of the warp, and transfer reads the warp
    cells = matches.kpts0.round().long()
    torch.testing.assert_close(matches.kpts1, matches.warp[0, cells[:, 1], cells[:, 0]])
    query = matches.kpts0[None, :5]
    torch.testing.assert_close(module.transfer(batch, query)[0], matches.kpts1[:5], atol=1e-4, rtol=0)


def test_vgg_pyramid_reads_torchvision_indices(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    from corrlab.models.glunet.vgg_pyramid import VGGPyramid

    torch.manual_seed(0)
    features = make_layers(cfgs["D"], batch_norm=False)
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, tmp_path / "vgg16.pth")
    pyramid = VGGPyramid()
    pyramid.load_imagenet(tmp_path / "vgg16.pth", key="model.backbone_weights")
    assert torch.equal(pyramid.level_2[2].weight, features[7].weight)  # conv2_2
    assert torch.equal(pyramid.level_4[4].bias, features[21].bias)  # conv4_3
    x = torch.rand(1, 3, 32, 48)
    outputs = pyramid(x)
    assert [o.shape[1:] for o in outputs] == [(64, 32, 48), (64, 16, 24), (128, 8, 12), (256, 4, 6), (512, 2, 3)]
    torch.testing.assert_close(outputs[4], features[:24](x))  # level 4 ends at the 4th max-pool


@pytest.mark.slow
def test_glunet_gocor_training_step_on_a_synthetic_batch(monkeypatch):
    """The multi-scale loss is finite, reaches the decoders and GOCor parameters, and leaves the VGG frozen."""
    monkeypatch.setenv("CORRLAB_OPS", "torch")
    from corrlab.datamodules.synthetic_flow import SyntheticFlowDataModule

    torch.manual_seed(0)
    pair = SyntheticFlowDataModule(num_val_pairs=1).dataset("val")[0]
    batch = {k: v[None] for k, v in pair.items() if isinstance(v, torch.Tensor)}
    module = GLUNetMatcher(gocor=True)
    losses = module.compute_losses(batch)
    assert set(losses) == {"level0", "level1", "level2", "level3", "total"}
    assert torch.isfinite(losses["total"]) and losses["total"] > 0
    losses["total"].backward()
    net = module.net
    assert net.decoder1.predict_flow.weight.grad.abs().sum() > 0
    assert net.global_corr.filter_optimizer.filter_reg.grad is not None
    assert net.local_corr.filter_optimizer.log_step_length.grad is not None
    assert all(p.grad is None for p in net.pyramid.parameters())


@pytest.mark.slow
def test_pwcnet_gocor_compiled_kernels_equal_torch_reference_on_official_format_weights(tmp_path, monkeypatch):
    """The whole PWC-Net-GOCor (five local GOCor modules, 3 steps each) on the C++ kernels equals it on the PyTorch
    reference ops in float64, with random weights loaded from the reference's checkpoint format."""
    from corrlab.ops.local_correlation import compiled_local_correlation

    if compiled_local_correlation(torch.device("cpu")) is None:
        pytest.skip("C++ local-correlation extension unavailable")
    state = reference_checkpoint("pwcnet_gocor", tmp_path / "raw.pth")
    scaled = {k: v if not v.is_floating_point() else 0.05 * v for k, v in state.items()}  # keep activations finite
    torch.save({"state_dict": scaled}, tmp_path / "official.pth")
    module = PWCNetMatcher(gocor=True)
    module.load_official(tmp_path / "official.pth")
    net = module.net.double().eval()
    g = torch.Generator().manual_seed(1)
    target, source = (torch.rand(1, 3, 64, 128, generator=g, dtype=torch.float64) for _ in range(2))
    flows = {}
    for backend in ("torch", "cpp"):
        monkeypatch.setenv("CORRLAB_OPS", backend)
        with torch.no_grad():
            flows[backend] = net(target, source)
    for level, (a, b) in enumerate(zip(flows["torch"], flows["cpp"])):
        assert a.abs().max() > 1e-3, level  # a flow that is not trivially zero
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9 * a.abs().max().item())
