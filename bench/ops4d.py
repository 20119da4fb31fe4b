"""4-D ops at Patch2Pix's size for a 1024 x 768 pair (stride-8 features 128 x 96, pooled volume 64 x 48 x 64 x 48):
NCNet's Conv4d (a Python loop of conv3d, from the reference checkout) against our PyTorch reference and C++
kernel; the strided-slice 4-D max-pool against ours; the correlation as bmm and as our C++ kernel.  Each case runs
in a fresh process (peak memory is its own); the op's own median time is printed by the case.

    python -m bench.ops4d --reference /tmp/ref_p2p
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.runner import Case, run_cases

ROOT = Path(__file__).resolve().parents[1]
POOLED = (1, 1, 64, 48, 64, 48)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def case_main(name: str, reference: Path | None, repeat: int, out: Path) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        if name.startswith("conv4d"):
            layers = [
                (torch.randn(16, 1, 3, 3, 3, 3) * 0.1, torch.randn(16)),
                (torch.randn(1, 16, 3, 3, 3, 3) * 0.1, torch.randn(1)),
            ]
            x = torch.randn(*POOLED)
            if name == "conv4d-ncnet-loop":
                sys.path.insert(0, str(reference))
                from networks.ncn.conv4d import conv4d as ncnet_conv4d

                run = lambda: [
                    ncnet_conv4d(
                        torch.relu(ncnet_conv4d(x, w1, b1, permute_filters=True)), w2, b2, permute_filters=True
                    )  # noqa: E731
                    for (w1, b1), (w2, b2) in [layers]
                ]
            else:
                os.environ["CORRLAB_OPS"] = "torch" if name == "conv4d-torch" else "cpp"
                from corrlab.ops.conv4d import conv4d

                run = lambda: conv4d(torch.relu(conv4d(x, *layers[0])), *layers[1])  # noqa: E731
        elif name.startswith("maxpool"):
            full = torch.randn(1, 1, 128, 96, 128, 96)
            if name == "maxpool-ncnet-slices":
                sys.path.insert(0, str(reference))
                from networks.modules import maxpool4d as sliced

                run = lambda: sliced(full, k_size=2)  # noqa: E731
            else:
                os.environ["CORRLAB_OPS"] = "torch" if name == "maxpool-torch" else "cpp"
                from corrlab.ops.maxpool4d import maxpool4d

                run = lambda: maxpool4d(full, 2)  # noqa: E731
        else:
            f0, f1 = torch.randn(1, 256, 128, 96), torch.randn(1, 256, 128, 96)
            if name == "correlation-pooled":
                from corrlab.ops.correlation4d import pooled_correlation4d

                run = lambda: pooled_correlation4d(f0, f1, 2)  # noqa: E731
            else:
                os.environ["CORRLAB_OPS"] = "torch" if name == "correlation-bmm" else "cpp"
                from corrlab.ops.correlation4d import correlation4d

                run = lambda: correlation4d(f0, f1)  # noqa: E731
        run()  # warm-up (and extension load)
        out.write_text(json.dumps({"case": name, "op_seconds": timed(run, repeat)}))


CASES = {
    "conv4d (two NC layers 1->16->1, 3^4)": ["conv4d-ncnet-loop", "conv4d-torch", "conv4d-cpp"],
    "maxpool4d (k=2 on 128x96x128x96)": ["maxpool-ncnet-slices", "maxpool-torch", "maxpool-cpp"],
    "correlation (256 ch, 128x96 both)": ["correlation-bmm", "correlation-cpp", "correlation-pooled"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case")
    parser.add_argument(
        "--reference", type=Path, help="checkout of GrumpyZhou/patch2pix (for NCNet's Conv4d / max-pool)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.case:
        case_main(args.case, args.reference, args.repeat, args.out)
        return
    work = Path(tempfile.mkdtemp(prefix="ops4d_bench_"))
    for title, names in CASES.items():
        print(title)
        cases = [
            Case(
                n,
                f"{sys.executable} -m bench.ops4d --case {n} --reference {args.reference} --repeat {args.repeat} --out {work / n}.json",
                cwd=str(ROOT),
            )
            for n in names
        ]
        run_cases(cases, baseline=names[0], repeat=1)
        base = json.loads((work / f"{names[0]}.json").read_text())["op_seconds"]
        for name in names:
            seconds = json.loads((work / f"{name}.json").read_text())["op_seconds"]
            print(f"  {name:24s} op median {seconds:8.3f} s   speed-up vs {names[0]}: {base / seconds:6.2f}x")


if __name__ == "__main__":
    main()
