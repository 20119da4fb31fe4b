"""Local correlation (PWC-Net / GOCor): the reference against an unfold formulation and a hand-picked element, the
adjoint identity, and the compiled C++ (CUDA with a GPU) backends against the reference, values and gradients."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.cpp_extension import include_paths

from corrlab.ops.extension import CSRC
from corrlab.ops.local_correlation import (
    CUDA_SOURCES,
    local_correlation,
    local_correlation_grad_second_torch,
    local_correlation_torch,
    local_correlation_transpose,
    local_correlation_transpose_torch,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def unfold_correlation(first: torch.Tensor, second: torch.Tensor, radius: int) -> torch.Tensor:
    """Independent formulation: F.unfold gathers the (2r+1)^2 window of `second` in row-major (dy-major) order."""
    b, c, h, w = first.shape
    size = 2 * radius + 1
    windows = F.unfold(second, size, padding=radius).view(b, c, size * size, h, w)
    return (first[:, :, None] * windows).sum(1) / c


@pytest.fixture
def compiled(monkeypatch, request):
    """Force the compiled backend of the device under test (CORRLAB_OPS)."""
    device = request.param
    monkeypatch.setenv("CORRLAB_OPS", "cuda" if device == "cuda" else "cpp")
    return device


@pytest.mark.parametrize("radius", [1, 4])
def test_reference_equals_unfold_formulation(radius):
    torch.manual_seed(radius)
    first, second = torch.randn(2, 5, 7, 11, dtype=torch.float64), torch.randn(2, 5, 7, 11, dtype=torch.float64)
    torch.testing.assert_close(
        local_correlation_torch(first, second, radius), unfold_correlation(first, second, radius)
    )


def test_channel_order_is_dy_major_and_divided_by_channels():
    torch.manual_seed(0)
    first, second = torch.randn(1, 3, 6, 8), torch.randn(1, 3, 6, 8)
    corr = local_correlation_torch(first, second)
    y, x, dy, dx = 2, 3, -1, 3  # channel (dy + 4) * 9 + (dx + 4) = 34
    expected = (first[0, :, y, x] * second[0, :, y + dy, x + dx]).sum() / 3
    torch.testing.assert_close(corr[0, 34, y, x], expected)
    assert corr[0, 0, 0, 0] == 0  # (dy, dx) = (-4, -4) falls outside the image at the corner


def test_reference_adjoint_identity_and_gradients():
    torch.manual_seed(1)
    first, second = torch.randn(2, 4, 6, 9, dtype=torch.float64), torch.randn(2, 4, 6, 9, dtype=torch.float64)
    residual = torch.randn(2, 81, 6, 9, dtype=torch.float64)
    lhs = (local_correlation_torch(first, second) * residual).sum()
    rhs = (first * local_correlation_transpose_torch(residual, second)).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)
    second.requires_grad_(True)
    (local_correlation_torch(first, second) * residual).sum().backward()
    torch.testing.assert_close(second.grad, local_correlation_grad_second_torch(residual, first))


@pytest.mark.parametrize("compiled", DEVICES, indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_values_and_gradients_equal_reference(compiled, dtype):
    torch.manual_seed(2)
    shape = (2, 13, 5, 11)  # odd sizes, window wider than the image height
    first, second = (torch.randn(shape, dtype=dtype, device=compiled, requires_grad=True) for _ in range(2))
    residual = torch.randn(2, 81, 5, 11, dtype=dtype, device=compiled, requires_grad=True)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}

    def outputs(corr, transpose):
        a, b = corr(first, second), transpose(residual, second)
        grads = torch.autograd.grad((a * a).sum() + (b.sin()).sum(), (first, second, residual))
        return (a, b, *grads)

    ours = outputs(local_correlation, local_correlation_transpose)
    reference = outputs(local_correlation_torch, local_correlation_transpose_torch)
    for got, expected in zip(ours, reference):
        torch.testing.assert_close(got, expected, **tol)


@pytest.mark.parametrize("compiled", DEVICES, indirect=True)
def test_compiled_adjoint_identity(compiled):
    torch.manual_seed(3)
    first, second = (torch.randn(1, 6, 9, 7, dtype=torch.float64, device=compiled) for _ in range(2))
    residual = torch.randn(1, 81, 9, 7, dtype=torch.float64, device=compiled)
    lhs = (local_correlation(first, second) * residual).sum()
    rhs = (first * local_correlation_transpose(residual, second)).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("compiled", DEVICES, indirect=True)
def test_compiled_gradcheck_first_and_second_order(compiled):
    torch.manual_seed(4)
    first, second = (
        torch.randn(1, 2, 3, 5, dtype=torch.float64, device=compiled, requires_grad=True) for _ in range(2)
    )
    residual = torch.randn(1, 81, 3, 5, dtype=torch.float64, device=compiled, requires_grad=True)
    assert torch.autograd.gradcheck(local_correlation, (first, second))
    assert torch.autograd.gradcheck(local_correlation_transpose, (residual, second))
    assert torch.autograd.gradgradcheck(local_correlation, (first, second))
    assert torch.autograd.gradgradcheck(local_correlation_transpose, (residual, second))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="81 channels"):
        local_correlation_transpose(torch.zeros(1, 80, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="equal B, H, W"):
        local_correlation(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 5, 4))


@pytest.mark.slow
def test_cuda_sources_compile_with_nvcc(tmp_path):
    nvcc = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"
    if not nvcc.is_file():
        pytest.skip(f"nvcc not found at {nvcc} (set CUDA_HOME)")
    source = CSRC / next(name for name in CUDA_SOURCES if name.endswith(".cu"))
    command = [str(nvcc), "-c", str(source), "-o", str(tmp_path / "local.o"), "-std=c++20", "-arch=sm_80"]
    command += ["--expt-relaxed-constexpr", *(f"-I{p}" for p in include_paths())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "local.o").stat().st_size > 10_000
