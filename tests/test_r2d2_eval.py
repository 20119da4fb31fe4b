"""model=r2d2 as a MatchingModule: matches in batch pixels (a shifted crop with seeded weights), eval.py on
the HPatches fixture, and with the real released weights on the fixtures of every benchmark (slow)."""

from __future__ import annotations

import pytest
import torch

from corrlab.models.r2d2.extract import extract_keypoints
from corrlab.modules.r2d2 import R2D2
from corrlab.pipeline.evaluate import evaluate
from tests.conftest import compose_config, shared_data
from tests.helpers.eth3d_fixture import write_eth3d
from tests.helpers.hpatches_fixture import write_hpatches
from tests.helpers.megadepth_fixture import write_megadepth
from tests.helpers.semantic_fixtures import write_spair
from tests.test_r2d2_model import randomised, save_released_format

ANY_PEAK = {"reliability_thr": 0.0, "repeatability_thr": 0.0}


def test_a_shifted_crop_is_matched_with_the_shift():
    # convolutions are shift-equivariant: away from the borders a keypoint of the crop has the same
    # descriptor as the one it came from, so most mutual matches differ by exactly the shift
    module = R2D2(extraction={"min_size": 140, "top_k": 0, **ANY_PEAK})  # one scale (s = 1)
    module.net = randomised(module.net, seed=5)
    image = torch.rand(3, 124, 142, generator=torch.Generator().manual_seed(2))
    image = torch.nn.functional.avg_pool2d(image[None], 3, 1, 1)[0]  # smooth: fewer ties between neighbours
    batch = {"image0": image[None, :, 4:124, 2:142], "image1": image[None, :, 0:120, 0:140]}
    matches = module.match(batch)
    x, y = matches.kpts0.unbind(1)
    interior = (x >= 25) & (x < 140 - 25 - 2) & (y >= 25) & (y < 120 - 25 - 4)  # receptive radius 25
    exact = (matches.kpts1 - matches.kpts0 == torch.tensor([2.0, 4.0])).all(dim=1)
    assert interior.sum() > 30 and exact[interior].float().mean() > 0.95
    assert (matches.batch_idx == 0).all() and matches.scores.max() <= 1 + 1e-6


def test_identical_images_match_keypoints_to_themselves():
    module = R2D2(extraction={"min_size": 48, **ANY_PEAK})
    module.net = randomised(module.net, seed=6)
    image = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(3))
    matches = module.match({"image0": image.repeat(2, 1, 1, 1), "image1": image.repeat(2, 1, 1, 1)})
    keypoints = module.keypoints(image[0])
    assert len(matches) == 2 * len(keypoints) and torch.equal(matches.kpts0, matches.kpts1)
    assert matches.batch_idx.tolist() == [0] * len(keypoints) + [1] * len(keypoints)


def test_an_image_shared_by_consecutive_pairs_is_extracted_once():
    module = R2D2(extraction={"min_size": 48, **ANY_PEAK})
    module.net = randomised(module.net, seed=7)
    calls = []
    module.net.register_forward_hook(lambda *_: calls.append(1))
    a, b, c = torch.rand(3, 1, 3, 40, 48, generator=torch.Generator().manual_seed(4))
    first = module.match({"image0": a, "image1": b})
    second = module.match({"image0": a, "image1": c})
    again = module.match({"image0": a, "image1": b})
    assert len(calls) == 4  # a, b, c, then b again (the two most recently used images are kept)
    assert torch.equal(first.kpts0, again.kpts0) and torch.equal(first.kpts1, again.kpts1) and len(second) > 0


@pytest.mark.slow
def test_eval_runs_on_the_hpatches_fixture_with_random_weights(tmp_path):
    root = write_hpatches(tmp_path / "hpatches", num_images=2, size=(96, 128))
    overrides = ["model=r2d2", "data=hpatches", f"data.root={root}", "num_figures=0", "allow_random_weights=true"]
    overrides += ["model.extraction.min_size=128", "model.extraction.top_k=100"]
    summary = evaluate(compose_config("eval", overrides, tmp_path / "run"))
    assert summary["metrics"]["num_pairs"] == 2 and 0 <= summary["metrics"]["mma@3"] <= 1


def test_streamed_survives_loading_official_weights(tmp_path):
    path = tmp_path / "model.pt"
    save_released_format(randomised(R2D2().net), path, "Quad_L2Net_ConfCFS()", "module.", False)
    module = R2D2(extraction={"min_size": 96, "top_k": 0, **ANY_PEAK}, streamed=True)
    module.load_official(path)
    module.eval()
    image = torch.rand(3, 96, 112, generator=torch.Generator().manual_seed(1))
    got = module.keypoints(image)
    streamed = extract_keypoints(module.net, image, module.extraction, streamed=True)
    exact = extract_keypoints(module.net, image, module.extraction)
    assert len(got) > 100 and torch.equal(got.descriptors, streamed.descriptors)
    assert not torch.equal(got.descriptors, exact.descriptors)  # the folded kernels ran, not the exact ones


def test_a_typo_in_the_extraction_options_fails():
    with pytest.raises(TypeError, match="top_kk"):
        R2D2(extraction={"top_kk": 10})


# --- the real released weights (skipped when ../shared/data is absent) -------------------------------
def real_weights() -> str:
    return str(shared_data("weights", "r2d2", "r2d2_WASF_N16.pt"))


@pytest.mark.slow
def test_real_weights_on_the_hpatches_fixture(tmp_path):
    root = write_hpatches(tmp_path / "hpatches", num_images=2)
    overrides = ["model=r2d2", "data=hpatches", f"data.root={root}", f"weights={real_weights()}", "num_figures=0"]
    metrics = evaluate(compose_config("eval", overrides, tmp_path / "run"))["metrics"]
    assert metrics["num_pairs"] == 2 and metrics["mma@3"] > 0.9 and metrics["hacc@3"] == 1.0


@pytest.mark.slow
def test_real_weights_on_the_megadepth_fixture(tmp_path):
    root = write_megadepth(tmp_path / "megadepth")
    overrides = ["model=r2d2", "data=megadepth", f"data.root={root}", "data.eval_resize.size=360"]
    metrics = evaluate(
        compose_config("eval", [*overrides, f"weights={real_weights()}", "num_figures=0"], tmp_path / "run")
    )["metrics"]
    assert metrics["num_pairs"] == 3 and metrics["pose_auc@20"] > 0.5


@pytest.mark.slow
def test_real_weights_transfer_on_the_eth3d_and_spair_fixtures(tmp_path):
    eth3d = write_eth3d(tmp_path / "eth3d")
    overrides = ["model=r2d2", "data=eth3d", f"data.root={eth3d}", "data.scenes=[lakeside]", "data.rates=[3]"]
    metrics = evaluate(
        compose_config("eval", [*overrides, f"weights={real_weights()}", "num_figures=0"], tmp_path / "e")
    )["metrics"]
    assert metrics["num_pairs"] > 0 and metrics["pck@5"] > 0.5
    spair = tmp_path / "SPair-71k"
    write_spair(spair)
    overrides = ["model=r2d2", "data=spair", f"data.root={spair}", f"weights={real_weights()}", "num_figures=0"]
    metrics = evaluate(compose_config("eval", overrides, tmp_path / "s"))["metrics"]
    assert metrics["num_pairs"] == 2 and metrics["pck@0.1"] > 0.5
