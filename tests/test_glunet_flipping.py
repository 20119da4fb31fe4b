"""GLU-Net's flipping condition: the two scores, the two-test rule, mirroring the flow back, and the model option."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from corrlab.models.glunet.flipping import (
    coarse_score,
    estimate_flow_with_flipping,
    flip_decision,
    max_corr_score,
    min_avg_flow_score,
    mirror,
)
from corrlab.models.glunet.glunet import preprocess_pair
from tests.helpers.paths import PROJECT_ROOT


def test_max_corr_score_takes_the_max_over_target_cells_per_source_cell():
    # corr[s, t] = 10 s + t, 4 source cells (channels) x 2 x 2 target cells: max over t = 10 s + 3, summed = 72
    # (the max over source cells would give 126)
    corr = (10 * torch.arange(4.0)[:, None] + torch.arange(4.0)[None]).reshape(1, 4, 2, 2)
    assert max_corr_score(corr).tolist() == [72.0]


def test_min_avg_flow_score_is_minus_the_mean_horizontal_magnitude():
    flow = torch.tensor([[[[1.0, -3.0], [2.0, 0.0]], [[50.0, 50.0], [-50.0, 9.0]]]])  # x: mean |.| = 1.5
    assert min_avg_flow_score(flow).tolist() == [-1.5]


def ramp(offset: float) -> torch.Tensor:
    """(1, 3, 2, 4) an image that is not its own mirror, told apart by its mean."""
    return (offset + 0.1 * torch.arange(4.0)).expand(1, 3, 2, 4).clone()


def scripted(table: dict[tuple[str, str], float]):
    """A score read from a table keyed by (source, target) names: S / T and their mirrors S~ / T~."""
    s, t = ramp(0.0), ramp(0.5)
    names = {"S": s, "T": t, "S~": mirror(s), "T~": mirror(t)}

    def name(x):
        return next(k for k, v in names.items() if torch.equal(v, x))

    return s, t, lambda a, b: torch.tensor([table[(name(a), name(b))]])


@pytest.mark.parametrize(
    ("first", "confirm", "flipped"),
    [((1.0, 2.0), (1.0, 2.0), True), ((1.0, 2.0), (2.0, 1.0), False), ((2.0, 1.0), (1.0, 2.0), False),
     ((1.0, 1.0), (1.0, 2.0), False)],
)  # fmt: skip
def test_the_mirror_needs_both_tests(first, confirm, flipped):
    table = {("S", "T"): first[0], ("S", "T~"): first[1], ("T", "S"): confirm[0], ("T", "S~"): confirm[1]}
    source, target, score = scripted(table)
    assert flip_decision(score, source, target).tolist() == [flipped]


def test_a_mirrored_estimate_is_mirrored_back_per_image():
    # pair 0: the target is the mirrored source, so its true flow is x' = W-1-x, flow_x = W-1-2x = 5, 3, 1, -1, -3, -5;
    # pair 1: target = source (flow 0, no mirror).  The stand-in estimator is exact only on identical images.
    source = torch.rand(2, 3, 4, 6)
    target = torch.stack([mirror(source[0]), source[1]])

    def estimate(s, t):
        same = (s == t).flatten(1).all(1).view(-1, 1, 1, 1)
        return torch.where(same, torch.zeros(2, 2, 4, 6), torch.full((2, 2, 4, 6), 100.0))

    def score(s, t):
        return -(s - t).abs().flatten(1).mean(1)

    assert flip_decision(score, source, target).tolist() == [True, False]
    flow = estimate_flow_with_flipping(estimate, score, source, target)
    assert torch.equal(flow[0, 0], torch.tensor([5.0, 3.0, 1.0, -1.0, -3.0, -5.0]).expand(4, 6))
    assert torch.equal(flow[0, 1], torch.zeros(4, 6)) and torch.equal(flow[1], torch.zeros(2, 4, 6))


@pytest.mark.parametrize("model", ["glunet", "glunet_gocor"])
def test_the_reference_default_is_off(model):
    cfg = OmegaConf.load(Path(PROJECT_ROOT) / "conf" / "model" / f"{model}.yaml")
    assert cfg.flipping_condition is False


@pytest.mark.slow
@pytest.mark.parametrize("gocor", [False, True])
def test_coarse_score_is_the_forward_pass_level_4(gocor):
    from corrlab.models.glunet.glunet import GLUNet, GLUNetConfig

    torch.manual_seed(0)
    net = GLUNet(GLUNetConfig(gocor=gocor)).eval()
    source, target = torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256)
    src, tgt, src_256, tgt_256, _, _ = preprocess_pair(source, target)
    with torch.no_grad():
        out = net(tgt, src, tgt_256, src_256, iterative_refinement=False)
        expected = max_corr_score(out["corr4"]) if gocor else min_avg_flow_score(out["flow_256"][0])
        torch.testing.assert_close(coarse_score(net, source, target), expected)


def test_the_model_option_estimates_against_the_chosen_target(monkeypatch):
    # the module's networks replaced by stand-ins: an estimator exact on identical images, a score preferring them
    import corrlab.modules.glunet as glunet_module

    def fake_estimate(net, s, t):
        return torch.where((s == t).all(), torch.zeros(1, 2, 4, 6), torch.full((1, 2, 4, 6), 100.0))

    monkeypatch.setattr(glunet_module, "estimate_flow", fake_estimate)
    monkeypatch.setattr(glunet_module, "coarse_score", lambda net, s, t: -(s - t).abs().flatten(1).mean(1))
    module = SimpleNamespace(net=None, flipping_condition=True)  # building GLU-Net's VGG-16 takes seconds
    estimate = glunet_module.GLUNetMatcher.estimate_flow
    source = torch.rand(1, 3, 4, 6)
    flow = estimate(module, source, mirror(source))
    assert torch.equal(flow[0, 0], torch.tensor([5.0, 3.0, 1.0, -1.0, -3.0, -5.0]).expand(4, 6))
    module.flipping_condition = False
    assert torch.equal(estimate(module, source, mirror(source)), torch.full((1, 2, 4, 6), 100.0))
