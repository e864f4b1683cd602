"""Cross-entropy variants on class logits ``(N, C)`` with integer labels ``(N,)``.

Every loss here also takes per-pixel logits ``(N, C, *)`` with labels ``(N, *)``
(segmentation): the class axis is always dim 1, and ``reduction="none"``
returns one value per sample or pixel, shaped like the labels.

Each loss is a pure function (the math) and a module that holds its
hyperparameters. Metadata and bounds: ``losszoo/catalog/classification.py``.
Half-precision logits (bf16 autocast included) are computed in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.errors import InvalidParameterError
from losszoo.losses._common import check_labels, check_reduction, reduce

# --------------------------------------------------------------------------- helpers

_LN2 = math.log(2.0)


def _float(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision logits upcast to float32; float32 and float64 left alone."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def _target_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p_t`` and ``log(1 - p_t)`` of softmax over dim 1, both shaped like ``labels``.

    ``log(1 - p_t)`` is the log-sum-exp of the other classes' logits minus that of
    all classes, so it stays exact (and its gradient finite) when ``p_t`` rounds
    to 1, where ``1 - exp(log p_t)`` would be 0.
    """
    index = labels.unsqueeze(1)
    log_total = torch.logsumexp(logits, dim=1)
    others = logits.scatter(1, index, float("-inf"))
    log_rest = torch.logsumexp(others, dim=1) - log_total
    # Where p_t > 1/2, log p_t = log1p(-(1 - p_t)) keeps the digits that z_t - logsumexp(z) rounds away
    # (a loss of 1e-26 is not 0). The clamp keeps the unused branch finite so `where` passes no NaN back.
    from_rest = torch.log1p(-torch.exp(log_rest.clamp_max(-_LN2)))
    log_pt = torch.where(log_rest < -_LN2, from_rest, logits.gather(1, index).squeeze(1) - log_total)
    return log_pt, log_rest


def _positive_pow(base: torch.Tensor, exponent: float) -> torch.Tensor:
    """``[base]_+ ** exponent`` with a zero (not NaN) gradient where ``base <= 0``."""
    inside = base > 0
    return torch.where(inside, torch.where(inside, base, 1.0).pow(exponent), 0.0)


# --------------------------------------------------------------------------- the math


def cross_entropy_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Softmax cross-entropy; exactly ``torch.nn.functional.cross_entropy``.

    ``-sum_c w_c q_c log softmax(z)_c`` with ``q = (1 - ls) onehot(y) + ls / C``;
    with class weights, ``mean`` divides by the summed weights ``w_y`` of the
    samples that are not ``ignore_index``.

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
    """Focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` on softmax probabilities (Lin et al. 2017).

    ``alpha`` is None, one number (multiplies every class), or a tensor of one
    weight per class. The mean is over samples (kornia's multi-class focal
    averages over samples and classes, i.e. divides by C as well).

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(focal_loss(logits, torch.tensor([0, 1]), gamma=0.0).item(), 4)
    0.1269
    """
    log_pt, log_rest = _target_log_probs(_float(logits), labels)
    # (1 - p_t)^gamma as exp(gamma log(1 - p_t)): finite gradient for any gamma >= 0,
    # also where p_t rounds to 1 and x^gamma (gamma < 1) has an infinite slope at 0.
    values = -torch.exp(gamma * log_rest) * log_pt
    if alpha is not None:
        alpha = torch.as_tensor(alpha, dtype=values.dtype, device=values.device)
        values = values * (alpha[labels] if alpha.ndim else alpha)
    return reduce(values, reduction)


def poly1_loss(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Poly-1: ``-log p_t + epsilon (1 - p_t)`` (Leng et al., PolyLoss, ICLR 2022).

    The first term of the Taylor expansion of cross-entropy in ``(1 - p_t)``
    gets ``epsilon`` more weight; ``epsilon = 0`` is cross-entropy.

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(poly1_loss(logits, torch.tensor([0, 1]), epsilon=0.0).item(), 4)
    0.1269
    """
    log_pt, log_rest = _target_log_probs(_float(logits), labels)
    return reduce(epsilon * torch.exp(log_rest) - log_pt, reduction)


def gce_loss(logits: torch.Tensor, labels: torch.Tensor, q: float = 0.7, reduction: str = "mean") -> torch.Tensor:
    """Generalized cross-entropy ``(1 - p_t^q) / q`` (Zhang & Sabuncu, NeurIPS 2018).

    Tends to cross-entropy as ``q -> 0`` (from below: ``0 <= CE - GCE <= q log^2 p_t / 2``)
    and is the mean absolute error ``1 - p_t`` at ``q = 1``. This is the plain
    L_q loss of the paper, without its truncation.

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(gce_loss(logits, torch.tensor([0, 1]), q=1.0).item(), 4)
    0.1192
    """
    log_pt, _ = _target_log_probs(_float(logits), labels)
    return reduce(-torch.expm1(q * log_pt) / q, reduction)


def sce_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 0.1,
    beta: float = 1.0,
    log_zero: float = -4.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Symmetric cross-entropy ``alpha CE + beta RCE`` (Wang et al., ICCV 2019).

    The reverse cross-entropy ``RCE = -sum_c p_c log q_c`` swaps prediction ``p``
    and one-hot label ``q``; ``log 0`` is taken as ``log_zero`` (A in the paper),
    so ``RCE = -A (1 - p_t)``.

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(sce_loss(logits, torch.tensor([0, 1]), alpha=0.0, beta=1.0).item(), 4)
    0.4768
    """
    log_pt, log_rest = _target_log_probs(_float(logits), labels)
    return reduce(-alpha * log_pt - beta * log_zero * torch.exp(log_rest), reduction)


def taylor_ce_loss(logits: torch.Tensor, labels: torch.Tensor, order: int = 2, reduction: str = "mean") -> torch.Tensor:
    """Taylor cross-entropy ``sum_{k=1..order} (1 - p_t)^k / k`` (Feng et al., IJCAI 2020).

    The Taylor series of ``-log p_t`` around ``p_t = 1`` cut after ``order``
    terms: order 1 is the mean absolute error ``1 - p_t``, and the loss rises to
    cross-entropy as the order grows.

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(taylor_ce_loss(logits, torch.tensor([0, 1]), order=1).item(), 4)
    0.1192
    """
    _, log_rest = _target_log_probs(_float(logits), labels)
    rest = torch.exp(log_rest)
    # Horner: x (1 + x (1/2 + x (1/3 + ... + x / order))).
    total = torch.full_like(rest, 1.0 / order)
    for k in range(order - 1, 0, -1):
        total = total * rest + 1.0 / k
    return reduce(total * rest, reduction)


def tempered_log(x: torch.Tensor, t: float) -> torch.Tensor:
    """``log_t(x) = (x^(1-t) - 1) / (1 - t)``; ``log`` at ``t = 1``."""
    if t == 1.0:
        return torch.log(x)
    return (x.pow(1.0 - t) - 1.0) / (1.0 - t)


def tempered_exp(x: torch.Tensor, t: float) -> torch.Tensor:
    """``exp_t(x) = [1 + (1-t) x]_+^(1/(1-t))``; ``exp`` at ``t = 1``."""
    if t == 1.0:
        return torch.exp(x)
    return _positive_pow(1.0 + (1.0 - t) * x, 1.0 / (1.0 - t))


def tempered_normaliser(activations: torch.Tensor, t: float, dim: int = 1, max_iter: int = 100) -> torch.Tensor:
    """``lambda`` with ``sum_c exp_t(a_c - lambda) = 1`` along ``dim`` (kept as size 1).

    Solved to float precision by Newton's method on ``phi(lambda) = Z(lambda)^(1-t)``,
    ``Z = sum_c exp_t(a_c - lambda)``, started at ``lambda = max_c a_c``. ``phi`` is
    concave increasing for ``t > 1`` and convex decreasing for ``t < 1`` (a power
    mean of terms affine in ``lambda``), so in both cases the iterates rise
    monotonically to the root and never leave the domain of ``exp_t``; with
    equal activations the first step is exact. (The paper's Algorithm 1 is a
    fixed-point iteration for ``t > 1`` and its code bisects for ``t < 1``, both
    stopped after a fixed count; Newton reaches the same root, exactly.)

    The iteration runs without autograd; the gradient is attached by one
    implicit-function step, ``d lambda / d a_c = exp_t(a_c - lambda)^t / sum_j exp_t(a_j - lambda)^t``.
    """
    if t == 1.0:
        return torch.logsumexp(activations, dim=dim, keepdim=True)
    with torch.no_grad():
        top = activations.amax(dim=dim, keepdim=True)
        x = activations - top  # <= 0; the root lambda - top is >= 0
        lam = torch.zeros_like(top)
        near = math.sqrt(torch.finfo(activations.dtype).eps)
        close = False
        for _ in range(max_iter):
            base = 1.0 + (1.0 - t) * (x - lam)
            z = _positive_pow(base, 1.0 / (1.0 - t)).sum(dim=dim, keepdim=True)
            slope = _positive_pow(base, t / (1.0 - t)).sum(dim=dim, keepdim=True)  # -dZ/dlambda
            # Newton on phi = Z^(1-t): step = (phi - 1) / -phi' = log_t(Z) Z^t / slope, log_t via expm1
            # so that t close to 1 loses no digits.
            step = torch.expm1((1.0 - t) * torch.log(z)) / (1.0 - t) * z.pow(t) / slope
            lam = lam + step
            if close:  # the step before was within sqrt(eps): Newton has squared that error away
                break
            close = bool((step.abs() <= near * (1.0 + lam)).all())
        lam = lam + top
    base = 1.0 + (1.0 - t) * (activations - lam)
    z = _positive_pow(base, 1.0 / (1.0 - t)).sum(dim=dim, keepdim=True)
    slope = _positive_pow(base, t / (1.0 - t)).sum(dim=dim, keepdim=True).detach()
    return lam + (z - 1.0) / slope


def tempered_softmax(activations: torch.Tensor, t: float, dim: int = 1) -> torch.Tensor:
    """``exp_t(a - lambda(a))`` over ``dim``; softmax at ``t = 1``."""
    return tempered_exp(activations - tempered_normaliser(activations, t, dim), t)


def bi_tempered_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    t1: float = 0.8,
    t2: float = 1.2,
    reduction: str = "mean",
) -> torch.Tensor:
    """Bi-tempered logistic loss (Amid et al., NeurIPS 2019).

    The Bregman divergence of the tempered log ``log_t1`` between the one-hot
    label and the tempered softmax ``p = exp_t2(z - lambda(z))``:
    ``-log_t1(p_y) - (1 - sum_c p_c^(2-t1)) / (2 - t1)``. ``t1 < 1`` bounds the
    loss (robust to outliers), ``t2 > 1`` gives the softmax a heavy tail (robust
    to label noise); ``t1 = t2 = 1`` is cross-entropy. With ``t2 < 1`` the
    tempered softmax has finite support, and at ``t1 = 1`` a target outside it
    costs ``+inf``. The normaliser: :func:`tempered_normaliser`.

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(bi_tempered_loss(logits, torch.tensor([0, 1]), t1=1.0, t2=1.0).item(), 4)
    0.1269
    """
    logits = _float(logits)
    index = labels.unsqueeze(1)
    if t2 == 1.0:
        log_p = F.log_softmax(logits, dim=1)
        log_py = log_p.gather(1, index).squeeze(1)
        if t1 == 1.0:
            return reduce(-log_py, reduction)
        neg_log_t1 = -torch.expm1((1.0 - t1) * log_py) / (1.0 - t1)
        power_sum = torch.exp((2.0 - t1) * log_p).sum(dim=1)
    else:
        # Powers of p are taken as powers of base = 1 + (1-t2)(z - lambda), p = base^(1/(1-t2)),
        # so a p that underflows to 0 never meets the infinite slope of p^(1-t1) at 0.
        base = 1.0 + (1.0 - t2) * (logits - tempered_normaliser(logits, t2))
        base_y = base.gather(1, index).squeeze(1)
        if t1 == 1.0:
            return reduce(-torch.log(base_y) / (1.0 - t2), reduction)
        neg_log_t1 = (1.0 - _positive_pow(base_y, (1.0 - t1) / (1.0 - t2))) / (1.0 - t1)
        power_sum = _positive_pow(base, (2.0 - t1) / (1.0 - t2)).sum(dim=1)
    return reduce(neg_log_t1 - (1.0 - power_sum) / (2.0 - t1), reduction)


def ldam_margins(class_counts: Sequence[int], max_margin: float = 0.5) -> list[float]:
    """Per-class margins ``C / n_j^(1/4)``, with ``C`` such that the largest is ``max_margin``.

    >>> [round(m, 4) for m in ldam_margins([1, 16], 0.5)]
    [0.5, 0.25]
    """
    rarest = min(class_counts)
    return [max_margin * (rarest / n) ** 0.25 for n in class_counts]


def ldam_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    margins: torch.Tensor,
    scale: float = 30.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """LDAM: ``CE(s (z - Delta_y onehot(y)), y)`` with per-class margins ``Delta`` (Cao et al., NeurIPS 2019).

    ``margins`` is the tensor of :func:`ldam_margins`; like the authors' code,
    ``scale`` multiplies the logits after the margin is subtracted from the
    target one (their model feeds it cosine logits, hence the default 30).
    """
    logits = _float(logits)
    index = labels.unsqueeze(1)
    shift = margins.to(logits.dtype)[labels].unsqueeze(1)
    shifted = logits.scatter(1, index, logits.gather(1, index) - shift)
    return F.cross_entropy(scale * shifted, labels, reduction=reduction)


def class_balanced_weights(class_counts: Sequence[int], beta: float = 0.9999) -> list[float]:
    """Inverse effective numbers ``(1 - beta) / (1 - beta^n_c)``, scaled to sum to the class count.

    ``beta = 0`` weights every class 1; as ``beta -> 1`` the weights tend to ``1 / n_c``.

    >>> [round(w, 4) for w in class_balanced_weights([10, 90], 0.0)]
    [1.0, 1.0]
    """
    if beta == 0.0:
        raw = [1.0 for _ in class_counts]
    else:
        # 1 - beta^n as -expm1(n log beta): exact when beta is close to 1.
        raw = [-math.expm1(math.log(beta)) / -math.expm1(n * math.log(beta)) for n in class_counts]
    total = sum(raw)
    return [w * len(raw) / total for w in raw]


CLASS_BALANCED_BASES = ("cross_entropy", "focal", "sigmoid", "sigmoid_focal")


def class_balanced_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    base: str = "cross_entropy",
    gamma: float = 2.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Class-balanced loss ``w_y L(z, y)`` (Cui et al., CVPR 2019); ``weights`` from :func:`class_balanced_weights`.

    ``base`` picks ``L``: ``cross_entropy`` ``-log softmax(z)_y``; ``focal``
    ``-(1 - p_t)^gamma log p_t`` on softmax; ``sigmoid``
    ``-sum_c log sigmoid(z_c^t)``; ``sigmoid_focal``
    ``-sum_c (1 - sigmoid(z_c^t))^gamma log sigmoid(z_c^t)``, with ``z_c^t = z_c``
    for the target class and ``-z_c`` otherwise (one-vs-all, summed over classes
    as in the paper). ``mean`` averages over samples, not over the weights.
    """
    logits = _float(logits)
    if base in ("cross_entropy", "focal"):
        values = focal_loss(logits, labels, gamma if base == "focal" else 0.0, None, "none")
    else:
        target = torch.zeros_like(logits).scatter(1, labels.unsqueeze(1), 1.0)
        z_t = (2.0 * target - 1.0) * logits  # z for the target class, -z for the others
        per_class = -F.logsigmoid(z_t)
        if base == "sigmoid_focal":
            # (1 - sigmoid(z_t))^gamma = exp(gamma log sigmoid(-z_t)): finite slope for any gamma.
            per_class = torch.exp(gamma * F.logsigmoid(-z_t)) * per_class
        values = per_class.sum(dim=1)
    return reduce(weights.to(logits.dtype)[labels] * values, reduction)


def confidence_penalty_loss(
    logits: torch.Tensor, labels: torch.Tensor, beta: float = 0.1, reduction: str = "mean"
) -> torch.Tensor:
    """Confidence penalty ``-log p_t - beta H(p)``, ``H(p) = -sum_c p_c log p_c`` (Pereyra et al., 2017).

    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> round(confidence_penalty_loss(logits, torch.tensor([0]), beta=1.0).item(), 4)
    0.0
    """
    log_p = F.log_softmax(_float(logits), dim=1)
    entropy = -(log_p.exp() * log_p).sum(dim=1)
    return reduce(-log_p.gather(1, labels.unsqueeze(1)).squeeze(1) - beta * entropy, reduction)


# --------------------------------------------------------------------------- modules


class LogitLoss(nn.Module):
    """Base for losses on class logits ``(N, C, *)`` and labels ``(N, *)``: checks both, holds ``reduction``."""

    def __init__(self, num_classes: int, reduction: str = "mean"):
        super().__init__()
        self.num_classes = num_classes
        self.reduction = check_reduction(reduction)

    def check(self, logits: torch.Tensor, labels: torch.Tensor, ignore_index: int | None = None) -> None:
        if logits.ndim < 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits of shape {tuple(logits.shape)} do not have num_classes={self.num_classes} along dim 1"
            )
        if labels.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(
                f"labels of shape {tuple(labels.shape)} do not match logits of shape {tuple(logits.shape)}; "
                "expected (N, *) for logits (N, C, *)"
            )
        check_labels(labels, self.num_classes, ignore_index)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reduction={self.reduction!r}"


def _class_counts(class_counts: Sequence[int], num_classes: int) -> list[int]:
    if len(class_counts) != num_classes:
        raise InvalidParameterError(
            f"class_counts has {len(class_counts)} entries for {num_classes} classes", "class_counts"
        )
    if any(isinstance(n, bool) or not isinstance(n, (int, float)) or not n >= 1 for n in class_counts):
        raise InvalidParameterError(
            f"class_counts must all be >= 1 (every class needs training samples), got {list(class_counts)}",
            "class_counts",
        )
    return list(class_counts)


class CrossEntropyLoss(LogitLoss):
    """Softmax cross-entropy with label smoothing, class weights and ignore_index."""

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.0,
        weight: Sequence[float] | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction)
        if weight is not None and len(weight) != num_classes:
            raise InvalidParameterError(f"weight has {len(weight)} entries for {num_classes} classes", "weight")
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index
        self.register_buffer("class_weight", None if weight is None else torch.tensor(weight, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels, self.ignore_index)
        logits = _float(logits)
        weight = None if self.class_weight is None else self.class_weight.to(logits.dtype)
        return cross_entropy_loss(logits, labels, weight, self.label_smoothing, self.ignore_index, self.reduction)


class FocalLoss(LogitLoss):
    """Focal loss on softmax probabilities (Lin et al. 2017)."""

    def __init__(
        self,
        num_classes: int,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction)
        if isinstance(alpha, (list, tuple)) and len(alpha) != num_classes:
            raise InvalidParameterError(f"alpha has {len(alpha)} entries for {num_classes} classes", "alpha")
        self.gamma = gamma
        self.register_buffer("alpha", None if alpha is None else torch.tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return focal_loss(logits, labels, self.gamma, self.alpha, self.reduction)


class Poly1Loss(LogitLoss):
    """Poly-1 loss (Leng et al. 2022): cross-entropy plus ``epsilon (1 - p_t)``."""

    def __init__(self, num_classes: int, epsilon: float = 1.0, reduction: str = "mean"):
        super().__init__(num_classes, reduction)
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return poly1_loss(logits, labels, self.epsilon, self.reduction)


class GCELoss(LogitLoss):
    """Generalized cross-entropy (Zhang & Sabuncu 2018): ``(1 - p_t^q) / q``."""

    def __init__(self, num_classes: int, q: float = 0.7, reduction: str = "mean"):
        super().__init__(num_classes, reduction)
        self.q = q

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return gce_loss(logits, labels, self.q, self.reduction)


class SCELoss(LogitLoss):
    """Symmetric cross-entropy (Wang et al. 2019): ``alpha CE + beta RCE``."""

    def __init__(
        self, num_classes: int, alpha: float = 0.1, beta: float = 1.0, log_zero: float = -4.0, reduction: str = "mean"
    ):
        super().__init__(num_classes, reduction)
        if alpha == 0.0 and beta == 0.0:
            raise InvalidParameterError("sce with alpha = beta = 0 is zero everywhere; set alpha or beta > 0", "alpha")
        self.alpha = alpha
        self.beta = beta
        self.log_zero = log_zero

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return sce_loss(logits, labels, self.alpha, self.beta, self.log_zero, self.reduction)


class TaylorCELoss(LogitLoss):
    """Taylor cross-entropy (Feng et al. 2020): the first ``order`` terms of ``-log p_t`` around 1."""

    def __init__(self, num_classes: int, order: int = 2, reduction: str = "mean"):
        super().__init__(num_classes, reduction)
        self.order = order

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return taylor_ce_loss(logits, labels, self.order, self.reduction)


class BiTemperedLoss(LogitLoss):
    """Bi-tempered logistic loss (Amid et al. 2019) with temperatures ``t1`` (log) and ``t2`` (softmax)."""

    def __init__(self, num_classes: int, t1: float = 0.8, t2: float = 1.2, reduction: str = "mean"):
        super().__init__(num_classes, reduction)
        self.t1 = t1
        self.t2 = t2

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return bi_tempered_loss(logits, labels, self.t1, self.t2, self.reduction)


class LDAMLoss(LogitLoss):
    """Label-distribution-aware margin loss (Cao et al. 2019); margins from the training ``class_counts``."""

    def __init__(
        self,
        num_classes: int,
        class_counts: Sequence[int],
        max_margin: float = 0.5,
        scale: float = 30.0,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction)
        counts = _class_counts(class_counts, num_classes)
        self.max_margin = max_margin
        self.scale = scale
        self.class_counts = counts
        self.margins = ldam_margins(counts, max_margin)  # python floats: built per call in the logits' dtype

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        margins = torch.tensor(self.margins, dtype=_float(logits).dtype, device=logits.device)
        return ldam_loss(logits, labels, margins, self.scale, self.reduction)


class ClassBalancedLoss(LogitLoss):
    """Class-balanced loss (Cui et al. 2019): ``base`` weighted by inverse effective class sizes."""

    def __init__(
        self,
        num_classes: int,
        class_counts: Sequence[int],
        beta: float = 0.9999,
        base: str = "cross_entropy",
        gamma: float = 2.0,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction)
        counts = _class_counts(class_counts, num_classes)
        if base not in CLASS_BALANCED_BASES:
            raise InvalidParameterError(f"base must be one of {', '.join(CLASS_BALANCED_BASES)}, got {base!r}", "base")
        self.beta = beta
        self.base = base
        self.gamma = gamma
        self.class_counts = counts
        self.class_weights = class_balanced_weights(counts, beta)  # python floats: built per call in the logits' dtype

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        weights = torch.tensor(self.class_weights, dtype=_float(logits).dtype, device=logits.device)
        return class_balanced_loss(logits, labels, weights, self.base, self.gamma, self.reduction)


class ConfidencePenaltyLoss(LogitLoss):
    """Cross-entropy minus ``beta`` times the entropy of the softmax (Pereyra et al. 2017)."""

    def __init__(self, num_classes: int, beta: float = 0.1, reduction: str = "mean"):
        super().__init__(num_classes, reduction)
        self.beta = beta

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return confidence_penalty_loss(logits, labels, self.beta, self.reduction)
