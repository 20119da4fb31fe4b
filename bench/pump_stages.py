"""Where PUMP's single-scale matching spends its time, stage by stage, against each stage's floor, in one process.

    python -m bench.pump_stages --reference /tmp/ref_pump --resize 256 --repeat 3

Same random official-format weights and demo pair as bench/pump_matching.py.  Every stage is timed (wall
seconds, median of --repeat matching calls) by wrapping the functions the matcher calls; floors are measured in
the same process: the level-0 product as one whole sgemm (2688x128 by 128x~43k at 256), the descriptor network's
convolution FLOPs at that sgemm rate, and torch's clamp(0)^1.5 at its rate on one cache-resident map times the
elements each pass activates (a quarter of level 0 in pass 1, all of it in pass 2).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pump_matching import DEMO, random_weights  # noqa: E402
from corrlab.models.convmixer import ConvMixer  # noqa: E402
from corrlab.models.pump import single_scale  # noqa: E402
from corrlab.models.pump.cli import load_image  # noqa: E402
from corrlab.models.pump.matcher import PumpMatcher  # noqa: E402
from corrlab.models.pump.modes import make_matcher  # noqa: E402
from corrlab.ops import pyramid  # noqa: E402


class Clock:
    """Wall seconds per stage; `phase` names the pass the level-0 product is attributed to."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.phase = ""

    def wrap(self, owner, attribute: str, stage: str | None = None, phase: str | None = None) -> None:
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            if phase is not None:
                self.phase = phase
            start = time.perf_counter()
            result = original(*args, **kwargs)
            self.seconds[stage or f"{self.phase}: level-0 product"] += time.perf_counter() - start
            return result

        setattr(owner, attribute, timed)


def conv_flops(net: torch.nn.Module, image: torch.Tensor) -> float:
    """Multiply-add FLOPs (x2) of every convolution of `net` on `image`."""
    total = 0.0

    def count(module, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        total += 2.0 * output.numel() * module.in_channels // module.groups * kh * kw

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(image[None])
    for hook in hooks:
        hook.remove()
    return total


def best_seconds(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="scratch checkout of naver/pump (for its demo pair)")
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--matcher-args", default="", help="matching keys, e.g. 'level0=conv chunk_mb=16'")
    args = parser.parse_args()
    weights = Path(args.reference) / "checkpoints" / "corrlab_random.pt"
    weights.parent.mkdir(exist_ok=True)
    random_weights(weights)
    net = ConvMixer()
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    matching = {"mode": "single", "resize": args.resize}
    for item in args.matcher_args.split():
        key, value = item.split("=")
        matching[key] = value if key == "level0" else float(value)
    matcher = make_matcher(net, matching)
    (image1, _), (image2, _) = (load_image(str(Path(args.reference) / p), matching, torch.device("cpu")) for p in DEMO)

    clock = Clock()
    clock.wrap(matcher, "dense", "descriptors (both images)")
    clock.wrap(single_scale.PyramidMatcher, "level0")
    clock.wrap(matcher.pyramid, "forward_pass", "pass 1 + levels >= 1 (total)", phase="pass 1")
    clock.wrap(matcher.pyramid, "best_correspondences", "pass 2 (total)", phase="pass 2")
    clock.wrap(pyramid, "max_pool_activate", "pass 1: max-pool + activation")
    clock.wrap(pyramid, "aggregate_", "pass 1: aggregation into level 1")
    clock.wrap(pyramid, "pyramid_level", "levels >= 2: build")
    clock.wrap(pyramid, "backtrack_", "levels >= 2: top-down")
    clock.wrap(pyramid, "top_down_level0_", "pass 2: activation + top-down + maxima")
    per_run, totals, rows = [], [], 0
    for _ in range(args.repeat):
        clock.seconds.clear()
        start = time.perf_counter()
        rows = len(matcher(image1, image2))
        totals.append(time.perf_counter() - start)
        per_run.append(dict(clock.seconds))

    dense1, desc2 = (PumpMatcher.dense(matcher, image) for image in (image1, image2))  # not the timed wrapper
    cells = PumpMatcher.cells(dense1)
    a = cells.permute(1, 2, 0).reshape(-1, cells.shape[0]).contiguous()
    b = desc2.reshape(desc2.shape[0], -1).contiguous()
    out = torch.empty(a.shape[0], b.shape[1])
    sgemm_s = best_seconds(lambda: torch.mm(a, b, out=out))
    sgemm_flops = 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
    rate = sgemm_flops / sgemm_s
    one_map = torch.rand(desc2.shape[1] * desc2.shape[2])
    work = one_map.clone()
    pow_s = best_seconds(lambda: [work.copy_(one_map).clamp_min_(0).pow_(1.5) for _ in range(200)]) / 200
    copy_s = best_seconds(lambda: [work.copy_(one_map) for _ in range(200)]) / 200
    pow_rate = one_map.numel() / max(pow_s - copy_s, 1e-12)
    level0 = out.numel()
    flops = conv_flops(net, image1) + conv_flops(net, image2)
    floors = {
        "descriptors (both images)": flops / rate,
        "pass 1: level-0 product": sgemm_s,
        "pass 2: level-0 product": sgemm_s,
        "pass 1: max-pool + activation": level0 / 4 / pow_rate,
        "pass 2: activation + top-down + maxima": level0 / pow_rate,
    }
    print(
        f"--resize {args.resize}: level 0 = {a.shape[0]} cells x {b.shape[1]} pixels ({level0:,} elements); "
        f"{rows} correspondences; {args.repeat} runs; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"floors measured here: sgemm {a.shape[0]}x{a.shape[1]} by {a.shape[1]}x{b.shape[1]} {sgemm_s:.3f} s "
        f"({rate / 1e9:.1f} GFLOP/s); descriptor convolutions {flops / 1e9:.1f} GFLOP; clamp(0)^1.5 "
        f"{pow_rate / 1e9:.2f} G elements/s"
    )
    print(f"matching call: {statistics.median(totals):.3f} s (runs {', '.join(f'{t:.3f}' for t in totals)})")
    print(f"{'stage':48s} {'median s':>9s} {'floor s':>8s} {'x floor':>8s}  runs")
    for stage in per_run[0]:
        values = [run.get(stage, 0.0) for run in per_run]
        median = statistics.median(values)
        floor = floors.get(stage)
        ratio = f"{median / floor:8.2f}" if floor else " " * 8
        floor_text = f"{floor:8.3f}" if floor else " " * 8
        print(f"{stage:48s} {median:9.3f} {floor_text} {ratio}  {', '.join(f'{v:.3f}' for v in values)}")


if __name__ == "__main__":
    main()
