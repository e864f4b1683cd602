"""Regression losses on predicted values ``(N,)`` against targets ``(N,)``.

Metadata and bounds: ``losszoo/catalog/regression.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.losses._common import check_reduction


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared error ``(x - y)^2``; exactly ``torch.nn.functional.mse_loss``."""
    return F.mse_loss(input, target, reduction=reduction)


def huber_loss(input: torch.Tensor, target: torch.Tensor, delta: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Huber: ``r^2/2`` for ``|r| <= delta``, else ``delta (|r| - delta/2)``; exactly F.huber_loss."""
    return F.huber_loss(input, target, reduction=reduction, delta=delta)


class ElementwiseLoss(nn.Module):
    """Base for losses that compare predictions and targets element by element."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)


class MSELoss(ElementwiseLoss):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mse_loss(input, target, self.reduction)


class HuberLoss(ElementwiseLoss):
    def __init__(self, delta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return huber_loss(input, target, self.delta, self.reduction)
