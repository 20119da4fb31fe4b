"""Side-by-side fidelity of our GLU-Net-GOCor / PWC-Net-GOCor against DenseMatching's, with the same random weights
saved in DenseMatching's state_dict format and loaded through our official-checkpoint mapping.

DenseMatching needs CUDA + CuPy for its local correlation; run it from an exported snapshot whose
`models/modules/local_correlation/correlation.py` and `third_party/GOCor/GOCor/local_correlation/correlation.py`
are replaced by a torch stand-in (unfold: 81 window products divided by C, channel k = (dy+4)*9 + (dx+4)), whose
VGG is built without downloading weights, and whose PWC-Net warp mask is created on the input's device:

    python bench/gocor_fidelity.py --reference /tmp/gocor-ref/DenseMatching --out /tmp/gocor_fidelity.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from corrlab.datamodules.image_io import read_image
from corrlab.models.dense_flow.official import GLUNET_RULES, PWCNET_RULES, load_official_weights
from corrlab.models.glunet.glunet import GLUNet, GLUNetConfig, preprocess_pair
from corrlab.models.glunet.glunet import estimate_flow as glunet_estimate_flow
from corrlab.models.pwcnet.pwcnet import PWCNet, PWCNetConfig

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
PAIRS = {
    "eth3d": (
        "eth3d/densematching_demo_pair_noGT/eth3d_query.png",
        "eth3d/densematching_demo_pair_noGT/eth3d_reference.png",
    ),
    "hpatches_v_boat_1_2": ("hpatches/partial_pairs/v_boat/2.png", "hpatches/partial_pairs/v_boat/1.png"),
}


def randomise(net: torch.nn.Module, seed: int) -> None:
    """Perturb every parameter and BatchNorm statistic so that no value is at its initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
            elif name.endswith("running_mean"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=g))
            else:
                tensor.add_(0.02 * tensor.abs().mean() * torch.randn(tensor.shape, generator=g))


def transfer(reference: torch.nn.Module, ours: torch.nn.Module, rules) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference_format.pth"
        torch.save({"state_dict": reference.state_dict()}, path)
        load_official_weights(ours, path, rules)


# DenseMatching's GLU-Net-GOCor correlation arguments (train_settings/GLUNet/train_GLUNet_GOCor_static.py)
GOCOR_ARGUMENTS = {
    "global_corr_type": "GlobalGOCor",
    "global_gocor_arguments": {
        "optim_iter": 3,
        "apply_query_loss": True,
        "reg_kernel_size": 3,
        "reg_inter_dim": 16,
        "reg_output_dim": 16,
    },
    "normalize": "leakyrelu",
    "local_corr_type": "LocalGOCor",
    "local_gocor_arguments": {"optim_iter": 3},
    "same_local_corr_at_all_levels": True,
}


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def glunet_fidelity(source: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    from models.GLUNet.GLU_Net import GLUNetModel

    reference = GLUNetModel(
        iterative_refinement=True,
        **GOCOR_ARGUMENTS,
    )
    randomise(reference, 0)
    ours = GLUNet(GLUNetConfig(gocor=True))
    transfer(reference, ours, GLUNET_RULES)
    reference.eval(), ours.eval()
    reference.to(source.dtype), ours.to(source.dtype)
    src, tgt, src_256, tgt_256, _, _ = preprocess_pair(source, target)
    with torch.no_grad():
        ref_256, ref_high = reference(tgt, src, tgt_256, src_256)
        out = ours(tgt, src, tgt_256, src_256)
        end_to_end = source.dtype == torch.float32  # the reference's pre-processing casts images to float32
        if end_to_end:
            ref_flow = reference.estimate_flow(source * 255, target * 255)
            our_flow = glunet_estimate_flow(ours, source, target)
    levels = [*ref_256["flow_estimates"], *ref_high["flow_estimates"]]
    result = {f"flow{4 - i}": max_diff(r, o) for i, (r, o) in enumerate(zip(levels, [*out["flow_256"], *out["flow"]]))}
    result["corr4"] = max_diff(ref_256["correlation"], out["corr4"])
    if end_to_end:
        result["estimate_flow (original resolution)"] = max_diff(ref_flow, our_flow)
    result["flow1 magnitude (max px)"] = levels[-1].abs().max().item()
    return result


def pwcnet_fidelity(source: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    from models.PWCNet.pwc_net import PWCNetModel

    reference = PWCNetModel(
        local_corr_type="LocalGOCor", local_gocor_arguments={"optim_iter": 3}, same_local_corr_at_all_levels=False
    )
    randomise(reference, 1)
    ours = PWCNet(PWCNetConfig(gocor=True))
    transfer(reference, ours, PWCNET_RULES)
    reference.eval(), ours.eval()
    reference.to(source.dtype), ours.to(source.dtype)
    h, w = target.shape[-2:]
    size = (-(-h // 64) * 64, -(-w // 64) * 64)
    src, tgt = (torch.nn.functional.interpolate(x, size=size, mode="bilinear")[:, [2, 1, 0]] for x in (source, target))
    with torch.no_grad():
        ref_levels = reference(tgt, src)["flow_estimates"]
        our_levels = ours(tgt, src)
    # flows are predicted / div: the px difference at each level's own resolution is div * diff / 2^level
    return {
        f"flow{level} (px at its level)": max_diff(r, o) * 20.0 / 2**level
        for level, r, o in zip((6, 5, 4, 3, 2), ref_levels, our_levels)
    }


FIDELITY = {"glunet_gocor": glunet_fidelity, "pwcnet_gocor": pwcnet_fidelity}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="exported DenseMatching snapshot with the torch stand-in")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=None)
    parser.add_argument("--models", nargs="+", default=list(FIDELITY), choices=list(FIDELITY))
    parser.add_argument(
        "--float64",
        action="store_true",
        help="both networks and inputs in float64 (separates float32 rounding from real differences; needs the "
        "snapshot's GOCor/distance.py to build its bins in center.dtype instead of float32)",
    )
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    args = parser.parse_args()
    sys.path.insert(0, args.reference)
    torch.set_grad_enabled(False)
    if args.float64:
        torch.set_default_dtype(torch.float64)
    results = {}
    for name in args.pairs:
        source_path, target_path = PAIRS[name]
        source = read_image(Path(args.data) / source_path)[None].to(torch.get_default_dtype())
        target = read_image(Path(args.data) / target_path)[None].to(torch.get_default_dtype())
        results[name] = {}
        for model in args.models:
            results[name][model] = FIDELITY[model](source, target)
            print(json.dumps({name: {model: results[name][model]}}, indent=2), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
