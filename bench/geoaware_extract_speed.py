"""GeoAware-SC feature extraction cost per image on this machine (`corrlab-extract-features features.source=backbones`):
SD v1-5 at 960 (4 sliding 512 crops), DINOv2 ViT-B/14 at 840, the mirrored view, the cache write; CPU-s, wall-s,
peak RSS.  Compute does not depend on weight values: `--build` writes seeded random weights at the real sizes in
the official formats (diffusers folder, torch.hub state_dict) to --scratch; never commit them.

    nice .venv/bin/python bench/geoaware_extract_speed.py --build --scratch /tmp/geoextract
    nice .venv/bin/python bench/geoaware_extract_speed.py --sd-folder /tmp/geoextract/sd-v1-5 \
        --dino-weights /tmp/geoextract/dinov2_vitb14_pretrain.pth --images 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.peak_memory import peak_rss_mb  # noqa: E402


def write_random_sd_v15(root: Path) -> Path:
    """SD v1-5's diffusers folder (unet/ vae/ text_encoder/ tokenizer/) with its architecture, random weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
        norm_num_groups=32,
    ).save_pretrained(root / "unet")
    AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        norm_num_groups=32,
        sample_size=512,
        scaling_factor=0.18215,
    ).save_pretrained(root / "vae")
    config = CLIPTextConfig(  # CLIP ViT-L/14's text tower
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
        max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu",
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )  # fmt: skip
    CLIPTextModel(config).save_pretrained(root / "text_encoder")
    # the tokenizer only sets the 77 tokens of the empty caption (no compute); a tiny vocabulary as the tests'
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, **{f"{c}</w>": i + 2 for i, c in enumerate("abcdefgh")}}
    CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77).save_pretrained(root / "tokenizer")
    return root


def write_random_dinov2(path: Path) -> Path:
    """dinov2_vitb14_pretrain.pth's keys and shapes (our DinoV2 uses the official names), random weights."""
    from corrlab.models.geoaware.dinov2 import DinoV2

    torch.manual_seed(0)
    model = DinoV2()
    for p in (model.cls_token, model.pos_embed, model.mask_token):
        torch.nn.init.normal_(p, std=0.02)
    torch.save(model.state_dict(), path)
    return path


def timed(fn):
    """(result, cpu seconds of the process, wall seconds)."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - c0, time.perf_counter() - w0


def test_images(count: int, size: tuple[int, int]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, *size, generator=g) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="store_true", help="write random SD v1-5 / DINOv2 weights to --scratch")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/geoextract"))
    parser.add_argument("--sd-folder", type=Path)
    parser.add_argument("--dino-weights", type=Path)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(333, 500), help="H W of the test images (SPair-like)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["sd", "dino", "flip"], help="parts not measured")
    args = parser.parse_args()
    if args.build:
        args.scratch.mkdir(parents=True, exist_ok=True)
        _, cpu, wall = timed(lambda: write_random_sd_v15(args.scratch / "sd-v1-5"))
        print(f"SD v1-5 folder written in {wall:.0f} s wall; peak RSS {peak_rss_mb() / 1024:.2f} GB")
        write_random_dinov2(args.scratch / "dinov2_vitb14_pretrain.pth")
        print(f"weights in {args.scratch}")
        return

    from corrlab.models.geoaware.feature_cache import FeatureCache
    from corrlab.pipeline.extract_features import BackboneExtraction

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}")
    features = OmegaConf.create(
        {"dino_weights": str(args.dino_weights), "sd_weights": str(args.sd_folder), "device": "cpu", "grid": 60}
    )
    (extraction, cpu, wall) = timed(lambda: BackboneExtraction(features))
    print(f"load: {cpu:.1f} CPU-s, {wall:.1f} wall-s, peak RSS {peak_rss_mb() / 1024:.2f} GB")
    backbones = extraction.backbones
    rows: dict[str, list[tuple[float, float]]] = {}
    out = Path(tempfile.mkdtemp(prefix="geoextract-cache-", dir=args.scratch))
    for index, image in enumerate(test_images(args.images, tuple(args.size))):
        parts = {}
        steps = [("sd", lambda img=image: backbones.sd(img)), ("dino", lambda img=image: {"dino": backbones.dino(img)})]
        for name, fn in steps:
            if name not in args.skip:
                part, cpu, wall = timed(fn)
                parts.update(part)
                rows.setdefault(name, []).append((cpu, wall))
        if "flip" not in args.skip:
            flipped = image.flip(-1)
            part, cpu, wall = timed(lambda img=flipped: {f"{k}_flip": v for k, v in backbones.parts(img).items()})
            parts.update(part)
            rows.setdefault("flip (sd + dino)", []).append((cpu, wall))
        if not args.skip:
            _, cpu, wall = timed(lambda i=index, p=parts: FeatureCache.write(out, f"img{i}", p))
            rows.setdefault("write", []).append((cpu, wall))
        print(f"image {index}: " + ", ".join(f"{k} {v[-1][1]:.1f} s" for k, v in rows.items()), flush=True)
    print(f"\nmedian over {args.images} images ({args.size[0]}x{args.size[1]}), load average {os.getloadavg()}")
    total_cpu = total_wall = 0.0
    for name, values in rows.items():
        cpu, wall = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        total_cpu, total_wall = total_cpu + cpu, total_wall + wall
        print(f"| {name} | {cpu:.1f} | {wall:.1f} |")
    print(f"| total per image | {total_cpu:.1f} | {total_wall:.1f} |")
    if not args.skip:
        size = sum(f.stat().st_size for f in out.rglob("*.pt")) / len(rows["write"])
        print(f"cache bytes per image {size / 2**20:.1f} MiB")
    print(f"SPair (1,800 images): {1800 * total_wall / 3600:.1f} h wall; peak RSS {peak_rss_mb() / 1024:.2f} GB")


if __name__ == "__main__":
    main()
