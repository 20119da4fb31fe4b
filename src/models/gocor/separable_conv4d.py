"""GOCor's 4-D regulariser R_theta of the query loss: a 2-D convolution over the query grid (1 -> inter channels)
followed by one over the filter grid (inter -> output channels), no bias, and its exact transpose."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SeparableConv4d(nn.Module):
    def __init__(self, kernel_size: int = 3, inter_dim: int = 16, output_dim: int = 16, init_std: float = 1e-3):
        super().__init__()
        self.weight1 = nn.Parameter(torch.randn(inter_dim, 1, kernel_size, kernel_size) * init_std)
        self.weight2 = nn.Parameter(torch.randn(output_dim, inter_dim, kernel_size, kernel_size) * init_std)
        self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        """(B, Hf, Wf, Hq, Wq) scores of filter (Hf, Wf) on query position (Hq, Wq) -> (B, Hq, Wq, out, Hf, Wf)."""
        b, hf, wf, hq, wq = x.shape
        inter, out = self.weight1.shape[0], self.weight2.shape[0]
        x = F.conv2d(x.reshape(b * hf * wf, 1, hq, wq), self.weight1, padding=self.padding)
        x = x.reshape(b, hf * wf, inter, hq * wq).permute(0, 3, 2, 1).reshape(b * hq * wq, inter, hf, wf)
        x = F.conv2d(x, self.weight2, padding=self.padding)
        return x.reshape(b, hq, wq, out, hf, wf)

    def transpose(self, x: Tensor) -> Tensor:
        """The adjoint of forward: (B, Hq, Wq, out, Hf, Wf) -> (B, Hf, Wf, Hq, Wq)."""
        b, hq, wq, out, hf, wf = x.shape
        inter = self.weight1.shape[0]
        x = F.conv_transpose2d(x.reshape(b * hq * wq, out, hf, wf), self.weight2, padding=self.padding)
        x = x.reshape(b, hq * wq, inter, hf * wf).permute(0, 3, 2, 1).reshape(b * hf * wf, inter, hq, wq)
        x = F.conv_transpose2d(x, self.weight1, padding=self.padding)
        return x.reshape(b, hf, wf, hq, wq)
