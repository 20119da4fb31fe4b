"""Our DinoV2 loader against facebookresearch/dinov2's DinoVisionTransformer (exported to a scratch folder) on
the same random weights: block-11-style 'token' outputs (forward hook on the block, as sd-dino's ViTExtractor)
at a resolution that needs the position-embedding interpolation.

    python bench/geoaware_dinov2_fidelity.py [--dinov2-git /work/.mirror/facebookresearch+dinov2/repo]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from corrlab.models.geoaware.dinov2 import DinoV2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dinov2-git", type=Path, default=Path("/work/.mirror/facebookresearch+dinov2/repo"))
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/geoaware-ref/dinov2"))
    parser.add_argument("--full", action="store_true", help="ViT-B/14 at 840 x 840 (slow on CPU) instead of a tiny ViT")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", f"--git-dir={args.dinov2_git}", "archive", "HEAD", "dinov2"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "x", "-C", str(args.scratch)], input=archive, check=True)
    sys.path.insert(0, str(args.scratch))
    from dinov2.models.vision_transformer import DinoVisionTransformer

    torch.manual_seed(0)
    if args.full:
        spec, ours_spec, size, layer = dict(embed_dim=768, depth=12, num_heads=12), dict(), 840, 11
    else:
        spec, ours_spec, size, layer = dict(embed_dim=64, depth=3, num_heads=2), dict(dim=64, depth=3, heads=2), 126, 2
    reference = DinoVisionTransformer(
        img_size=518, patch_size=14, init_values=1.0, block_chunks=0, interpolate_offset=0.1, **spec
    ).eval()
    with torch.no_grad():  # random values everywhere (the init leaves some tensors at zero / one)
        for p in reference.parameters():
            p.normal_(0, 0.05)
    path = args.scratch / "random_dinov2_official.pth"
    torch.save(reference.state_dict(), path)
    ours = DinoV2(**ours_spec).eval()
    ours.load_official(path)

    captured = []
    reference.blocks[layer].register_forward_hook(lambda module, inputs, output: captured.append(output))
    image = torch.randn(1, 3, size, size)
    with torch.no_grad():
        reference(image)
        mine = ours.tokens(image, layer)
    diff = float((captured[0] - mine).abs().max())
    report = {
        "keys": len(reference.state_dict()),
        "input": size,
        "layer": layer,
        "max_abs_token_difference": diff,
        "max_abs_token": float(mine.abs().max()),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
