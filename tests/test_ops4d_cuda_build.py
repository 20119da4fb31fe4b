"""The CUDA kernels of the 4-D ops compile with nvcc (checked on machines without a GPU too; running them is
covered by tests/test_ops4d.py when a GPU is present)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from torch.utils.cpp_extension import include_paths

from corrlab.ops.extension import CSRC
from corrlab.ops.ops4d_backend import CUDA_SOURCES


@pytest.mark.slow
def test_cuda_sources_compile_with_nvcc(tmp_path):
    nvcc = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"
    if not nvcc.is_file():
        pytest.skip(f"nvcc not found at {nvcc} (set CUDA_HOME)")
    unit = tmp_path / "ops4d_cuda_all.cu"  # one translation unit: the torch headers are parsed once
    unit.write_text("".join(f'#include "{CSRC / name}"\n' for name in CUDA_SOURCES if name.endswith(".cu")))
    command = [
        str(nvcc),
        "-c",
        str(unit),
        "-o",
        str(tmp_path / "ops4d.o"),
        "-std=c++20",
        "-arch=sm_80",
        "--expt-relaxed-constexpr",
        *(f"-I{p}" for p in include_paths()),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ops4d.o").stat().st_size > 10_000
