"""GOCor modules: the closed-form initialisers, the predictors' initial values, the exact line-search step (per filter
without the query loss, per image with it), descent of the objective, and float64 gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from corrlab.models.gocor.global_gocor import (
    FlexibleContextAwareInitializer,
    GlobalGOCor,
    GlobalGOCorConfig,
    GlobalGOCorOptimizer,
)
from corrlab.models.gocor.local_gocor import LocalGOCor, LocalGOCorConfig, LocalGOCorOptimizer, LocalSimpleInitializer
from corrlab.models.gocor.predictors import DistancePredictors, distance_bins
from corrlab.models.gocor.separable_conv4d import SeparableConv4d
from corrlab.ops.local_correlation import local_correlation_torch


@pytest.fixture(autouse=True)
def torch_ops(monkeypatch):
    monkeypatch.setenv("CORRLAB_OPS", "torch")  # the compiled kernels have their own equivalence tests


def test_flexible_context_aware_initializer_solves_its_two_equations():
    torch.manual_seed(0)
    init = FlexibleContextAwareInitializer(num_features=8).double()
    init.target_fg.data.fill_(0.7)
    init.target_bg.data.fill_(0.2)
    feat = torch.randn(2, 8, 3, 5, dtype=torch.float64)
    filters = init(feat)  # (B, HW, d)
    f = feat.flatten(2).transpose(1, 2)  # (B, HW, d)
    torch.testing.assert_close((filters * f).sum(-1), torch.full((2, 15), 0.7, dtype=torch.float64))
    torch.testing.assert_close(filters @ f.mean(1, keepdim=True).transpose(1, 2), torch.full((2, 15, 1), 0.2).double())


def test_local_simple_initializer_gives_unit_centre_correlation():
    torch.manual_seed(1)
    feat = torch.randn(1, 16, 5, 6)
    filters = LocalSimpleInitializer()(feat)
    centre = local_correlation_torch(filters, feat)[:, 40]  # (dy, dx) = (0, 0)
    torch.testing.assert_close(centre, torch.ones(1, 5, 6), rtol=1e-4, atol=1e-4)


def test_predictors_initial_values_and_binning():
    bins = distance_bins(torch.tensor([0.0, 0.75, 4.5, 7.0]), 10, 0.5)
    assert bins.shape == (10, 4)
    torch.testing.assert_close(bins[:, 1], torch.tensor([0, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0.0]))
    assert bins[9, 2] == 1 and bins[9, 3] == 1 and bins[:9, 3].sum() == 0  # last bin saturates
    y, v_plus, m = DistancePredictors()(1, 1, torch.device("cpu"))  # 3 x 3 displacements
    torch.testing.assert_close(v_plus, torch.ones(3, 3))
    gauss = [math.exp(-0.5 * (0.5 * k) ** 2) for k in range(10)]
    assert y[1, 1].item() == pytest.approx(1 - gauss[-1], abs=1e-6)  # distance 0 -> bin 0
    assert y[0, 1].item() == pytest.approx(gauss[2] - gauss[-1], abs=1e-6)  # distance 1 -> bin 2
    assert m[1, 1].item() == pytest.approx(torch.sigmoid(torch.tensor(4 * math.tanh(2.0))).item(), abs=1e-6)


def test_separable_conv4d_transpose_is_the_adjoint():
    torch.manual_seed(2)
    conv = SeparableConv4d(3, 4, 5, init_std=1.0).double()
    x, r = torch.randn(2, 3, 4, 5, 3, dtype=torch.float64), torch.randn(2, 5, 3, 5, 3, 4, dtype=torch.float64)
    torch.testing.assert_close((conv(x) * r).sum(), (x * conv.transpose(r)).sum())


def linear_activation(predictors: DistancePredictors) -> None:
    """m = 1 everywhere: sigma is the identity, the objective is exactly quadratic along any line."""
    predictors.target_mask_predictor[0].weight.data.fill_(50.0)


def _global_setup(apply_query_loss: bool):
    torch.manual_seed(3)
    cfg = GlobalGOCorConfig(num_features=6, apply_query_loss=apply_query_loss, reg_inter_dim=2, reg_output_dim=2)
    optimizer = GlobalGOCorOptimizer(cfg).double()
    if apply_query_loss:
        for weight in (optimizer.reg_layer.weight1, optimizer.reg_layer.weight2):
            weight.data.normal_(0, 0.3)
    ref = F.normalize(torch.randn(2, 6, 3, 4, dtype=torch.float64), dim=1)
    query = F.normalize(torch.randn(2, 6, 3, 4, dtype=torch.float64), dim=1)
    filters = FlexibleContextAwareInitializer(6).double()(ref) + 0.3 * torch.randn(2, 12, 6, dtype=torch.float64)
    return optimizer, filters, ref, query


@pytest.mark.parametrize("apply_query_loss", [False, True])
def test_global_step_is_the_exact_line_minimum_per_filter_or_per_image(apply_query_loss):
    optimizer, filters, ref, query = _global_setup(apply_query_loss)
    linear_activation(optimizer.predictors)
    w0 = filters.clone().requires_grad_(True)
    (grad0,) = torch.autograd.grad(optimizer.objective(w0, ref, query), w0)
    w1 = optimizer(filters, ref, query, num_iter=1).detach().requires_grad_(True)
    (grad1,) = torch.autograd.grad(optimizer.objective(w1, ref, query), w1)
    per_filter = (grad1 * grad0).sum(-1) / (grad0 * grad0).sum(-1)  # directional derivative along the step, (B, HW)
    if apply_query_loss:  # one step length per image: zero summed over its filters, not filter by filter
        torch.testing.assert_close(((grad1 * grad0).sum((1, 2))), torch.zeros(2, dtype=torch.float64))
        assert per_filter.abs().max() > 1e-3
    else:
        torch.testing.assert_close(per_filter, torch.zeros_like(per_filter))


@pytest.mark.parametrize("apply_query_loss", [False, True])
def test_global_steps_lower_the_objective(apply_query_loss):
    optimizer, filters, ref, query = _global_setup(apply_query_loss)
    losses = [optimizer.objective(optimizer(filters, ref, query, num_iter=k), ref, query).item() for k in range(4)]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


def test_local_step_is_the_exact_line_minimum_per_pixel_and_lowers_the_objective():
    torch.manual_seed(4)
    optimizer = LocalGOCorOptimizer(LocalGOCorConfig()).double()
    ref = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    filters = LocalSimpleInitializer().double()(ref) + 0.5 * torch.randn(2, 5, 6, 7, dtype=torch.float64)
    losses = [optimizer.objective(optimizer(filters, ref, num_iter=k), ref).item() for k in range(4)]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    linear_activation(optimizer.predictors)
    w0 = filters.clone().requires_grad_(True)
    (grad0,) = torch.autograd.grad(optimizer.objective(w0, ref), w0)
    w1 = optimizer(filters, ref, num_iter=1).detach().requires_grad_(True)
    (grad1,) = torch.autograd.grad(optimizer.objective(w1, ref), w1)
    # the scores at a pixel depend on its own filter only: each pixel's step is its own exact line minimum
    per_pixel = (grad1 * grad0).sum(1) / (grad0 * grad0).sum(1)
    torch.testing.assert_close(per_pixel, torch.zeros_like(per_pixel))


@pytest.mark.slow
def test_global_gocor_output_layout_and_gradcheck():
    torch.manual_seed(5)
    module = GlobalGOCor(GlobalGOCorConfig(num_features=4, optim_iter=2, reg_inter_dim=2, reg_output_dim=2)).double()
    ref = torch.randn(1, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    query = torch.randn(1, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    scores = module(ref, query)
    assert scores.shape == (1, 6, 2, 3)  # query positions in channels, reference grid spatial
    filters = module.filter_optimizer(module.filter_initializer(ref), ref, query)
    torch.testing.assert_close(scores[0, 4, 1, 0], (filters[0, 3] * query[0, :, 1, 1]).sum())
    assert torch.autograd.gradcheck(module, (ref, query), fast_mode=True)


@pytest.mark.slow
def test_local_gocor_gradcheck():
    torch.manual_seed(6)
    module = LocalGOCor(LocalGOCorConfig(optim_iter=2)).double()
    ref = torch.randn(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    query = torch.randn(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (ref, query), fast_mode=True)
    params = [p for p in module.parameters()]
    out = module(ref, query).square().sum()
    assert all(g is not None and torch.isfinite(g).all() for g in torch.autograd.grad(out, params))
