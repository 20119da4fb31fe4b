"""A tiny random Stable Diffusion folder in the diffusers layout (unet/, vae/, text_encoder/, tokenizer/): SD v1's
block structure (3 resnets per up block, cross-attention in the same blocks) at widths 8/16/32/32."""

from __future__ import annotations

from pathlib import Path

import torch


def write_tiny_sd(root: Path, widths: tuple[int, ...] = (8, 16, 32, 32)) -> Path:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8,
        block_out_channels=widths,
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    ).save_pretrained(root / "unet")
    AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=64,
    ).save_pretrained(root / "vae")
    config = CLIPTextConfig(
        vocab_size=100, hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )  # fmt: skip
    CLIPTextModel(config).save_pretrained(root / "text_encoder")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, **{f"{c}</w>": i + 2 for i, c in enumerate("abcdefgh")}}
    CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77).save_pretrained(root / "tokenizer")
    return root
