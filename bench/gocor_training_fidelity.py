"""One GLU-Net-GOCor training step side by side: DenseMatching's training forward (GLUNetBasedActor with
GLUNetBatchPreprocessing and its two MultiScaleFlow(EPE 'weighted_sum_normalized') losses, the
train_GLUNet_GOCor_static settings) vs ours (`GLUNetMatcher(gocor=True).compute_losses`), same random weights in the
reference's format, the same synthetic batch (data=synthetic_flow), train mode; then the loss values and the
gradient of every parameter compared (parameter names mapped by our official-checkpoint rules).

    python bench/gocor_training_fidelity.py --reference /tmp/gocor-ref/DenseMatching [--float64]

`--float64` runs both sides in float64; DenseMatching's image pre-processing casts to float32 (`.float()`), so in
that mode it is replaced by a dtype-keeping equivalent (x / 255, ImageNet mean / std, area resize to 256 before the
division, as in `pre_process_image_glunet`), and its distance.py must build its bins in center.dtype.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.densematching_standin import install  # noqa: E402
from bench.gocor_fidelity import GOCOR_ARGUMENTS, randomise  # noqa: E402
from corrlab.datamodules.synthetic_flow import SyntheticFlowDataModule  # noqa: E402
from corrlab.models.dense_flow.official import GLUNET_RULES, map_keys  # noqa: E402
from corrlab.modules.glunet import GLUNetMatcher  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def preprocess_keeping_dtype(image, device, mean_vector=MEAN, std_vector=STD):
    """pre_process_image_glunet without its float32 cast (float64 run only)."""
    mean = torch.as_tensor(mean_vector, dtype=image.dtype).view(1, 3, 1, 1)
    std = torch.as_tensor(std_vector, dtype=image.dtype).view(1, 3, 1, 1)
    full = (image / 255.0 - mean) / std
    low = (F.interpolate(image, size=(256, 256), mode="area") / 255.0 - mean) / std
    return full.to(device), low.to(device)


def reference_model():
    from models.GLUNet.GLU_Net import glunet_vgg16

    return glunet_vgg16(
        **GOCOR_ARGUMENTS,
        give_flow_to_refinement_module=False,
        local_decoder_type="OpticalFlowEstimator",
        global_decoder_type="CMDTop",
        use_interp_instead_of_deconv=False,
    )


def reference_step(model, batch: dict, dtype: torch.dtype) -> tuple[torch.Tensor, dict]:
    import training.actors.batch_processing as batch_processing
    from training.actors.batch_processing import GLUNetBatchPreprocessing
    from training.actors.self_supervised_actor import GLUNetBasedActor
    from training.losses.basic_losses import EPE
    from training.losses.multiscale_loss import MultiScaleFlow

    if dtype == torch.float64:
        batch_processing.pre_process_image_glunet = preprocess_keeping_dtype

    class Settings:
        device = torch.device("cpu")

    weights = [0.32, 0.08, 0.02, 0.01]
    actor = GLUNetBasedActor(
        model,
        objective=MultiScaleFlow(level_weights=weights[2:], loss_function=EPE(), downsample_gt_flow=True),
        objective_256=MultiScaleFlow(level_weights=weights[:2], loss_function=EPE(), downsample_gt_flow=True),
        batch_processing=GLUNetBatchPreprocessing(Settings(), apply_mask=False, apply_mask_zero_borders=False),
        nbr_images_to_plot=0,
    )
    mini_batch = {
        "source_image": (batch["image1"] * 255).round().to(dtype),
        "target_image": (batch["image0"] * 255).round().to(dtype),
        "flow_map": batch["flow"].permute(0, 3, 1, 2).to(dtype),
        "correspondence_mask": batch["flow_valid"],
        "epoch": 0,
        "iter": 1,
    }
    return actor(mini_batch, training=True)


def synthetic_batch(size: int, pairs: int, seed: int) -> dict:
    data = SyntheticFlowDataModule(image_size=(size, size), seed=seed).make_dataset("val")
    items = [data[i] for i in range(pairs)]
    return {key: torch.stack([item[key] for item in items]) for key in ("image0", "image1", "flow", "flow_valid")}


def gradients(named_parameters) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in named_parameters if p.grad is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="exported DenseMatching snapshot")
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--size", type=int, default=256, help="square training images (multiple of 8, >= 256)")
    parser.add_argument("--pairs", type=int, default=2, help="batch size")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    install(args.reference)
    dtype = torch.float64 if args.float64 else torch.float32
    torch.set_default_dtype(dtype)  # GOCor builds its distance-map centre with torch.Tensor(...)
    batch = synthetic_batch(args.size, args.pairs, seed=0)

    reference = reference_model()
    randomise(reference, 2)
    ours = GLUNetMatcher(gocor=True, iterative_refinement=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference_format.pth"
        torch.save({"state_dict": reference.state_dict()}, path)
        ours.load_official(path)
    reference.to(dtype).train(), ours.to(dtype).train()

    loss_ref, stats = reference_step(reference, batch, dtype)
    loss_ref.backward()
    losses_ours = ours.compute_losses({k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items()})
    losses_ours["total"].backward()

    grads_ref = map_keys(gradients(reference.named_parameters()), GLUNET_RULES)
    grads_ours = gradients(ours.net.named_parameters())
    if set(grads_ref) != set(grads_ours):
        raise RuntimeError(
            f"parameters with gradients differ: only reference {sorted(set(grads_ref) - set(grads_ours))[:8]}, "
            f"only ours {sorted(set(grads_ours) - set(grads_ref))[:8]}"
        )
    per_parameter = {}
    for name, g_ref in grads_ref.items():
        diff = (grads_ours[name].double() - g_ref.double()).abs().max().item()
        scale = g_ref.abs().max().item()
        per_parameter[name] = {"max abs diff": diff, "max |grad|": scale, "relative": diff / max(scale, 1e-30)}
    worst = sorted(per_parameter.items(), key=lambda item: -item[1]["relative"])
    result = {
        "dtype": str(dtype),
        "batch": f"{args.pairs} x {args.size}x{args.size}",
        "loss reference": loss_ref.item(),
        "loss ours": losses_ours["total"].item(),
        "loss relative diff": abs(loss_ref.item() - losses_ours["total"].item()) / abs(loss_ref.item()),
        "reference level losses": {k: v for k, v in stats.items() if k.startswith("loss_reso")},
        "our level losses": {k: v.item() for k, v in losses_ours.items() if k != "total"},
        "parameters compared": len(per_parameter),
        "max relative gradient diff": worst[0][1]["relative"],
        "median relative gradient diff": sorted(v["relative"] for v in per_parameter.values())[len(worst) // 2],
        "worst 5": dict(worst[:5]),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({**result, "per parameter": per_parameter}, indent=2))


if __name__ == "__main__":
    main()
