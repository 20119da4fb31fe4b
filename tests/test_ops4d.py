"""4-D ops: the PyTorch references against independent slow formulations, and the compiled C++ backend (CUDA when a
GPU is present) against the references, values and gradients, at odd sizes."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from corrlab.ops.conv4d import Conv4d, conv4d, conv4d_torch
from corrlab.ops.correlation4d import correlation4d, correlation4d_torch, pooled_correlation4d
from corrlab.ops.maxpool4d import maxpool4d, maxpool4d_torch, window_offsets

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def naive_conv4d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Sum over the S^4 taps of (weight tap) x (input shifted by the tap), zero padding."""
    s = weight.shape[2]
    p = s // 2
    padded = F.pad(x, (p, p) * 4)
    i, j, k, l = x.shape[2:]
    out = torch.zeros(x.shape[0], weight.shape[0], i, j, k, l, dtype=x.dtype)
    for a, c, e, f in itertools.product(range(s), repeat=4):
        window = padded[:, :, a : a + i, c : c + j, e : e + k, f : f + l]
        out += torch.einsum("oi,bijklm->bojklm", weight[:, :, a, c, e, f], window)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1, 1, 1)


def sliced_maxpool4d(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """NCNet's formulation: k^4 strided slices (i outermost, l innermost), max over them."""
    i2, j2, k2, l2 = (d // k for d in x.shape[2:])
    slices = [
        x[:, :, di::k, dj::k, dk::k, dl::k][:, :, :i2, :j2, :k2, :l2]
        for di, dj, dk, dl in itertools.product(range(k), repeat=4)
    ]
    return torch.stack(slices, dim=-1).max(dim=-1)


@pytest.fixture
def backend(monkeypatch, request):
    """Force a backend for the ops (CORRLAB_OPS)."""
    monkeypatch.setenv("CORRLAB_OPS", request.param)
    return request.param


# --- references against independent formulations -----------------------------------------------
def test_correlation_reference_is_the_channel_dot_product():
    torch.manual_seed(0)
    f0, f1 = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 6, 1)
    expected = torch.einsum("bcij,bckl->bijkl", f0, f1)[:, None]
    torch.testing.assert_close(correlation4d_torch(f0, f1), expected)


def test_maxpool_reference_matches_strided_slices_including_ties():
    torch.manual_seed(0)
    x = torch.randint(0, 3, (2, 1, 5, 6, 7, 4)).float()  # many ties: the first maximum must win
    values, index = maxpool4d_torch(x, 2)
    expected_values, expected_index = sliced_maxpool4d(x, 2)
    torch.testing.assert_close(values, expected_values)
    assert torch.equal(index.long(), expected_index)
    di, dj, dk, dl = window_offsets(index, 2)
    picked = x[
        0, 0, 2 * 1 + di[0, 0, 1, 2, 0, 1], 2 * 2 + dj[0, 0, 1, 2, 0, 1], dk[0, 0, 1, 2, 0, 1], 2 + dl[0, 0, 1, 2, 0, 1]
    ]
    assert picked == values[0, 0, 1, 2, 0, 1]


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_conv4d_reference_matches_naive_sum_over_taps(kernel):
    torch.manual_seed(kernel)
    x = torch.randn(2, 3, 4, 3, 3, 5, dtype=torch.float64)
    weight = torch.randn(2, 3, kernel, kernel, kernel, kernel, dtype=torch.float64)
    bias = torch.randn(2, dtype=torch.float64)
    torch.testing.assert_close(conv4d_torch(x, weight, bias), naive_conv4d(x, weight, bias))


def test_pooled_correlation_equals_pool_of_full_correlation(monkeypatch):
    monkeypatch.setattr("corrlab.ops.correlation4d.BLOCK_BYTES", 1)  # one block per pooled row
    torch.manual_seed(0)
    f0, f1 = torch.randn(1, 8, 7, 6), torch.randn(1, 8, 4, 5)
    values, index = pooled_correlation4d(f0, f1, 2)
    expected_values, expected_index = maxpool4d_torch(correlation4d_torch(f0, f1), 2)
    torch.testing.assert_close(values, expected_values)
    assert torch.equal(index, expected_index)


def test_invalid_inputs_are_explained():
    with pytest.raises(ValueError, match="odd"):
        Conv4d(1, 1, 2)
    with pytest.raises(ValueError, match="window"):
        maxpool4d(torch.zeros(1, 1, 3, 3, 3, 3), 5)
    with pytest.raises(ValueError, match="batch/channels"):
        correlation4d(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))


# --- compiled backends against the references ----------------------------------------------------
def _compiled_params():
    params = [pytest.param("cpp", id="cpp")]
    if torch.cuda.is_available():
        params.append(pytest.param("cuda", id="cuda", marks=pytest.mark.gpu))
    return params


def _device(backend: str) -> str:
    return "cuda" if backend == "cuda" else "cpu"


@pytest.mark.parametrize("backend", _compiled_params(), indirect=True)
def test_compiled_correlation_values_and_gradients(backend, monkeypatch):
    device = _device(backend)
    torch.manual_seed(0)
    f0 = torch.randn(2, 19, 5, 3, dtype=torch.float64, device=device, requires_grad=True)
    f1 = torch.randn(2, 19, 2, 7, dtype=torch.float64, device=device, requires_grad=True)
    out = correlation4d(f0, f1)
    grad = torch.randn_like(out)
    (g0, g1) = torch.autograd.grad(out, (f0, f1), grad)
    monkeypatch.setenv("CORRLAB_OPS", "torch")
    expected = correlation4d(f0, f1)
    e0, e1 = torch.autograd.grad(expected, (f0, f1), grad)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close((g0, g1), (e0, e1))
    assert correlation4d(f0.float(), f1.float()).dtype == torch.float32


@pytest.mark.parametrize("backend", _compiled_params(), indirect=True)
def test_compiled_maxpool_values_indices_and_gradients(backend, monkeypatch):
    device = _device(backend)
    torch.manual_seed(0)
    for k, shape in ((2, (2, 3, 5, 7, 4, 9)), (3, (1, 1, 7, 3, 6, 5))):
        x = torch.randn(*shape, dtype=torch.float64, device=device)
        x[0, 0, 0, 0, 0, :2] = x[0, 0, 0, 0, 0, 0]  # a tie
        x.requires_grad_(True)
        values, index = maxpool4d(x, k)
        grad = torch.randn_like(values)
        (gx,) = torch.autograd.grad(values, x, grad)
        with monkeypatch.context() as patch:
            patch.setenv("CORRLAB_OPS", "torch")
            expected, expected_index = maxpool4d(x, k)
            (ex,) = torch.autograd.grad(expected, x, grad)
        torch.testing.assert_close(values, expected)
        assert torch.equal(index, expected_index) and index.dtype == torch.uint8
        torch.testing.assert_close(gx, ex)


@pytest.mark.parametrize("backend", _compiled_params(), indirect=True)
@pytest.mark.parametrize("kernel,channels", [(3, (1, 4)), (3, (3, 1)), (5, (2, 2)), (1, (2, 3))])
def test_compiled_conv4d_values_and_gradients(backend, kernel, channels, monkeypatch):
    device = _device(backend)
    torch.manual_seed(kernel)
    ci, co = channels
    x = torch.randn(2, ci, 5, 3, 7, 4, dtype=torch.float64, device=device, requires_grad=True)
    weight = torch.randn(co, ci, *(kernel,) * 4, dtype=torch.float64, device=device, requires_grad=True)
    bias = torch.randn(co, dtype=torch.float64, device=device, requires_grad=True)
    out = conv4d(x, weight, bias)
    grad = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, weight, bias), grad)
    monkeypatch.setenv("CORRLAB_OPS", "torch")
    expected = conv4d(x, weight, bias)
    expected_grads = torch.autograd.grad(expected, (x, weight, bias), grad)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grads, expected_grads)


@pytest.mark.parametrize("backend", _compiled_params(), indirect=True)
def test_compiled_conv4d_float32_without_bias(backend, monkeypatch):
    device = _device(backend)
    torch.manual_seed(1)
    x = torch.randn(1, 2, 6, 5, 9, 11, device=device)  # interior rows/columns take the vectorised path
    weight = torch.randn(3, 2, 3, 3, 3, 3, device=device)
    out = conv4d(x, weight)
    monkeypatch.setenv("CORRLAB_OPS", "torch")
    torch.testing.assert_close(out, conv4d(x, weight), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("backend", _compiled_params(), indirect=True)
def test_compiled_conv4d_passes_gradcheck(backend):
    device = _device(backend)
    torch.manual_seed(0)
    x = torch.randn(1, 2, 3, 2, 3, 2, dtype=torch.float64, device=device, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, 3, 3, dtype=torch.float64, device=device, requires_grad=True)
    bias = torch.randn(2, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(conv4d, (x, weight, bias))


def test_conv4d_layer_uses_its_weight_and_bias():
    layer = Conv4d(2, 3, 3).double()
    x = torch.randn(1, 2, 3, 4, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(layer(x), naive_conv4d(x, layer.weight.detach(), layer.bias.detach()))
