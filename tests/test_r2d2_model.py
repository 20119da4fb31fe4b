"""R2D2 networks: layer layout (receptive field, output sizes), heads, and loading naver/r2d2 checkpoints
without running their `net` string (random weights in the released format, and the real files)."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess
import sys

import pytest
import torch

from corrlab.models.r2d2.checkpoint import load_official, parse_net_string, read_checkpoint
from corrlab.models.r2d2.patchnet import count_parameters, fast_quad_l2net_confcfs, quad_l2net_confcfs
from tests.conftest import shared_data


def randomised(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Seeded weights and BN statistics (a fresh net has running stats 0/1)."""
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in net.state_dict().items():
        if name.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
        elif name.endswith("running_mean"):
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
        elif tensor.is_floating_point():
            fan_in = tensor[0].numel() if tensor.ndim > 1 else 1
            tensor.copy_(torch.randn(tensor.shape, generator=generator) / fan_in**0.5)
    return net.eval()


def changed_region(net: torch.nn.Module, size: int) -> tuple[int, int]:
    """Rows of the descriptor map changed by perturbing the centre pixel (min, max)."""
    image = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    poked = image.clone()
    poked[0, :, size // 2, size // 2] += 5.0
    with torch.no_grad():
        diff = (net.features(poked) - net.features(image)).abs().amax(dim=(0, 1, 3))
    rows = torch.nonzero(diff > 0).flatten()
    return int(rows.min()), int(rows.max())


def test_quad_l2net_receptive_field_is_that_of_its_dilations():
    # radius = sum over convs of (k - 1) * d / 2 = 1 + 1 + 1 + 2 + 2 + 4 + 2 + 4 + 8 = 25 pixels
    first, last = changed_region(randomised(quad_l2net_confcfs()), 81)
    assert (first, last) == (40 - 25, 40 + 25)


def test_outputs_keep_the_resolution_and_are_normalised():
    net = randomised(quad_l2net_confcfs())
    with torch.no_grad():
        out = net(torch.randn(2, 3, 17, 23))
    assert out.descriptors.shape == (2, 128, 17, 23)
    assert out.reliability.shape == out.repeatability.shape == (2, 1, 17, 23)
    torch.testing.assert_close(out.descriptors.norm(dim=1), torch.ones(2, 17, 23))
    assert out.reliability.min() >= 0 and out.reliability.max() <= 1
    assert out.repeatability.min() >= 0 and out.repeatability.max() <= 1
    assert out.reliability.std() > 0.01 and out.repeatability.std() > 0.01


def test_heads_follow_their_formulas():
    net = randomised(quad_l2net_confcfs())
    raw = torch.randn(1, 128, 5, 6)
    out = net.heads(raw)
    logits = torch.einsum("oc,bchw->bohw", net.clf.weight[:, :, 0, 0], raw**2) + net.clf.bias[:, None, None]
    torch.testing.assert_close(out.reliability[:, 0], torch.sigmoid(logits[:, 1] - logits[:, 0]))
    s = torch.einsum("c,bchw->bhw", net.sal.weight[0, :, 0, 0], raw**2) + net.sal.bias
    softplus = torch.log1p(torch.exp(s))
    torch.testing.assert_close(out.repeatability[:, 0], softplus / (1 + softplus))


HEADS_PEAK = """
import torch
from corrlab.models.r2d2.patchnet import quad_l2net_confcfs
net = quad_l2net_confcfs().eval()
raw = torch.randn(1, 128, 512, 512)
def mb(key):
    return int([line for line in open("/proc/self/status") if line.startswith(key)][0].split()[1]) / 1024
with torch.inference_mode():
    net.heads(raw[:, :, :8])  # oneDNN's primitives made before the measurement
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
    base = mb("VmRSS")
    out = net.heads(raw)
    print((mb("VmHWM") - base) / (raw.numel() * 4 / 2**20))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's resettable peak RSS")
def test_heads_free_the_squared_map_before_normalising():
    """extract.py's level-0 peak: the heads hold the normalised output and x² (with oneDNN's copy of it) one after
    the other, not at once; with x² alive while normalising, this peak was 3.1 maps instead of 2.1."""
    run = subprocess.run([sys.executable, "-c", HEADS_PEAK], capture_output=True, text=True, check=True)
    maps_above_input = float(run.stdout.split()[-1])
    assert maps_above_input < 2.6


def test_fast_net_pools_once_and_upsamples_back():
    net = randomised(fast_quad_l2net_confcfs())
    with torch.no_grad():
        assert net(torch.randn(1, 3, 40, 50)).descriptors.shape == (1, 128, 40, 50)
        assert net(torch.randn(1, 3, 41, 51)).descriptors.shape == (1, 128, 40, 50)  # max-pool floors odd sizes


def test_parameter_counts_are_the_released_model_sizes():
    assert count_parameters(quad_l2net_confcfs()) == 484_387  # "0.5M weights"
    assert count_parameters(quad_l2net_confcfs(mchan=6)) == 1_038_899  # N8_big, "1.0M"
    assert count_parameters(fast_quad_l2net_confcfs()) == 484_387  # same convolutions, one pooling


def test_net_string_is_parsed_not_executed():
    assert parse_net_string("Quad_L2Net_ConfCFS()") == ("Quad_L2Net_ConfCFS", {})
    assert parse_net_string(" Quad_L2Net_ConfCFS(mchan=6) ") == ("Quad_L2Net_ConfCFS", {"mchan": 6})
    assert parse_net_string("Fast_Quad_L2Net_ConfCFS(dim=64)") == ("Fast_Quad_L2Net_ConfCFS", {"dim": 64})
    with pytest.raises(ValueError, match="unknown R2D2 architecture 'L2_Net'"):
        parse_net_string("L2_Net()")
    with pytest.raises(ValueError, match="not a literal"):
        parse_net_string("Quad_L2Net_ConfCFS(mchan=__import__('os').getpid())")
    with pytest.raises(ValueError):
        parse_net_string("__import__('os').system('true')")
    with pytest.raises(ValueError, match="Name"):
        parse_net_string("Quad_L2Net_ConfCFS(4)")


def save_released_format(net: torch.nn.Module, path, net_string: str, prefix: str, with_losses: bool) -> None:
    """A checkpoint as naver/r2d2 saved them: legacy (non-zip) pickle, `net` string, prefixed keys."""
    checkpoint = {
        "net": net_string,
        "state_dict": collections.OrderedDict((prefix + k, v) for k, v in net.state_dict().items()),
    }
    if with_losses:  # the faster2d2 files also carry their training log
        checkpoint["training_losses"] = [collections.defaultdict(list, {"loss": [0.5, 0.25]})]
        checkpoint["git"] = ["commit 0000"]
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)


@pytest.mark.parametrize(
    ("net_string", "build", "prefix", "with_losses"),
    [
        ("Quad_L2Net_ConfCFS()", quad_l2net_confcfs, "module.", False),
        ("Quad_L2Net_ConfCFS(mchan=6)", lambda: quad_l2net_confcfs(mchan=6), "module.", False),
        ("Fast_Quad_L2Net_ConfCFS()", fast_quad_l2net_confcfs, "", True),
    ],
)
def test_random_weights_in_the_released_format_load_strictly(tmp_path, net_string, build, prefix, with_losses):
    source = randomised(build(), seed=3)
    path = tmp_path / "model.pt"
    save_released_format(source, path, net_string, prefix, with_losses)
    loaded = load_official(path)
    assert not loaded.training
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    image = torch.randn(1, 3, 24, 32)
    with torch.no_grad():
        assert torch.equal(loaded(image).descriptors, source(image).descriptors)


def test_wrong_architecture_or_extra_keys_fail(tmp_path):
    path = tmp_path / "model.pt"
    save_released_format(quad_l2net_confcfs(), path, "Quad_L2Net_ConfCFS(mchan=6)", "module.", False)
    with pytest.raises(ValueError, match="do not fit"):
        load_official(path)
    net = quad_l2net_confcfs()
    checkpoint = {"net": "Quad_L2Net_ConfCFS()", "state_dict": {**net.state_dict(), "extra.weight": torch.zeros(1)}}
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match="extra.weight"):
        load_official(path)
    torch.save({"state_dict": net.state_dict()}, path)
    with pytest.raises(ValueError, match="not a naver/r2d2 checkpoint"):
        load_official(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch exploited",))


def test_a_pickle_with_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save(
        {"net": "Quad_L2Net_ConfCFS()", "state_dict": {}, "x": _Exploit()}, path, _use_new_zipfile_serialization=False
    )
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system"):
        read_checkpoint(path)
    assert not (tmp_path / "exploited").exists()


RELEASED = {
    "r2d2_WASF_N16.pt": ("Quad_L2Net_ConfCFS()", 484_387),
    "r2d2_WAF_N16.pt": ("Quad_L2Net_ConfCFS()", 484_387),
    "r2d2_WASF_N8_big.pt": ("Quad_L2Net_ConfCFS(mchan=6)", 1_038_899),
    "faster2d2_WASF_N16.pt": ("Fast_Quad_L2Net_ConfCFS()", 484_387),
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_files_load_strictly(name):
    path = shared_data("weights", "r2d2", name)
    net_string, parameters = RELEASED[name]
    assert read_checkpoint(path)["net"] == net_string
    net = load_official(path)
    assert count_parameters(net) == parameters
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 16, 16))
    assert torch.isfinite(out.descriptors).all()
