"""ODISE's implicit captioner in the SD extractor: strict loading of its parameters from a checkpoint in ODISE's
format ({'model': state_dict}, backbone.feature_extractor.*), clear errors, and the features against diffusers'
UNet forward conditioned by hand (tiny random SD, tiny random CLIP vision tower in transformers' format)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from corrlab.models.geoaware.letterbox import Letterbox

pytest.importorskip("diffusers")
PREFIX = "backbone.feature_extractor."
CLIP_DIM, TEXT_DIM, TIME_DIM = 12, 16, 32  # tiny CLIP projection, tiny SD cross-attention and time widths


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from tests.helpers.tiny_sd import write_tiny_sd

    root = tmp_path_factory.mktemp("captioner")
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28,
        patch_size=14, projection_dim=CLIP_DIM, hidden_act="quick_gelu",
    )  # fmt: skip
    CLIPVisionModelWithProjection(config).save_pretrained(root / "clip-vit-large-patch14-336")
    g = torch.Generator().manual_seed(1)
    state = {
        "clip_project.linear.weight": torch.randn(TEXT_DIM, CLIP_DIM, generator=g),
        "clip_project.linear.bias": torch.randn(TEXT_DIM, generator=g),
        "clip_project.positional_embedding": torch.randn(1, 77, TEXT_DIM, generator=g),
        "alpha_cond": torch.randn(1, 77, TEXT_DIM, generator=g),
        "time_embed_project.linear.weight": torch.randn(TIME_DIM, CLIP_DIM, generator=g),
        "time_embed_project.linear.bias": torch.randn(TIME_DIM, generator=g),
        "time_embed_project.positional_embedding": torch.randn(1, 1, TIME_DIM, generator=g),
        "alpha_cond_time_embed": torch.randn(TIME_DIM, generator=g),
    }
    model = {PREFIX + k: v for k, v in state.items()} | {"sem_seg_head.predictor.weight": torch.zeros(2)}
    torch.save({"model": model, "iteration": 1}, root / "odise_label_coco_50e-b67d2efc.pth")
    sd = write_tiny_sd(root / "stable-diffusion-v1-5")
    return root / "clip-vit-large-patch14-336", root / "odise_label_coco_50e-b67d2efc.pth", sd, state


def test_missing_files_and_keys_are_named(weights, tmp_path):
    from corrlab.models.geoaware.implicit_captioner import ImplicitCaptioner

    clip, odise, _, state = weights
    with pytest.raises(FileNotFoundError, match=r"features\.clip_weights: not set.*openai/clip-vit-large-patch14-336"):
        ImplicitCaptioner(None, str(odise))
    with pytest.raises(FileNotFoundError, match=r"features\.odise_weights: no file .*NVlabs/ODISE"):
        ImplicitCaptioner(str(clip), str(tmp_path / "absent.pth"))
    partial = tmp_path / "partial.pth"
    model = {PREFIX + k: v for k, v in state.items() if k != "alpha_cond"}
    torch.save({"model": model}, partial)
    with pytest.raises(KeyError, match=r"lacks \['backbone\.feature_extractor\.alpha_cond'\]"):
        ImplicitCaptioner(str(clip), str(partial), text_dim=TEXT_DIM, time_dim=TIME_DIM)
    loaded = ImplicitCaptioner(str(clip), str(odise), text_dim=TEXT_DIM, time_dim=TIME_DIM)
    torch.testing.assert_close(loaded.time_embed_project.linear.weight, state["time_embed_project.linear.weight"])
    torch.testing.assert_close(loaded.alpha_cond, state["alpha_cond"])


@pytest.mark.slow
def test_conditioned_features_equal_diffusers_forward_conditioned_by_hand(weights):
    from transformers import CLIPVisionModelWithProjection

    from corrlab.models.geoaware.sd_features import SDDecoderFeatures
    from tests.test_geoaware_sd import reference_features

    clip_folder, odise, sd, w = weights
    image = torch.rand(3, 40, 56, generator=torch.Generator().manual_seed(3))
    ours = SDDecoderFeatures(str(sd), image_size=128, clip_weights=str(clip_folder), odise_weights=str(odise))(image)

    # by hand: the 128 letterbox (one crop) resized to CLIP's 28 (bicubic, no antialias), OpenAI mean/std
    boxed = Letterbox(40, 56, 128).image(image)[None]
    pixels = F.interpolate(boxed, size=(28, 28), mode="bicubic", align_corners=False)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])[:, None, None]
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])[:, None, None]
    with torch.no_grad():
        e = CLIPVisionModelWithProjection.from_pretrained(clip_folder)(pixel_values=(pixels - mean) / std).image_embeds
    caption = e @ w["clip_project.linear.weight"].T + w["clip_project.linear.bias"]
    caption = caption[:, None] + w["clip_project.positional_embedding"]
    offset = e @ w["time_embed_project.linear.weight"].T + w["time_embed_project.linear.bias"]
    offset = torch.tanh(w["alpha_cond_time_embed"]) * (offset + w["time_embed_project.positional_embedding"][:, 0])
    expected = reference_features(
        sd, image, 128, freeu=True, caption=lambda c: c + torch.tanh(w["alpha_cond"]) * caption, time_offset=offset
    )
    for key in ("s3", "s4", "s5"):
        torch.testing.assert_close(ours[key], expected[key], rtol=1e-5, atol=1e-5)
    plain = SDDecoderFeatures(str(sd), image_size=128)(image)
    assert (plain["s3"] - ours["s3"]).abs().max() > 1e-3  # the conditioning changes the features
