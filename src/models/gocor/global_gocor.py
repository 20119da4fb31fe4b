"""Global GOCor: one 1 x 1 filter per reference position, initialised in closed form and refined by steepest descent
on the reference loss (+ filter regulariser + query loss), then correlated with the query features.

Objective of the filters w (B, HW, d) on reference features f^r and query features f^q:
    L(w) = 1/2 sum (v+ sigma(w f^r; m) - v+ y)^2 + lambda/2 |w|^2 + 1/2 |R_theta(w f^q)|^2,   lambda = filter_reg^2
The step length is exact for the Gauss-Newton model of L: one scalar per image with the query loss (all filters are
coupled through R_theta), one per filter without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from corrlab.models.gocor.predictors import DistancePredictors, leaky_relu_par, leaky_relu_par_deriv
from corrlab.models.gocor.separable_conv4d import SeparableConv4d


class FlexibleContextAwareInitializer(nn.Module):
    """w = (fg_scale f - bg_scale f_mean) / (|f|^2 |f_mean|^2 - (f.f_mean)^2): the filter in span(f, f_mean) with
    w.f = a_fg and w.f_mean = a_bg (exactly so when the learned vectors a_fg, a_bg are constant over channels)."""

    def __init__(self, num_features: int = 512, init_fg: float = 1.0, init_bg: float = 0.0):
        super().__init__()
        self.target_fg = nn.Parameter(init_fg * torch.ones(num_features))
        self.target_bg = nn.Parameter(init_bg * torch.ones(num_features))

    def forward(self, feat: Tensor) -> Tensor:
        """(B, d, H, W) -> filters (B, HW, d)."""
        f = feat.flatten(2)  # (B, d, HW)
        mean = f.mean(dim=2, keepdim=True)
        ff, bb, fb = (f * f).sum(1, keepdim=True), (mean * mean).sum(1, keepdim=True), (f * mean).sum(1, keepdim=True)
        den = (ff * bb - fb * fb).clamp(1e-6)
        fg, bg = self.target_fg.view(-1, 1), self.target_bg.view(-1, 1)
        fg_scale, bg_scale = fg * bb - bg * fb, fg * fb - bg * ff
        return ((fg_scale * f - bg_scale * mean) / den).transpose(1, 2)


@dataclass(frozen=True)
class GlobalGOCorConfig:
    """GLU-Net-GOCor's global arguments (optim_iter 3, query loss with a 3 x 3, 16-channel R_theta)."""

    optim_iter: int = 3
    num_features: int = 512
    init_step_length: float = 1.0
    init_filter_reg: float = 1e-2
    min_filter_reg: float = 1e-5
    num_dist_bins: int = 10
    bin_displacement: float = 0.5
    init_gauss_sigma: float = 1.0
    v_minus_init_factor: float = 4.0
    apply_query_loss: bool = True
    reg_kernel_size: int = 3
    reg_inter_dim: int = 16
    reg_output_dim: int = 16


def apply_filter(filters: Tensor, feat: Tensor) -> Tensor:
    """(B, N, d) filters x (B, d, H, W) features -> scores (B, N, HW)."""
    return torch.matmul(filters, feat.flatten(2))


def apply_feat_transpose(scores: Tensor, feat: Tensor) -> Tensor:
    """Adjoint of apply_filter w.r.t. the filters: (B, N, HW) x (B, d, H, W) -> (B, N, d)."""
    return torch.matmul(scores, feat.flatten(2).transpose(1, 2))


class GlobalGOCorOptimizer(nn.Module):
    """K steepest-descent steps on the filter map (GOCor's GlobalGOCorOpt)."""

    def __init__(self, cfg: GlobalGOCorConfig):
        super().__init__()
        self.num_iter, self.min_filter_reg, self.apply_query_loss = (
            cfg.optim_iter,
            cfg.min_filter_reg,
            cfg.apply_query_loss,
        )
        self.log_step_length = nn.Parameter(math.log(cfg.init_step_length) * torch.ones(1))
        self.filter_reg = nn.Parameter(cfg.init_filter_reg * torch.ones(1))
        self.predictors = DistancePredictors(
            cfg.num_dist_bins, cfg.bin_displacement, cfg.init_gauss_sigma, cfg.v_minus_init_factor
        )
        if cfg.apply_query_loss:
            self.reg_layer = SeparableConv4d(cfg.reg_kernel_size, cfg.reg_inter_dim, cfg.reg_output_dim)

    def loss_maps(self, h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """y, v+, m as (1, HW filters, HW reference positions), from the distance between the two grid positions."""
        maps = self.predictors(h - 1, w - 1, device)  # on the (2H-1) x (2W-1) displacement grid
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        dy, dx = ys[None, :] - ys[:, None] + h - 1, xs[None, :] - xs[:, None] + w - 1  # reference minus filter
        return tuple(m[dy, dx][None] for m in maps)

    def reg_weight(self) -> Tensor:
        return (self.filter_reg * self.filter_reg).clamp(min=self.min_filter_reg**2)

    def _query_residuals(self, filters: Tensor, query_feat: Tensor, ref_size: tuple[int, int]) -> Tensor:
        b = filters.shape[0]
        scores = apply_filter(filters, query_feat).reshape(b, *ref_size, *query_feat.shape[-2:])
        return self.reg_layer(scores)

    def objective(self, filters: Tensor, reference_feat: Tensor, query_feat: Tensor) -> Tensor:
        """L(w) summed over the batch (the quantity the steps decrease)."""
        h, w = reference_feat.shape[-2:]
        y, v_plus, m = self.loss_maps(h, w, reference_feat.device)
        scores = apply_filter(filters, reference_feat)
        loss = 0.5 * ((v_plus * leaky_relu_par(scores, m) - v_plus * y) ** 2).sum()
        loss = loss + 0.5 * self.reg_weight() * (filters**2).sum()
        if self.apply_query_loss:
            loss = loss + 0.5 * (self._query_residuals(filters, query_feat, (h, w)) ** 2).sum()
        return loss

    def forward(
        self, filters: Tensor, reference_feat: Tensor, query_feat: Tensor, num_iter: int | None = None
    ) -> Tensor:
        """filters (B, HW, d), features (B, d, H, W) -> optimised filters (B, HW, d)."""
        b, num_filters = filters.shape[:2]
        h, w = reference_feat.shape[-2:]
        if self.apply_query_loss and query_feat.shape[-2:] != (h, w):
            raise ValueError(
                f"GlobalGOCor query loss needs equal grids, got {(h, w)} and {tuple(query_feat.shape[-2:])}"
            )
        y, v_plus, m = self.loss_maps(h, w, reference_feat.device)
        step_length, reg_weight = torch.exp(self.log_step_length), self.reg_weight()
        sum_dims = (1, 2) if self.apply_query_loss else 2
        for _ in range(self.num_iter if num_iter is None else num_iter):
            scores = apply_filter(filters, reference_feat)
            act_deriv = v_plus * leaky_relu_par_deriv(scores, m)
            residuals = v_plus * leaky_relu_par(scores, m) - v_plus * y
            grad = reg_weight * filters + apply_feat_transpose(act_deriv * residuals, reference_feat)
            if self.apply_query_loss:
                query_res = self._query_residuals(filters, query_feat, (h, w))
                back = self.reg_layer.transpose(query_res).reshape(b, num_filters, -1)
                grad = grad + apply_feat_transpose(back, query_feat)

            den_ref = act_deriv * apply_filter(grad, reference_feat)
            alpha_den = (den_ref * den_ref).view(b, num_filters, -1).sum(dim=sum_dims)
            if self.apply_query_loss:
                den_query = self._query_residuals(grad, query_feat, (h, w))
                alpha_den = alpha_den + (den_query * den_query).view(b, num_filters, -1).sum(dim=sum_dims)
            alpha_num = (grad * grad).view(b, num_filters, -1).sum(dim=sum_dims)
            alpha = alpha_num / (alpha_den + reg_weight * alpha_num).clamp(1e-8)
            alpha = alpha.view(b, 1, 1) if self.apply_query_loss else alpha.view(b, num_filters, 1)
            filters = filters - step_length * alpha * grad
        return filters


class GlobalGOCor(nn.Module):
    """Reference (B, d, H, W) x query (B, d, H2, W2) -> correlation (B, H2*W2, H, W), query positions in channels."""

    def __init__(self, cfg: GlobalGOCorConfig | None = None):
        super().__init__()
        cfg = cfg or GlobalGOCorConfig()
        self.filter_initializer = FlexibleContextAwareInitializer(cfg.num_features)
        self.filter_optimizer = GlobalGOCorOptimizer(cfg)

    def forward(self, reference_feat: Tensor, query_feat: Tensor) -> Tensor:
        filters = self.filter_initializer(reference_feat)
        filters = self.filter_optimizer(filters, reference_feat, query_feat)
        b, _, h, w = reference_feat.shape
        scores = apply_filter(filters, query_feat)  # (B, HW reference, H2W2 query)
        return scores.transpose(1, 2).reshape(b, -1, h, w)
