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
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.errors import InvalidParameterError
from losszoo.losses._common import check_labels, check_reduction, reduce, upcast
from losszoo.registry import LOSSES

# --------------------------------------------------------------------------- helpers


def _target_probs_math(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``-log p_t`` and ``1 - p_t`` of softmax over dim 1 (keepdim), from one exp pass over the logits.

    With ``d = z - max_c z_c``, ``e_c = exp(d_c)`` and the other classes' sum
    ``R = sum_{c != t} e_c`` (summed without the target, so nothing cancels),
    ``S = e_t + R``:

    - ``-log p_t = log S - d_t``, with ``log S = log1p(R + expm1(d_t))``: where
      the target holds the maximum, ``expm1(d_t)`` is exactly 0 and this is
      ``log1p(R)``, which keeps the digits that ``logsumexp(z) - z_t`` rounds
      away when ``p_t`` rounds to 1 (a loss of 1e-26 is not 0);
    - ``1 - p_t = R / S``, never ``1 - p_t`` itself; it is 0 only where every
      other class underflows (lies more than about 103 below the maximum in float32).

    Also returns what the gradient needs: ``e`` (the target's entry 0), ``R``,
    ``S`` and the labels as an index. The same lines serve
    :class:`_TargetProbLoss`'s forward and, under autograd, its
    twice-differentiable backward: there nothing saved for a gradient is
    overwritten in place.
    """
    index = labels.unsqueeze(1)
    shifted = logits - logits.amax(dim=1, keepdim=True)
    shifted_t = shifted.gather(1, index)
    grad_mode = torch.is_grad_enabled()
    # The target is zeroed after the exp, not set to -inf before it: exp's vector kernel takes a slow path on
    # arguments below about -88 (one such entry a row doubles the time of the pass).
    e = shifted.exp().scatter(1, index, 0.0) if grad_mode else shifted.exp_().scatter_(1, index, 0.0)
    rest = e.sum(dim=1, keepdim=True)
    total_minus_1 = rest + torch.expm1(shifted_t)
    total = total_minus_1 + 1.0
    return torch.log1p(total_minus_1) - shifted_t, rest / total, e, rest, total, index


_TINIES: dict[torch.dtype, float] = {}


def _tiny(dtype: torch.dtype) -> float:
    """The smallest normal number of ``dtype`` (``torch.finfo`` costs a microsecond a call)."""
    if dtype not in _TINIES:
        _TINIES[dtype] = torch.finfo(dtype).tiny
    return _TINIES[dtype]


# ``terms(nll, rest)``: a loss's per-sample values, given ``nll = -log p_t`` and ``rest = 1 - p_t``,
# and their slope ``d values / d nll`` (see _TargetProbLoss).
Terms = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class _TargetProbLoss(torch.autograd.Function):
    """A per-sample loss of the softmax target probability ``p_t``, with a hand-written backward.

    The loss gives its values and their slope ``k = d values / d(-log p_t)`` as
    functions of ``-log p_t`` and ``1 - p_t`` (``terms``); the slope is the total
    derivative, through ``1 - p_t`` as well (``d(1 - p_t) / d(-log p_t) = p_t``).
    Since ``d(-log p_t) / dz = p - onehot``, the gradient is ``k (p - onehot)``:
    ``-k R / S`` at the target (exact where ``p_t`` rounds to 1) and ``k e_c / S``
    elsewhere, so with ``-R`` written into ``e`` at the target it is one
    product ``e k / S``. Against ``log_softmax`` and a gather through autograd
    this saves an exp pass and a zero-filled scatter, and the autograd nodes of
    the loss's own arithmetic.

    The reduction is applied inside, which spares its autograd node.

    With ``create_graph`` (a Hessian-vector product) the gradient must itself be
    differentiable: it then comes from autograd through the same math.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor, terms: Terms, reduction: str) -> torch.Tensor:
        nll, rest_fraction, e, rest, total, index = _target_probs_math(logits, labels)
        values, slope = terms(nll, rest_fraction)
        ctx.terms, ctx.reduction = terms, reduction
        if reduction == "mean":
            total = total * values.numel()
        ctx.save_for_backward(logits, labels, e.scatter_(1, index, rest.neg_()), slope / total)
        return values.squeeze(1) if reduction == "none" else reduce(values, reduction)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        logits, labels, e, slope_over_total = ctx.saved_tensors
        if torch.is_grad_enabled():
            with torch.enable_grad():
                values = ctx.terms(*_target_probs_math(logits, labels)[:2])[0]
                values = reduce(values.squeeze(1), ctx.reduction)
            return torch.autograd.grad(values, logits, grad, create_graph=True)[0], None, None, None
        return e * ((grad.unsqueeze(1) if ctx.reduction == "none" else grad) * slope_over_total), None, None, None


def _target_prob_loss(logits: torch.Tensor, labels: torch.Tensor, terms: Terms, reduction: str) -> torch.Tensor:
    """A loss of ``p_t`` given by its ``terms``, reduced; with ``none``, shaped like ``labels``.

    Exact at both ends: ``-log p_t`` where ``p_t`` rounds to 1, and ``1 - p_t``
    (and the gradient finite) where ``1 - p_t`` computed as such would be 0;
    see :func:`_target_probs_math`. Costs about what ``log_softmax`` and a gather do.
    """
    return _TargetProbLoss.apply(upcast(logits), labels, terms, reduction)


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
    if alpha is not None:
        dtype = upcast(logits).dtype
        alpha = torch.as_tensor(alpha, dtype=dtype, device=logits.device)
        alpha = alpha[labels].unsqueeze(1) if alpha.ndim else alpha

    def terms(nll: torch.Tensor, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The slope (1 - p_t)^gamma (1 + gamma (-log p_t) p_t / (1 - p_t)) is finite for any gamma >= 0, also
        # where p_t rounds to 1 and x^gamma (gamma < 1) has an infinite slope at 0: -log p_t / (1 - p_t) -> 1.
        # 1 - p_t is floored at the smallest normal number for the division (0 where all else underflows).
        rest = rest.clamp_min(_tiny(rest.dtype))
        weight = rest**gamma if alpha is None else alpha * rest**gamma
        values = weight * nll
        return values, torch.addcdiv(weight, values * (1.0 - rest), rest, value=gamma)

    return _target_prob_loss(logits, labels, terms, reduction)


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
    def terms(nll: torch.Tensor, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the slope 1 + epsilon p_t, as (1 + epsilon) - epsilon (1 - p_t)
        return torch.add(nll, rest, alpha=epsilon), rest.mul(-epsilon).add_(1.0 + epsilon)

    return _target_prob_loss(logits, labels, terms, reduction)


def gce_loss(logits: torch.Tensor, labels: torch.Tensor, q: float = 0.7, reduction: str = "mean") -> torch.Tensor:
    """Generalized cross-entropy ``(1 - p_t^q) / q`` (Zhang & Sabuncu, NeurIPS 2018).

    Tends to cross-entropy as ``q -> 0`` (from below: ``0 <= CE - GCE <= q log^2 p_t / 2``)
    and is the mean absolute error ``1 - p_t`` at ``q = 1``. This is the plain
    L_q loss of the paper, without its truncation.

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(gce_loss(logits, torch.tensor([0, 1]), q=1.0).item(), 4)
    0.1192
    """
    def terms(nll: torch.Tensor, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_p_q = nll * -q  # the value from expm1 (exact for small q log p_t), the slope p_t^q from exp
        return torch.expm1(log_p_q) / -q, torch.exp(log_p_q)

    return _target_prob_loss(logits, labels, terms, reduction)


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
    def terms(nll: torch.Tensor, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # -beta A (1 - p_t) with A < 0; the slope alpha - beta A p_t is (alpha - beta A) + beta A (1 - p_t)
        beta_a = beta * log_zero
        return torch.add(alpha * nll, rest, alpha=-beta_a), rest.mul(beta_a).add_(alpha - beta_a)

    return _target_prob_loss(logits, labels, terms, reduction)


def taylor_ce_loss(logits: torch.Tensor, labels: torch.Tensor, order: int = 2, reduction: str = "mean") -> torch.Tensor:
    """Taylor cross-entropy ``sum_{k=1..order} (1 - p_t)^k / k`` (Feng et al., IJCAI 2020).

    The Taylor series of ``-log p_t`` around ``p_t = 1`` cut after ``order``
    terms: order 1 is the mean absolute error ``1 - p_t``, and the loss rises to
    cross-entropy as the order grows.

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(taylor_ce_loss(logits, torch.tensor([0, 1]), order=1).item(), 4)
    0.1192
    """
    def terms(nll: torch.Tensor, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Horner: x (1 + x (1/2 + x (1/3 + ... + x / order))) for the value, and p_t (1 + x + ... + x^(order-1))
        # for the slope: a sum of positive terms, where its closed form 1 - x^order cancels for small p_t.
        if order == 1:
            return rest, torch.exp(-nll)
        total, geometric = rest * (1.0 / order) + 1.0 / (order - 1), rest + 1.0
        for k in range(order - 2, 0, -1):
            total, geometric = total * rest + 1.0 / k, geometric * rest + 1.0
        return total * rest, torch.exp(-nll) * geometric

    return _target_prob_loss(logits, labels, terms, reduction)


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
    logits = upcast(logits)
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
    scaled = scale * upcast(logits)
    # s (z - Delta_y onehot): the scaled margin goes in at the target, in place on our own product
    shift = (-scale * margins.to(scaled.dtype)[labels]).unsqueeze(1)
    return F.cross_entropy(scaled.scatter_add_(1, labels.unsqueeze(1), shift), labels, reduction=reduction)


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
    logits = upcast(logits)
    weights = weights.to(logits.dtype)
    if base == "cross_entropy":  # torch's kernel, which multiplies by w_y itself; mean over samples below
        return reduce(F.cross_entropy(logits, labels, weight=weights, reduction="none"), reduction)
    if base == "focal":  # the class weights are focal's per-class alpha
        return focal_loss(logits, labels, gamma, weights, reduction)
    target = torch.zeros_like(logits).scatter(1, labels.unsqueeze(1), 1.0)
    z_t = (2.0 * target - 1.0) * logits  # z for the target class, -z for the others
    per_class = -F.logsigmoid(z_t)
    if base == "sigmoid_focal":
        # (1 - sigmoid(z_t))^gamma = exp(gamma log sigmoid(-z_t)): finite slope for any gamma.
        per_class = torch.exp(gamma * F.logsigmoid(-z_t)) * per_class
    return reduce(weights[labels] * per_class.sum(dim=1), reduction)


def confidence_penalty_loss(
    logits: torch.Tensor, labels: torch.Tensor, beta: float = 0.1, reduction: str = "mean"
) -> torch.Tensor:
    """Confidence penalty ``-log p_t - beta H(p)``, ``H(p) = -sum_c p_c log p_c`` (Pereyra et al., 2017).

    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> round(confidence_penalty_loss(logits, torch.tensor([0]), beta=1.0).item(), 4)
    0.0
    """
    log_p = F.log_softmax(upcast(logits), dim=1)
    # -log p_t + beta sum_c p_c log p_c; nll_loss is -log p_t in one kernel each way
    return reduce(F.nll_loss(log_p, labels, reduction="none") + beta * (log_p.exp() * log_p).sum(dim=1), reduction)


# --------------------------------------------------------------------------- modules


class LogitLoss(nn.Module):
    """Base for losses on class logits ``(N, C, *)`` and labels ``(N, *)``: checks the hyperparameters against
    the entry's bounds and rules (``catalog/classification.py``: the same check a recipe runs), holds
    ``reduction``, and checks logits and labels. ``num_classes`` is needed only by losses with class-sized
    constants (ldam, class_balanced); elsewhere it is optional and, when given, checked against the logits."""

    name = ""  # the registry entry

    def __init__(self, num_classes: int | None = None, reduction: str = "mean", **hyperparameters: object):
        super().__init__()
        LOSSES.get(self.name).check(hyperparameters, {"num_classes": num_classes})
        self.num_classes = num_classes
        self.reduction = check_reduction(reduction)

    def check(self, logits: torch.Tensor, labels: torch.Tensor, ignore_index: int | None = None) -> None:
        shape = logits.shape
        if len(shape) < 2 or (self.num_classes is not None and shape[1] != self.num_classes):
            wanted = f"num_classes={self.num_classes}" if self.num_classes is not None else "a class axis"
            raise ValueError(f"logits of shape {tuple(logits.shape)} do not have {wanted} along dim 1")
        if labels.shape != shape[:1] + shape[2:]:
            raise ValueError(
                f"labels of shape {tuple(labels.shape)} do not match logits of shape {tuple(logits.shape)}; "
                "expected (N, *) for logits (N, C, *)"
            )
        check_labels(labels, shape[1], ignore_index)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reduction={self.reduction!r}"


def _constant(cache: dict, values: list[float], logits: torch.Tensor) -> torch.Tensor:
    """``values`` as a tensor in the dtype the logits are computed in and on their device, built once for each.

    Built from the python floats, so float64 logits get float64-exact values
    (not a float32 buffer's), and a training step pays a dictionary lookup
    instead of a host-to-device copy.
    """
    key = (upcast(logits).dtype, logits.device)
    if key not in cache:
        cache[key] = torch.tensor(values, dtype=key[0], device=key[1])
    return cache[key]


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

    name = "cross_entropy"

    def __init__(
        self,
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        weight: Sequence[float] | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction, label_smoothing=label_smoothing, weight=weight,
                         ignore_index=ignore_index)
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index
        self.register_buffer("class_weight", None if weight is None else torch.tensor(weight, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels, self.ignore_index)
        logits = upcast(logits)
        weight = None if self.class_weight is None else self.class_weight.to(logits.dtype)
        return cross_entropy_loss(logits, labels, weight, self.label_smoothing, self.ignore_index, self.reduction)


class FocalLoss(LogitLoss):
    """Focal loss on softmax probabilities (Lin et al. 2017)."""

    name = "focal"

    def __init__(
        self,
        num_classes: int | None = None,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction, gamma=gamma, alpha=alpha)
        self.gamma = gamma
        self.register_buffer("alpha", None if alpha is None else torch.tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return focal_loss(logits, labels, self.gamma, self.alpha, self.reduction)


class Poly1Loss(LogitLoss):
    """Poly-1 loss (Leng et al. 2022): cross-entropy plus ``epsilon (1 - p_t)``."""

    name = "poly1"

    def __init__(self, num_classes: int | None = None, epsilon: float = 1.0, reduction: str = "mean"):
        super().__init__(num_classes, reduction, epsilon=epsilon)
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return poly1_loss(logits, labels, self.epsilon, self.reduction)


class GCELoss(LogitLoss):
    """Generalized cross-entropy (Zhang & Sabuncu 2018): ``(1 - p_t^q) / q``."""

    name = "gce"

    def __init__(self, num_classes: int | None = None, q: float = 0.7, reduction: str = "mean"):
        super().__init__(num_classes, reduction, q=q)
        self.q = q

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return gce_loss(logits, labels, self.q, self.reduction)


class SCELoss(LogitLoss):
    """Symmetric cross-entropy (Wang et al. 2019): ``alpha CE + beta RCE``."""

    name = "sce"

    def __init__(
        self, num_classes: int | None = None, alpha: float = 0.1, beta: float = 1.0, log_zero: float = -4.0,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction, alpha=alpha, beta=beta, log_zero=log_zero)
        self.alpha = alpha
        self.beta = beta
        self.log_zero = log_zero

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return sce_loss(logits, labels, self.alpha, self.beta, self.log_zero, self.reduction)


class TaylorCELoss(LogitLoss):
    """Taylor cross-entropy (Feng et al. 2020): the first ``order`` terms of ``-log p_t`` around 1."""

    name = "taylor_ce"

    def __init__(self, num_classes: int | None = None, order: int = 2, reduction: str = "mean"):
        super().__init__(num_classes, reduction, order=order)
        self.order = order

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return taylor_ce_loss(logits, labels, self.order, self.reduction)


class BiTemperedLoss(LogitLoss):
    """Bi-tempered logistic loss (Amid et al. 2019) with temperatures ``t1`` (log) and ``t2`` (softmax)."""

    name = "bi_tempered"

    def __init__(self, num_classes: int | None = None, t1: float = 0.8, t2: float = 1.2, reduction: str = "mean"):
        super().__init__(num_classes, reduction, t1=t1, t2=t2)
        self.t1 = t1
        self.t2 = t2

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return bi_tempered_loss(logits, labels, self.t1, self.t2, self.reduction)


class LDAMLoss(LogitLoss):
    """Label-distribution-aware margin loss (Cao et al. 2019); margins from the training ``class_counts``."""

    name = "ldam"

    def __init__(
        self,
        num_classes: int,
        class_counts: Sequence[int],
        max_margin: float = 0.5,
        scale: float = 30.0,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction, max_margin=max_margin, scale=scale)
        counts = _class_counts(class_counts, num_classes)
        self.max_margin = max_margin
        self.scale = scale
        self.class_counts = counts
        self.margins = ldam_margins(counts, max_margin)  # python floats: a tensor per dtype and device, on use
        self._tensors: dict = {}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return ldam_loss(logits, labels, _constant(self._tensors, self.margins, logits), self.scale, self.reduction)


class ClassBalancedLoss(LogitLoss):
    """Class-balanced loss (Cui et al. 2019): ``base`` weighted by inverse effective class sizes."""

    name = "class_balanced"

    def __init__(
        self,
        num_classes: int,
        class_counts: Sequence[int],
        beta: float = 0.9999,
        base: str = "cross_entropy",
        gamma: float = 2.0,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, reduction, beta=beta, base=base, gamma=gamma)
        counts = _class_counts(class_counts, num_classes)
        self.beta = beta
        self.base = base
        self.gamma = gamma
        self.class_counts = counts
        self.class_weights = class_balanced_weights(counts, beta)  # python floats: a tensor per dtype and device
        self._tensors: dict = {}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        weights = _constant(self._tensors, self.class_weights, logits)
        return class_balanced_loss(logits, labels, weights, self.base, self.gamma, self.reduction)


class ConfidencePenaltyLoss(LogitLoss):
    """Cross-entropy minus ``beta`` times the entropy of the softmax (Pereyra et al. 2017)."""

    name = "confidence_penalty"

    def __init__(self, num_classes: int | None = None, beta: float = 0.1, reduction: str = "mean"):
        super().__init__(num_classes, reduction, beta=beta)
        self.beta = beta

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return confidence_penalty_loss(logits, labels, self.beta, self.reduction)
