"""Local correlation (9 x 9, 1/C) and its adjoint: the C++ (OpenMP) kernels vs the PyTorch reference on the CPU,
CUDA vs torch on a GPU when there is one; forward + backward, median of several runs, side by side in one process.

    python bench/local_correlation.py --shape 1 128 96 128 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from corrlab.ops.local_correlation import local_correlation, local_correlation_transpose


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (and the one-time build)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(backend: str, first: torch.Tensor, second: torch.Tensor, residual: torch.Tensor, repeats: int) -> dict:
    os.environ["CORRLAB_OPS"] = backend

    def forward_backward():
        out = local_correlation(first, second).square().sum() + local_correlation_transpose(residual, second).sum()
        out.backward()
        if first.is_cuda:
            torch.cuda.synchronize()

    def forward():
        with torch.no_grad():
            local_correlation(first, second)
            local_correlation_transpose(residual, second)
        if first.is_cuda:
            torch.cuda.synchronize()

    return {"forward_s": timed(forward, repeats), "forward_backward_s": timed(forward_backward, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=4, default=[1, 128, 96, 128], help="B C H W")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    b, c, h, w = args.shape
    first, second = (torch.randn(b, c, h, w, device=device, requires_grad=True) for _ in range(2))
    residual = torch.randn(b, 81, h, w, device=device, requires_grad=True)
    compiled = "cuda" if device == "cuda" else "cpp"
    results = {name: run(name, first, second, residual, args.repeats) for name in ("torch", compiled)}
    results["speedup"] = {k: results["torch"][k] / results[compiled][k] for k in results["torch"]}
    results["setup"] = {"device": device, "shape": args.shape, "threads": torch.get_num_threads()}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
