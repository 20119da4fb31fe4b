"""Stable Diffusion v1-5 decoder features as GeoAware-SC's ODISE extractor computes them (sd-dino's
`LdmExtractor`, decoder_only=True): 960 letterbox, one noising step t=50 with the seed-42 shared noise, the
decoder-path inputs of UNet output blocks 2/5/8 (s5/s4/s3) with ODISE's in-place FreeU, through diffusers."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from corrlab.models.geoaware.letterbox import Letterbox

SD_HELP = (
    "model.features.sd_weights / features.sd_weights: Stable Diffusion v1-5 as a diffusers folder (unet/, vae/, "
    "text_encoder/, tokenizer/) from the runwayml/stable-diffusion-v1-5 release "
    "(huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5)"
)
# ODISE's LDM noise schedule ("ldm_linear": linspace of sqrt(beta), squared, 1000 steps), as SD v1 was trained.
BETA_START, BETA_END, NUM_TRAIN_STEPS = 0.00085, 0.012, 1000
# ODISE's output blocks whose decoder-path input is kept, and their cache names (s2 = block 11 is dropped).
BLOCKS = {2: "s5", 5: "s4", 8: "s3"}
FREEU = {"b1": 1.2, "b2": 1.4, "s1": 0.9, "s2": 0.2}  # ODISE's FreeU constants


def shared_noise(latent_hw: tuple[int, int]) -> Tensor:
    """ODISE's noise: randn(1, 4, 64, 64) from torch.Generator().manual_seed(42), bicubic-resized to the latent."""
    noise = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(42))
    if tuple(latent_hw) != (64, 64):
        noise = F.interpolate(noise, size=latent_hw, mode="bicubic", align_corners=False)
    return noise


def slide_offsets(size: int, crop: int) -> list[int]:
    """Crop starts along one side, as ODISE's slide_forward: stride = crop, the last crop ending at the border."""
    count = max(size - crop + crop - 1, 0) // crop + 1
    return [max(min(i * crop + crop, size) - crop, 0) for i in range(count)]


def alpha_bar(t: int) -> float:
    """Cumulative product of (1 - beta) up to step t of ODISE's ldm_linear schedule."""
    betas = torch.linspace(BETA_START**0.5, BETA_END**0.5, NUM_TRAIN_STEPS, dtype=torch.float64) ** 2
    return float(torch.cumprod(1 - betas, 0)[t])


def load_sd_parts(weights: str) -> tuple[nn.Module, nn.Module, nn.Module, object]:
    """(unet, vae, text_encoder, tokenizer) from a diffusers folder; never downloads."""
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"no SD weights at '{weights}': set {SD_HELP}")
    missing = [p for p in ("unet", "vae", "text_encoder", "tokenizer") if path.is_dir() and not (path / p).is_dir()]
    if missing:
        raise FileNotFoundError(f"features.sd_weights: {path} lacks {missing}; expected {SD_HELP}")
    if path.is_file():  # diffusers' from_single_file fetches model configs from the Hub even with local_files_only
        raise ValueError(
            f"features.sd_weights: {path} is a single-file checkpoint; this extractor reads the diffusers folder only "
            "(nothing is downloaded at run time). Convert it once with diffusers' scripts/"
            "convert_original_stable_diffusion_to_diffusers.py, or use the folder of the release. Expected " + SD_HELP
        )
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    kwargs = {"local_files_only": True}
    return (
        UNet2DConditionModel.from_pretrained(path / "unet", **kwargs),
        AutoencoderKL.from_pretrained(path / "vae", **kwargs),
        CLIPTextModel.from_pretrained(path / "text_encoder", **kwargs),
        CLIPTokenizer.from_pretrained(path / "tokenizer", **kwargs),
    )


class SDDecoderFeatures(nn.Module):
    """s3 (640 x 60 x 60), s4 (1280 x 30 x 30), s5 (1280 x 15 x 15) of an image letterboxed to 960 x 960, computed
    over 512 x 512 sliding crops as the reference (window=0: one pass)."""

    def __init__(
        self,
        weights: str | None,
        image_size: int = 960,
        timestep: int = 50,
        freeu: bool = True,
        window: int = 512,
        clip_weights: str | None = None,
        odise_weights: str | None = None,
        config_key: str = "features",
    ) -> None:
        super().__init__()
        if not weights:
            raise FileNotFoundError(f"features.sd_weights is not set: set {SD_HELP}")
        unet, vae, text_encoder, tokenizer = load_sd_parts(weights)
        self.unet, self.vae = unet.eval().requires_grad_(False), vae.eval().requires_grad_(False)
        self.image_size, self.timestep, self.freeu, self.window = image_size, timestep, freeu, window
        tokens = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
        with torch.inference_mode():  # the empty caption, computed once (the text encoder is not kept)
            context = text_encoder.eval()(tokens.input_ids).last_hidden_state
        self.register_buffer("context", context.clone(), persistent=False)
        c0 = unet.config.block_out_channels[0]  # FreeU keys on SD's 1280 / 640 decoder widths: 4 and 2 x 320
        self.freeu_by_width = {4 * c0: (FREEU["b1"], FREEU["s1"]), 2 * c0: (FREEU["b2"], FREEU["s2"])}
        self.captioner = None  # both unset: the empty caption alone (ODISE's captioner terms at alpha = 0)
        if clip_weights or odise_weights:
            from corrlab.models.geoaware.implicit_captioner import ImplicitCaptioner

            self.captioner = ImplicitCaptioner(
                clip_weights,
                odise_weights,
                text_dim=context.shape[-1],
                seq_len=context.shape[1],
                time_dim=unet.time_embedding.linear_2.out_features,
                config_key=config_key,
            )

    @torch.inference_mode()
    def forward(self, image: Tensor) -> dict[str, Tensor]:
        """image: 3 x H x W in [0, 1] -> {'s3', 's4', 's5'} (float32, batch dimension dropped).

        As ODISE's FeatureExtractorBackbone.slide_forward (backbone_in_size 512, slide_training=True, so taken at
        inference): the letterbox is cut into window x window crops (stride = window, the last one moved back to
        end at the border: offsets 0 and 448 for 960), each crop goes through VAE + UNet on its own, and the maps
        are the mean over the crops covering each cell.  window = 0: one pass over the whole letterbox."""
        device = self.context.device
        h, w = image.shape[-2:]
        boxed = Letterbox(int(h), int(w), self.image_size).image(image.to(device))[None]
        crop = min(self.window, self.image_size) if self.window else self.image_size
        sums: dict[str, Tensor] = {}
        counts: dict[str, Tensor] = {}
        for y in slide_offsets(self.image_size, crop):
            for x in slide_offsets(self.image_size, crop):
                for name, part in self.single_pass(boxed[..., y : y + crop, x : x + crop]).items():
                    stride = crop // part.shape[-1]
                    if name not in sums:
                        size = self.image_size // stride
                        sums[name] = part.new_zeros(part.shape[0], size, size)
                        counts[name] = part.new_zeros(1, size, size)
                    rows, cols = slice(y // stride, (y + crop) // stride), slice(x // stride, (x + crop) // stride)
                    sums[name][:, rows, cols] += part
                    counts[name][:, rows, cols] += 1
        return {name: sums[name] / counts[name] for name in sums}

    def single_pass(self, boxed: Tensor) -> dict[str, Tensor]:
        """One square crop (1, 3, S, S) in [0, 1]: VAE posterior mean, the seed-42 noise at t, the UNet's kept maps."""
        device = boxed.device
        latent = self.vae.encode(boxed * 2 - 1).latent_dist.mean * self.vae.config.scaling_factor
        a = alpha_bar(self.timestep)
        noisy = a**0.5 * latent + (1 - a) ** 0.5 * shared_noise(latent.shape[-2:]).to(device)
        context, offset = self.captioner(boxed, self.context) if self.captioner is not None else (self.context, None)
        return self.decoder_inputs(noisy, torch.tensor([self.timestep], device=device), context, offset)

    def decoder_inputs(
        self, sample: Tensor, t: Tensor, context: Tensor, offset: Tensor | None = None
    ) -> dict[str, Tensor]:
        """ODISE's unet_forward (decoder_only): the input h of output blocks 2/5/8 before the skip concatenation,
        with FreeU applied to h in place (so the kept tensors carry the scaling) and to the skips; `offset` (the
        implicit captioner's) is added to the time embedding."""
        unet, context = self.unet, context.expand(sample.shape[0], -1, -1)
        emb = unet.time_embedding(unet.time_proj(t).to(sample.dtype))
        if offset is not None:
            emb = emb + offset
        h = unet.conv_in(sample)
        skips = [h]
        for block in unet.down_blocks:
            if getattr(block, "has_cross_attention", False):
                h, res = block(hidden_states=h, temb=emb, encoder_hidden_states=context)
            else:
                h, res = block(hidden_states=h, temb=emb)
            skips.extend(res)
        h = unet.mid_block(h, emb, encoder_hidden_states=context)
        out, index = {}, 0
        for block in unet.up_blocks:
            attentions = getattr(block, "attentions", None) or [None] * len(block.resnets)
            for resnet, attn in zip(block.resnets, attentions):
                skip = skips.pop()
                if self.freeu and h.shape[1] in self.freeu_by_width:
                    from diffusers.utils.torch_utils import fourier_filter

                    b, s = self.freeu_by_width[h.shape[1]]
                    h[:, : h.shape[1] // 2] *= b
                    skip = fourier_filter(skip, threshold=1, scale=s)
                if index in BLOCKS:
                    out[BLOCKS[index]] = h[0].float().clone()
                    if len(out) == len(BLOCKS):
                        return out
                h = resnet(torch.cat([h, skip], dim=1), emb)
                if attn is not None:
                    h = attn(h, encoder_hidden_states=context, return_dict=False)[0]
                index += 1
            for upsampler in block.upsamplers or []:
                h = upsampler(h, skips[-1].shape[-2:])
        raise ValueError(f"the UNet has {index} output blocks; ODISE's blocks {sorted(BLOCKS)} need 9 or more")
