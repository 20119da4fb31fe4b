"""SD v1-5 decoder features (ODISE's extractor through diffusers) on a tiny random SD folder: shapes and
strides, the kept blocks and the in-place FreeU against diffusers' own UNet forward, clear errors."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from corrlab.models.geoaware.letterbox import Letterbox
from tests.helpers.tiny_sd import write_tiny_sd

pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "stable-diffusion-v1-5")


def odise_fourier(x, scale):
    """ODISE's Fourier_filter(threshold=1): scale the 2 x 2 centre of the shifted spectrum."""
    freq = torch.fft.fftshift(torch.fft.fftn(x, dim=(-2, -1)), dim=(-2, -1))
    mask = torch.ones_like(x)
    ch, cw = x.shape[-2] // 2, x.shape[-1] // 2
    mask[..., ch - 1 : ch + 1, cw - 1 : cw + 1] = scale
    return torch.fft.ifftn(torch.fft.ifftshift(freq * mask, dim=(-2, -1)), dim=(-2, -1)).real


def reference_features(folder, image, size, freeu, caption=None, time_offset=None):
    """The same features from diffusers' UNet forward: pre-hooks on the up-block resnets split their input into
    (h, skip), apply ODISE's FreeU and keep h of output blocks 2, 5, 8 (= up block j, resnet i: 3j + i).
    caption(empty-caption context) -> context and time_offset (added to the time embedding by a forward hook):
    the implicit captioner's terms."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    unet, vae = UNet2DConditionModel.from_pretrained(folder / "unet"), AutoencoderKL.from_pretrained(folder / "vae")
    text, tok = (
        CLIPTextModel.from_pretrained(folder / "text_encoder"),
        CLIPTokenizer.from_pretrained(folder / "tokenizer"),
    )
    widths = list(reversed(unet.config.block_out_channels))
    kept = {}

    def hook(j, i):
        def pre(module, args):
            x, rest = args[0], args[1:]
            c = widths[j] if i > 0 else widths[max(j - 1, 0)]
            h, skip = x[:, :c].clone(), x[:, c:]
            if freeu and c in (32, 16):  # SD's 1280 / 640 at these widths
                h[:, : c // 2] *= 1.2 if c == 32 else 1.4
                skip = odise_fourier(skip, 0.9 if c == 32 else 0.2)
            if 3 * j + i in (2, 5, 8):
                kept[{2: "s5", 5: "s4", 8: "s3"}[3 * j + i]] = h[0].clone()
            return (torch.cat([h, skip], 1), *rest)

        return pre

    for j, block in enumerate(unet.up_blocks):
        for i, resnet in enumerate(block.resnets):
            resnet.register_forward_pre_hook(hook(j, i))
    with torch.no_grad():
        ids = tok([""], padding="max_length", max_length=77, return_tensors="pt").input_ids
        context = text(ids).last_hidden_state
        if caption is not None:
            context = caption(context)
        if time_offset is not None:
            unet.time_embedding.register_forward_hook(lambda module, args, out: out + time_offset)
        boxed = Letterbox(*image.shape[-2:], size).image(image)[None]
        latent = vae.encode(boxed * 2 - 1).latent_dist.mean * 0.18215
        noise = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(42))
        noise = F.interpolate(noise, size=latent.shape[-2:], mode="bicubic", align_corners=False)
        scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
        t = torch.tensor([50])
        unet(scheduler.add_noise(latent, noise, t), t, encoder_hidden_states=context)
    return kept


@pytest.mark.slow  # diffusers + transformers import and the tiny models take several seconds
def test_kept_blocks_and_freeu_equal_diffusers_forward(tiny_sd):
    from corrlab.models.geoaware.sd_features import SDDecoderFeatures

    image = torch.rand(3, 40, 56, generator=torch.Generator().manual_seed(1))
    extractor = SDDecoderFeatures(str(tiny_sd), image_size=128)
    ours = extractor(image)
    expected = reference_features(tiny_sd, image, 128, freeu=True)
    # strides 16 / 32 / 64 of the 128 letterbox (60 / 30 / 15 of 960), widths 2c / 4c / 4c (640 / 1280 / 1280)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {"s3": (16, 8, 8), "s4": (32, 4, 4), "s5": (32, 2, 2)}
    for key in ("s3", "s4", "s5"):
        torch.testing.assert_close(ours[key], expected[key], rtol=1e-5, atol=1e-5)
    extractor.freeu = False  # FreeU changes the kept features: the comparison above is not a no-op twice
    assert (ours["s3"] - extractor(image)["s3"]).abs().max() > 1e-3


def test_slide_offsets_as_odise():
    from corrlab.models.geoaware.sd_features import slide_offsets

    assert slide_offsets(960, 512) == [0, 448]  # the reference's 960 letterbox in 512 crops
    assert slide_offsets(512, 512) == [0] and slide_offsets(1100, 512) == [0, 512, 588]


@pytest.mark.slow
def test_sliding_window_maps_are_the_mean_of_the_crops(tiny_sd):
    """192 letterbox in 128 crops at offsets 0 and 64: each map is the mean of the single passes over the crops
    covering a cell (s3 stride 16: crop cells 0-7 and 4-11, overlap 4-7; s4 stride 32: 0-3 / 2-5; s5: 0-1 / 1-2)."""
    from corrlab.models.geoaware.sd_features import SDDecoderFeatures

    image = torch.rand(3, 60, 80, generator=torch.Generator().manual_seed(2))
    ours = SDDecoderFeatures(str(tiny_sd), image_size=192, window=128)(image)
    single = SDDecoderFeatures(str(tiny_sd), image_size=128, window=0)
    boxed = Letterbox(60, 80, 192).image(image)
    crops = {(y, x): single(boxed[:, y : y + 128, x : x + 128]) for y in (0, 64) for x in (0, 64)}
    for name, (size, cells, offset) in {"s3": (12, 8, 4), "s4": (6, 4, 2), "s5": (3, 2, 1)}.items():
        total = torch.zeros(ours[name].shape[0], size, size)
        count = torch.zeros(size, size)
        for (y, x), parts in crops.items():
            r, c = (offset if y else 0), (offset if x else 0)
            total[:, r : r + cells, c : c + cells] += parts[name]
            count[r : r + cells, c : c + cells] += 1
        assert count.min() == 1 and count.max() == 4
        torch.testing.assert_close(ours[name], total / count, rtol=1e-5, atol=1e-5)
    whole = SDDecoderFeatures(str(tiny_sd), image_size=192, window=0)(image)["s3"]
    assert (whole - ours["s3"]).abs().max() > 1e-3  # one pass over the letterbox differs: the test is not vacuous


def test_missing_weights_name_the_key_and_the_release(tmp_path):
    from corrlab.models.geoaware.sd_features import SDDecoderFeatures

    with pytest.raises(FileNotFoundError, match=r"features\.sd_weights.*runwayml/stable-diffusion-v1-5"):
        SDDecoderFeatures(str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match=r"features\.sd_weights is not set"):
        SDDecoderFeatures(None)
    partial = tmp_path / "partial"
    (partial / "unet").mkdir(parents=True)
    with pytest.raises(
        FileNotFoundError, match=r"features\.sd_weights: .* lacks \['vae', 'text_encoder', 'tokenizer'\]"
    ):
        SDDecoderFeatures(str(partial))
    (tmp_path / "v1-5-pruned-emaonly.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match=r"features\.sd_weights: .* single-file.*convert_original_stable_diffusion"):
        SDDecoderFeatures(str(tmp_path / "v1-5-pruned-emaonly.safetensors"))


def mean_errors(run) -> dict[str, float]:
    """Mean transfer error per pair from an evaluation's per_pair.jsonl."""
    rows = [json.loads(line) for line in (run / "per_pair.jsonl").read_text().splitlines()]
    return {r["name"]: r["mean_error_px"] for r in rows}


@pytest.mark.slow
def test_extract_from_the_backbones_then_evaluate(tiny_sd, tmp_path, monkeypatch):
    """corrlab-extract-features features.source=backbones (tiny SD + tiny DINOv2 in the official format) writes the
    fp16 cache with the mirrors; eval.py reads it, and gives the same results with
    model/features=backbones computing them from the images.  Zero-shot: the tiny widths cannot feed the AggregationNetwork's
    official 640/1280/1280/768 inputs."""
    from functools import partial

    import corrlab.models.geoaware.backbones as backbones
    from corrlab.datamodules.image_io import read_image
    from corrlab.models.geoaware.dinov2 import DinoV2
    from corrlab.models.geoaware.feature_cache import cache_file
    from corrlab.models.geoaware.sd_features import SDDecoderFeatures
    from corrlab.pipeline.evaluate import evaluate
    from corrlab.pipeline.extract_features import extract
    from tests.conftest import compose_config
    from tests.helpers.geoaware_fixture import TINY
    from tests.helpers.semantic_fixtures import write_spair
    from tests.test_geoaware_dinov2 import official_state

    root = tmp_path / "SPair-71k"
    write_spair(root)
    torch.save(official_state(dim=16, depth=12, grid=4), tmp_path / "dinov2_vitb14_pretrain.pth")
    monkeypatch.setattr(backbones, "DinoV2", partial(DinoV2, dim=16, depth=12, heads=2, pos_grid=4))
    overrides = ["data=spair", f"data.root={root}", "features.source=backbones", "features.grid=12"]
    overrides += [f"features.dino_weights={tmp_path / 'dinov2_vitb14_pretrain.pth'}", f"features.sd_weights={tiny_sd}"]
    overrides += [f"features.out={tmp_path / 'cache'}", "features.device=cpu"]
    result = extract(compose_config("extract_features", overrides, tmp_path / "extract"))
    assert result["images"] == result["extracted"] == 4

    key = "JPEGImages/cat/2010_000001"
    stored = torch.load(cache_file(tmp_path / "cache", key), weights_only=True)
    shapes = {"s3": (16, 12, 12), "s4": (32, 6, 6), "s5": (32, 3, 3), "dino": (16, 12, 12)}
    assert {k: tuple(v.shape) for k, v in stored.items()} == {**shapes, **{f"{k}_flip": s for k, s in shapes.items()}}
    assert all(v.dtype == torch.float16 for v in stored.values())
    image = read_image(root / f"{key}.jpg")
    mirrored = SDDecoderFeatures(str(tiny_sd), image_size=192)(image.flip(-1))["s3"]
    torch.testing.assert_close(stored["s3_flip"].float(), mirrored, atol=2e-3, rtol=1e-3)  # fp16 storage

    overrides = ["model=geoaware_zero_shot", "data=spair", f"data.root={root}", *TINY, "num_figures=0"]
    overrides += [f"model.features.root={tmp_path / 'cache'}"]
    summary = evaluate(compose_config("eval", overrides, tmp_path / "run"))
    assert summary["metrics"]["num_pairs"] == 2 and 0.0 <= summary["metrics"]["pck@0.1"] <= 1.0

    # model/features=backbones: the same evaluation straight from the images (flip test on the mirrored images)
    overrides = ["model=geoaware_zero_shot", "data=spair", f"data.root={root}", *TINY, "num_figures=0"]
    overrides += ["model/features=backbones", f"model.features.dino_weights={tmp_path / 'dinov2_vitb14_pretrain.pth'}"]
    overrides += [f"model.features.sd_weights={tiny_sd}", "model.features.device=cpu"]
    direct = evaluate(compose_config("eval", overrides, tmp_path / "direct"))
    assert direct["metrics"] == pytest.approx(summary["metrics"])
    errors = {run: mean_errors(tmp_path / run) for run in ("run", "direct")}
    assert errors["direct"] == pytest.approx(errors["run"], abs=0.05)  # fp16 storage of the cache
