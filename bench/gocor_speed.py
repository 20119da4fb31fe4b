"""GLU-Net-GOCor inference on a 1024 x 768 pair on the CPU: ours vs DenseMatching's (with the torch stand-in of
bench/densematching_standin.py for its CuPy correlation), time and peak memory, and where the time goes (VGG
pyramid, global GOCor, local GOCor, the rest).

Every run is a fresh process (peak RSS is per process); runs are interleaved ours / reference, alternating which
goes first, and the figures are medians over `--repeats` rounds with the per-round ratio (the machine is shared).

    python bench/gocor_speed.py --reference /tmp/gocor-ref/DenseMatching --repeats 3 [--out speed.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.gocor_fidelity import DATA, PAIRS  # noqa: E402
from bench.peak_memory import peak_rss_mb  # noqa: E402

SIDES = ("ours", "reference")


class PartTimer:
    """Wall time spent inside the given modules (summed over calls)."""

    def __init__(self, parts: dict[str, torch.nn.Module]):
        self.seconds = dict.fromkeys(parts, 0.0)
        for name, module in parts.items():
            module.register_forward_pre_hook(self.start(name))
            module.register_forward_hook(self.stop(name))
        self.started: dict[str, float] = {}

    def start(self, name):
        def hook(*_):
            self.started[name] = time.perf_counter()

        return hook

    def stop(self, name):
        def hook(*_):
            self.seconds[name] += time.perf_counter() - self.started.pop(name)

        return hook


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def pair(width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    from corrlab.datamodules.image_io import read_image

    source_path, target_path = PAIRS["eth3d"]
    return tuple(
        F.interpolate(read_image(DATA / p)[None], size=(height, width), mode="bilinear", align_corners=False)
        for p in (source_path, target_path)
    )


def worker(side: str, reference_root: str, width: int, height: int) -> dict:
    """One timed inference in this process."""
    from bench.densematching_standin import install
    from bench.gocor_float32 import build_glunet
    from corrlab.models.glunet.glunet import estimate_flow

    install(reference_root)
    torch.set_grad_enabled(False)
    torch.manual_seed(0)  # the same initial weights (randomise perturbs them) in every worker process
    reference, ours, _, _ = build_glunet(True)
    reference.eval(), ours.eval()
    source, target = pair(width, height)
    if side == "ours":
        net = ours
        parts = {"vgg pyramid": ours.pyramid, "global GOCor": ours.global_corr, "local GOCor": ours.local_corr}
        del reference

        def run():
            return estimate_flow(ours, source, target)
    else:
        net = reference
        parts = {"vgg pyramid": reference.pyramid, "global GOCor": reference.corr, "local GOCor": reference.local_corr}
        del ours

        def run():
            return reference.estimate_flow(source * 255.0, target * 255.0)

    timer = PartTimer(parts)
    baseline = rss_mb()
    start = time.perf_counter()
    flow = run()
    seconds = time.perf_counter() - start
    del net
    return {
        "side": side,
        "seconds": seconds,
        "peak above baseline (MB)": peak_rss_mb() - baseline,
        "parts (s)": timer.seconds,
        "flow checksum": flow.abs().mean().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="exported DenseMatching snapshot")
    parser.add_argument("--size", nargs=2, type=int, default=(1024, 768), metavar=("W", "H"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", choices=SIDES, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.reference, *args.size)), flush=True)
        return
    rounds = []
    for i in range(args.repeats):
        order = SIDES if i % 2 == 0 else SIDES[::-1]
        runs = {}
        for side in order:
            command = [sys.executable, __file__, "--reference", args.reference, "--worker", side, "--size"]
            output = subprocess.run(
                [*command, *map(str, args.size)], check=True, capture_output=True, text=True
            ).stdout.strip()
            runs[side] = json.loads(output.splitlines()[-1])
        runs["time ratio reference / ours"] = runs["reference"]["seconds"] / runs["ours"]["seconds"]
        runs["memory ratio reference / ours"] = (
            runs["reference"]["peak above baseline (MB)"] / runs["ours"]["peak above baseline (MB)"]
        )
        rounds.append(runs)
        print(json.dumps(runs), flush=True)

    def median(f):
        return statistics.median(f(r) for r in rounds)

    summary = {
        "size (W x H)": f"{args.size[0]} x {args.size[1]}",
        "rounds": len(rounds),
        "median time ratio reference / ours": median(lambda r: r["time ratio reference / ours"]),
        "median memory ratio reference / ours": median(lambda r: r["memory ratio reference / ours"]),
    }
    for side in SIDES:
        summary[f"{side} median s"] = median(lambda r, s=side: r[s]["seconds"])
        summary[f"{side} median peak MB"] = median(lambda r, s=side: r[s]["peak above baseline (MB)"])
        for part in rounds[0][side]["parts (s)"]:
            summary[f"{side} median {part} s"] = median(lambda r, s=side, p=part: r[s]["parts (s)"][p])
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
