"""Where and why our GLU-Net-GOCor / PWC-Net-GOCor and DenseMatching's differ in float32 (same random weights in
their format, same inputs, eval mode).

Per flow level it prints four max-abs differences (px of each level's grid):
  ours - ref          our float32 network vs DenseMatching's float32 network
  ref' - ref          DenseMatching against itself when only the summation order of its correlation stand-in changes
                      (channels, resp. the 81 window offsets, summed in reverse order): the float32 noise floor
  ref - ref64         DenseMatching float32 vs DenseMatching float64 (the exact function up to 1e-9 px)
  ours - ref64        ours float32 vs DenseMatching float64
and, per local-correlation call, the same for the correlation module alone fed with the reference's own inputs
(teacher-forced: the inputs are bit-identical, so the difference is created by that module).  `--dump` saves the
reference's float32 flows, `--against` compares this run's with such a file (run once with
ATEN_CPU_CAPABILITY=avx2 and once without to see what the CPU's vector width alone does).

The reference snapshot needs only the float64 patch of `third_party/GOCor/GOCor/distance.py` (bins in center.dtype);
the CuPy correlation is replaced at run time by bench/densematching_standin.py.

    python bench/gocor_float32.py --reference /tmp/gocor-ref/DenseMatching --models pwcnet_gocor glunet_gocor
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.densematching_standin import install, reordered  # noqa: E402
from bench.gocor_fidelity import DATA, GOCOR_ARGUMENTS, PAIRS, randomise, transfer  # noqa: E402
from corrlab.datamodules.image_io import read_image  # noqa: E402
from corrlab.models.dense_flow.official import GLUNET_RULES, PWCNET_RULES  # noqa: E402
from corrlab.models.glunet.glunet import GLUNet, GLUNetConfig, preprocess_pair  # noqa: E402
from corrlab.models.pwcnet.pwcnet import PWCNet, PWCNetConfig  # noqa: E402


@contextmanager
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # GOCor builds its distance-map centre with torch.Tensor(...)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


class Calls:
    """Records (inputs, output) of every call of the given modules, in call order."""

    def __init__(self, modules):
        self.calls, self.handles = [], []
        for name, module in modules:
            self.handles.append(module.register_forward_hook(self.hook(name, module)))

    def hook(self, name, module):
        def record(_, inputs, output):
            output = output[0] if isinstance(output, tuple) else output
            self.calls.append((name, module, tuple(x for x in inputs if torch.is_tensor(x)), output))

        return record

    def remove(self):
        for h in self.handles:
            h.remove()


def build_pwcnet(gocor: bool):
    from models.PWCNet.pwc_net import PWCNetModel

    kind = "LocalGOCor" if gocor else "local_corr"
    reference = PWCNetModel(
        local_corr_type=kind, local_gocor_arguments={"optim_iter": 3}, same_local_corr_at_all_levels=False
    )
    randomise(reference, 1)
    ours = PWCNet(PWCNetConfig(gocor=gocor))
    transfer(reference, ours, PWCNET_RULES)
    corr = [(f"corr{level}", getattr(reference, f"local_corr_{level}")) for level in (6, 5, 4, 3, 2)] if gocor else []
    ours_corr = [(f"corr{level}", getattr(ours, f"local_corr_{level}")) for level in (6, 5, 4, 3, 2)] if gocor else []
    return reference, ours, corr, ours_corr


def build_glunet(gocor: bool):
    from models.GLUNet.GLU_Net import GLUNetModel

    reference = GLUNetModel(
        iterative_refinement=True,
        **GOCOR_ARGUMENTS,
    )
    randomise(reference, 0)
    ours = GLUNet(GLUNetConfig(gocor=True))
    transfer(reference, ours, GLUNET_RULES)
    return reference, ours, [("local_corr", reference.local_corr)], [("local_corr", ours.local_corr)]


def pwcnet_inputs(source, target):
    h, w = target.shape[-2:]
    size = (-(-h // 64) * 64, -(-w // 64) * 64)
    return tuple(F.interpolate(x, size=size, mode="bilinear")[:, [2, 1, 0]] for x in (target, source))


def glunet_inputs(source, target):
    src, tgt, src_256, tgt_256, _, _ = preprocess_pair(source, target)
    return tgt, src, tgt_256, src_256


def pwcnet_levels(net, inputs, reference: bool) -> dict[str, torch.Tensor]:
    flows = net(*inputs)["flow_estimates"] if reference else net(*inputs)
    return {f"flow{level}": flow * 20.0 / 2**level for level, flow in zip((6, 5, 4, 3, 2), flows)}


def glunet_levels(net, inputs, reference: bool) -> dict[str, torch.Tensor]:
    if reference:
        low, high = net(*inputs)
        flows = [*low["flow_estimates"], *high["flow_estimates"]]
    else:
        out = net(*inputs)
        flows = [*out["flow_256"], *out["flow"]]
    return {f"flow{4 - i}": flow for i, flow in enumerate(flows)}


MODELS = {
    "pwcnet_gocor": (lambda: build_pwcnet(True), pwcnet_inputs, pwcnet_levels),
    "pwcnet": (lambda: build_pwcnet(False), pwcnet_inputs, pwcnet_levels),
    "glunet_gocor": (lambda: build_glunet(True), glunet_inputs, glunet_levels),
}


def compare(model: str, source: torch.Tensor, target: torch.Tensor) -> tuple[dict, dict]:
    build, make_inputs, levels = MODELS[model]
    reference, ours, ref_corr, our_corr = build()
    reference.eval(), ours.eval()
    inputs = make_inputs(source, target)
    calls = Calls(ref_corr)
    ref = levels(reference, inputs, True)
    calls.remove()
    with reordered():
        ref_reordered = levels(reference, inputs, True)
    ours_out = levels(ours, inputs, False)
    reference64 = copy.deepcopy(reference).double()
    with float64():
        ref64 = levels(reference64, tuple(x.double() for x in inputs), True)
    result = {
        name: {
            "ours - ref": max_diff(ours_out[name], ref[name]),
            "ref' - ref": max_diff(ref_reordered[name], ref[name]),
            "ref - ref64": max_diff(ref[name], ref64[name]),
            "ours - ref64": max_diff(ours_out[name], ref64[name]),
            "max |flow|": ref64[name].abs().max().item(),
        }
        for name in ref
    }
    # teacher-forced correlation modules: each call again on the reference's recorded (bit-identical) inputs
    ours_modules = dict(our_corr)
    for i, (name, module, args, output) in enumerate(calls.calls):
        with reordered():
            again = module(*args)
        module64 = copy.deepcopy(module).double()
        with float64():
            exact = module64(*(x.double() for x in args))
        mine = ours_modules[name](*args)
        result[f"{name} call {i} (teacher-forced)"] = {
            "ours - ref": max_diff(mine, output),
            "ref' - ref": max_diff(again, output),
            "ref - ref64": max_diff(output, exact),
            "ours - ref64": max_diff(mine, exact),
            "max |corr|": exact.abs().max().item(),
        }
    return result, ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="exported DenseMatching snapshot (distance.py patched)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--models", nargs="+", default=["pwcnet_gocor", "glunet_gocor"], choices=list(MODELS))
    parser.add_argument("--pairs", nargs="+", default=["eth3d"], choices=list(PAIRS))
    parser.add_argument("--out", default=None, help="json file for the differences")
    parser.add_argument("--dump", default=None, help="save the reference's float32 flows here (.pt)")
    parser.add_argument("--against", default=None, help="compare the reference's float32 flows with this dump")
    args = parser.parse_args()
    install(args.reference)
    torch.set_grad_enabled(False)
    torch.manual_seed(0)  # the same initial weights in every process (for --dump / --against)
    results, dumps = {}, {}
    against = torch.load(args.against, weights_only=True) if args.against else None
    for pair in args.pairs:
        source_path, target_path = PAIRS[pair]
        source = read_image(Path(args.data) / source_path)[None]
        target = read_image(Path(args.data) / target_path)[None]
        for model in args.models:
            key = f"{pair}/{model}"
            results[key], dumps[key] = compare(model, source, target)
            if against is not None:
                for name, flow in dumps[key].items():
                    results[key][name]["ref - ref(--against)"] = max_diff(flow, against[key][name])
            print(json.dumps({key: results[key]}, indent=1), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    if args.dump:
        torch.save(dumps, args.dump)


if __name__ == "__main__":
    main()
