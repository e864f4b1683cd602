"""Cross-entropy variants on class logits ``(N, C)`` with integer labels ``(N,)``.

Each loss is a pure function (the math) and a module that holds its
hyperparameters. Metadata and bounds: ``losszoo/catalog/classification.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.errors import InvalidParameterError
from losszoo.losses._common import check_labels, check_reduction, reduce


def cross_entropy_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Softmax cross-entropy; exactly ``torch.nn.functional.cross_entropy``.

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(cross_entropy_loss(logits, torch.tensor([0, 1])).item(), 4)
    0.1269
    """
    return F.cross_entropy(
        logits, labels, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduction=reduction,
    )


def focal_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    gamma: float = 2.0,
    alpha: float | torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` on softmax probabilities.

    ``alpha`` is None, one number, or a tensor of one weight per class. The mean
    is over samples (unlike kornia's multi-class focal, which also divides by C).

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(focal_loss(logits, torch.tensor([0, 1]), gamma=0.0).item(), 4)
    0.1269
    """
    log_p = F.log_softmax(logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, dim=1)
    log_pt = log_p.gather(1, labels[:, None]).squeeze(1)
    # (1 - p_t) computed as -expm1(log p_t) stays accurate when p_t is close to 1.
    focus = (-torch.expm1(log_pt)).clamp_min(0).pow(gamma)
    values = -focus * log_pt
    if alpha is not None:
        alpha = torch.as_tensor(alpha, dtype=values.dtype, device=values.device)
        values = values * (alpha[labels] if alpha.ndim else alpha)
    return reduce(values, reduction)


class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy with label smoothing, class weights and ignore_index."""

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.0,
        weight: Sequence[float] | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ):
        super().__init__()
        if weight is not None and len(weight) != num_classes:
            raise InvalidParameterError(f"weight has {len(weight)} entries for {num_classes} classes", "weight")
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index
        self.reduction = check_reduction(reduction)
        self.register_buffer("class_weight", None if weight is None else torch.tensor(weight, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_labels(labels, self.num_classes, self.ignore_index)
        weight = None if self.class_weight is None else self.class_weight.to(logits.dtype)
        return cross_entropy_loss(logits, labels, weight, self.label_smoothing, self.ignore_index, self.reduction)


class FocalLoss(nn.Module):
    """Focal loss on softmax probabilities (Lin et al. 2017)."""

    def __init__(
        self,
        num_classes: int,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        reduction: str = "mean",
    ):
        super().__init__()
        if isinstance(alpha, (list, tuple)) and len(alpha) != num_classes:
            raise InvalidParameterError(f"alpha has {len(alpha)} entries for {num_classes} classes", "alpha")
        self.num_classes = num_classes
        self.gamma = gamma
        self.reduction = check_reduction(reduction)
        self.register_buffer("alpha", None if alpha is None else torch.tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_labels(labels, self.num_classes)
        return focal_loss(logits, labels, self.gamma, self.alpha, self.reduction)
