"""Multi-label losses on one logit per label: logits ``(N, L)`` and targets ``(N, L)`` of 0/1.

A plain binary problem is ``L = 1``. Targets are floats (integers and bools are
converted); ``bce``, ``sigmoid_focal`` and ``asymmetric`` also take soft targets
in ``[0, 1]``, ``zlpr`` and ``two_way`` read a target above 1/2 as a positive.
``reduction="none"`` returns one value per element ``(N, L)`` (bce,
sigmoid_focal, asymmetric) or per sample ``(N,)`` (multilabel_soft_margin,
zlpr); ``mean`` is always the mean of those values. ``two_way`` couples the
samples of a batch and takes no reduction.

Each loss is a pure function (the math) and a module that holds its
hyperparameters. Metadata and bounds: ``losszoo/catalog/multilabel.py``.
Half-precision logits (bf16 autocast included) are computed in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.losses._common import check_reduction, reduce, upcast
from losszoo.registry import LOSSES

# --------------------------------------------------------------------------- helpers


def check_multilabel(logits: torch.Tensor, targets: torch.Tensor, num_labels: int | None = None) -> torch.Tensor:
    """Raise ValueError unless logits are ``(N, L)`` and targets ``(N, L)`` in ``[0, 1]``; the targets as floats.

    The range check reads two numbers back from the device (one deliberate
    sync, as for class labels): integer class labels ``(N,)`` or 0..C-1 codes passed
    here by mistake fail loudly instead of training on nonsense.
    """
    if logits.ndim != 2 or (num_labels is not None and logits.shape[1] != num_labels):
        wanted = "L" if num_labels is None else str(num_labels)
        raise ValueError(f"logits of shape {tuple(logits.shape)} are not (N, {wanted}): one logit per label")
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} do not match logits of shape {tuple(logits.shape)}; "
            "multi-label targets are (N, L) of 0/1, one column per label"
        )
    if targets.numel():
        low, high = torch.stack(torch.aminmax(targets.to(torch.float32))).tolist()  # one sync
        if low < 0 or high > 1:
            raise ValueError(f"multi-label targets must lie in [0, 1], got values in [{low:g}, {high:g}]")
    return targets.to(logits.dtype)


def _positive_pow(base: torch.Tensor, exponent: float) -> torch.Tensor:
    """``[base]_+ ** exponent`` with a zero (not NaN) gradient where ``base <= 0``."""
    inside = base > 0
    return torch.where(inside, torch.where(inside, base, 1.0).pow(exponent), 0.0)


def _masked_logsumexp(values: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """``log sum_{mask} exp(values)`` along ``dim``; ``-inf`` (with a zero gradient) where the mask is empty."""
    present = mask.any(dim=dim, keepdim=True)
    # An all -inf row would give NaN gradients (exp(-inf - -inf)); such rows see zeros and are masked after.
    safe = torch.where(mask, values, float("-inf")).where(present, 0.0)
    return torch.logsumexp(safe, dim=dim).where(present.squeeze(dim), float("-inf"))


# --------------------------------------------------------------------------- the math


def bce_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    pos_weight: float | torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Binary cross-entropy on logits; exactly ``torch.nn.functional.binary_cross_entropy_with_logits``.

    ``-[w_l t log sigmoid(z) + (1 - t) log sigmoid(-z)]`` per element, with
    ``w_l = pos_weight`` (none: 1; one number; or a tensor of one weight per
    label, e.g. negatives / positives of each label to balance them).

    >>> logits = torch.tensor([[2.0, -2.0]])
    >>> round(bce_loss(logits, torch.tensor([[1.0, 0.0]])).item(), 4)
    0.1269
    """
    logits = upcast(logits)
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), pos_weight=pos_weight,
                                              reduction=reduction)


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Sigmoid focal loss ``alpha_t (1 - p_t)^gamma BCE(z, t)`` (Lin et al., Focal Loss for Dense
    Object Detection, ICCV 2017); the formula of ``torchvision.ops.sigmoid_focal_loss``.

    ``p = sigmoid(z)``, ``p_t = p t + (1 - p)(1 - t)`` and
    ``alpha_t = alpha t + (1 - alpha)(1 - t)``; ``alpha=None`` weights nothing
    (torchvision's ``alpha=-1``). torchvision's default reduction is ``"none"``;
    ours is the mean over all ``N L`` elements, as torchvision's ``"mean"``.

    ``1 - p_t = t sigmoid(-z) + (1 - t) sigmoid(z)`` is taken as a log-sum-exp of
    log-sigmoids, so ``(1 - p_t)^gamma`` stays exact and its gradient finite
    where ``p_t`` rounds to 1, for every ``gamma >= 0``.

    >>> logits = torch.tensor([[0.0]])
    >>> round(sigmoid_focal_loss(logits, torch.tensor([[1.0]])).item(), 5)  # 0.25 * 0.5^2 * log 2
    0.04332
    """
    logits = upcast(logits)
    targets = targets.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    log_miss = torch.logaddexp(torch.log(targets) + F.logsigmoid(-logits), torch.log1p(-targets) + F.logsigmoid(logits))
    values = torch.exp(gamma * log_miss) * bce
    if alpha is not None:
        values = (alpha * targets + (1.0 - alpha) * (1.0 - targets)) * values
    return reduce(values, reduction)


def asymmetric_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    clip: float = 0.05,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> torch.Tensor:
    """Asymmetric loss, ASL (Ridnik et al., Asymmetric Loss For Multi-Label Classification, ICCV 2021).

    Per element, with ``p = sigmoid(z)`` and the shifted negative probability
    ``p_m = max(p - clip, 0)``::

        positive (t = 1):  -(1 - p)^gamma_pos log(max(p, eps))
        negative (t = 0):  -p_m^gamma_neg     log(max(1 - p_m, eps))

    Alibaba-MIIL's ``AsymmetricLoss`` returns ``-loss.sum()``, the *sum* over
    all elements; ours defaults to the mean, so theirs = ours × N × L
    (``reduction="sum"`` gives theirs). Soft targets interpolate the two lines.
    ``clip = 0`` shifts nothing; ``eps`` caps the log term at ``-log eps`` as the
    reference does (``eps = 0`` caps nothing).

    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> round(asymmetric_loss(logits, torch.tensor([[1.0, 0.0]]), reduction="sum").item(), 4)
    0.3711
    """
    logits = upcast(logits)
    targets = targets.to(logits.dtype)
    log_floor = math.log(eps) if eps > 0 else float("-inf")
    log_p = F.logsigmoid(logits).clamp_min(log_floor)
    positive = -log_p if gamma_pos == 0 else -torch.exp(gamma_pos * F.logsigmoid(-logits)) * log_p
    if clip > 0:
        shifted = torch.sigmoid(logits) - clip  # p_m before the max with 0
        log_q = torch.log((1.0 - shifted).clamp(eps, 1.0))  # 1 - p_m = min(1 - p + clip, 1), as the reference
        weight = 1.0 if gamma_neg == 0 else _positive_pow(shifted, gamma_neg)
    else:
        log_q = F.logsigmoid(-logits).clamp_min(log_floor)
        weight = 1.0 if gamma_neg == 0 else torch.exp(gamma_neg * F.logsigmoid(logits))
    negative = -weight * log_q
    return reduce(targets * positive + (1.0 - targets) * negative, reduction)


def multilabel_soft_margin_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy averaged over the labels of each sample; exactly
    ``torch.nn.functional.multilabel_soft_margin_loss``.

    ``-1/L sum_l [t_l log sigmoid(z_l) + (1 - t_l) log sigmoid(-z_l)]`` per
    sample, so ``reduction="none"`` gives ``(N,)``; the mean equals ``bce``'s.

    >>> logits = torch.tensor([[2.0, -2.0]])
    >>> round(multilabel_soft_margin_loss(logits, torch.tensor([[1.0, 0.0]])).item(), 4)
    0.1269
    """
    logits = upcast(logits)
    return F.multilabel_soft_margin_loss(logits, targets.to(logits.dtype), reduction=reduction)


def zlpr_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """ZLPR, the multi-label categorical cross-entropy (Su et al., ZLPR: A Novel Loss for
    Multi-label Classification, arXiv:2208.02955, 2022).

    ``log(1 + sum_{l in neg} e^{z_l}) + log(1 + sum_{l in pos} e^{-z_l})`` per
    sample: every positive logit is pushed above 0 and every negative one below,
    with the softmax's pairwise coupling instead of independent sigmoids. Each
    sum is a log-sum-exp with a 0 appended (the ``1 +``), so it is exact for
    any logits; a sample without positives (or negatives) has that term 0.

    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> round(zlpr_loss(logits, torch.tensor([[1.0, 0.0]])).item(), 4)  # 2 log 2
    1.3863
    """
    logits = upcast(logits)
    positive = targets > 0.5
    zero = logits.new_zeros(logits.shape[0], 1)
    negatives = torch.cat([torch.where(positive, float("-inf"), logits), zero], dim=1)
    positives = torch.cat([torch.where(positive, -logits, float("-inf")), zero], dim=1)
    return reduce(torch.logsumexp(negatives, dim=1) + torch.logsumexp(positives, dim=1), reduction)


def two_way_loss(
    logits: torch.Tensor, targets: torch.Tensor, pos_temperature: float = 4.0, neg_temperature: float = 1.0
) -> torch.Tensor:
    """Two-way multi-label loss (Kobayashi, Two-way Multi-Label Loss, CVPR 2023).

    Every positive logit is compared with every negative one, twice: within
    each sample (over its labels) and within each label (over the batch's
    samples). With ``T_p = pos_temperature`` and ``T_n = neg_temperature``::

        ell(P, N) = softplus(T_n log sum_{n in N} e^{z_n / T_n} + T_p log sum_{p in P} e^{-z_p / T_p})
        loss = mean over samples with a positive of ell(its positives, its negatives)
             + mean over labels with a positive of ell(their positive samples, their negative samples)

    The temperatures make the two log-sum-exps soft maxima of the hardest
    negatives and positives. A sample or label without negatives contributes
    ``softplus(-inf) = 0`` for that side; the authors' code masks with a finite
    -100 instead, which differs by at most about ``T e^{-100/T}``.

    >>> logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    >>> round(two_way_loss(logits, torch.tensor([[1.0, 0.0], [0.0, 1.0]])).item(), 4)  # 2 log 2
    1.3863
    """
    logits = upcast(logits)
    positive, negative = targets > 0.5, targets <= 0.5
    total = logits.new_zeros(())
    for dim in (1, 0):  # sample-wise (over labels), then label-wise (over samples)
        hard_pos = pos_temperature * _masked_logsumexp(-logits / pos_temperature, positive, dim)
        hard_neg = neg_temperature * _masked_logsumexp(logits / neg_temperature, negative, dim)
        counted = positive.any(dim=dim)
        terms = F.softplus(hard_neg + hard_pos.where(counted, 0.0))
        total = total + (terms * counted).sum() / counted.sum().clamp_min(1)
    return total


# --------------------------------------------------------------------------- modules


class MultiLabelLoss(nn.Module):
    """Base for losses on logits ``(N, L)`` and 0/1 targets ``(N, L)``; ``num_classes`` is L."""

    def __init__(self, num_classes: int | None = None, reduction: str = "mean"):
        super().__init__()
        self.num_classes = num_classes  # L; optional: when given, checked against the logits
        self.reduction = check_reduction(reduction)

    def check(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return check_multilabel(logits, targets, self.num_classes)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reduction={self.reduction!r}"


class BCELoss(MultiLabelLoss):
    """Binary cross-entropy with logits, with an optional weight on the positives."""

    def __init__(self, num_classes: int | None = None, pos_weight: float | Sequence[float] | None = None,
                 reduction: str = "mean"):
        super().__init__(num_classes, reduction)
        LOSSES.get("bce").check({"pos_weight": pos_weight}, {"num_classes": num_classes})
        self.register_buffer("pos_weight", None if pos_weight is None else torch.tensor(pos_weight,
                                                                                         dtype=torch.float32))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = self.check(logits, targets)
        return bce_loss(logits, targets, self.pos_weight, self.reduction)


class SigmoidFocalLoss(MultiLabelLoss):
    """Sigmoid focal loss (Lin et al. 2017), torchvision's formula; mean over elements by default."""

    def __init__(self, num_classes: int | None = None, alpha: float | None = 0.25, gamma: float = 2.0,
                 reduction: str = "mean"):
        super().__init__(num_classes, reduction)
        self.alpha = alpha
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = self.check(logits, targets)
        return sigmoid_focal_loss(logits, targets, self.alpha, self.gamma, self.reduction)


class AsymmetricLoss(MultiLabelLoss):
    """ASL (Ridnik et al. 2021); mean over elements by default (the reference sums)."""

    def __init__(
        self,
        num_classes: int | None = None,
        gamma_neg: float = 4.0,
        gamma_pos: float = 1.0,
        clip: float = 0.05,
        eps: float = 1e-8,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction)
        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip
        self.eps = eps

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = self.check(logits, targets)
        return asymmetric_loss(logits, targets, self.gamma_neg, self.gamma_pos, self.clip, self.eps, self.reduction)


class MultiLabelSoftMarginLoss(MultiLabelLoss):
    """Per-sample mean of the labels' binary cross-entropies (torch's MultiLabelSoftMarginLoss)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = self.check(logits, targets)
        return multilabel_soft_margin_loss(logits, targets, self.reduction)


class ZLPRLoss(MultiLabelLoss):
    """ZLPR / multi-label categorical cross-entropy (Su et al. 2022); one value per sample."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = self.check(logits, targets)
        return zlpr_loss(logits, targets, self.reduction)


class TwoWayLoss(nn.Module):
    """Two-way multi-label loss (Kobayashi 2023): sample-wise plus label-wise comparisons; no reduction."""

    def __init__(self, num_classes: int | None = None, pos_temperature: float = 4.0, neg_temperature: float = 1.0):
        super().__init__()
        self.num_classes = num_classes
        self.pos_temperature = pos_temperature
        self.neg_temperature = neg_temperature

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_multilabel(logits, targets, self.num_classes)
        return two_way_loss(logits, targets, self.pos_temperature, self.neg_temperature)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"
