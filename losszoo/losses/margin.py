"""Margin losses: angular margins on embeddings, hinge margins on logits.

Embedding losses take embeddings ``(N, D)`` and integer labels ``(N,)``, hold
one learnable centre per class as ``weight`` of shape ``(num_classes,
embedding_dim)`` (sub-center ArcFace: ``(num_classes, k, embedding_dim)``),
compare L2-normalised embeddings and centres by cosine, put a margin on the
target class and apply softmax cross-entropy to the scaled result. Each
exposes ``class_logits(embeddings)``, what accuracy and nll are measured on.
Margins are in radians. Stateful losses (adacos, curricularface, adaface) keep
their running statistics in registered buffers, so they are checkpointed with
``state_dict``, and update them only in training mode, before the loss of the
batch is computed (as the papers' reference code does).

The hinge losses (multi_margin, squared_hinge) take class logits ``(N, C)``.

Metadata and bounds: ``losszoo/catalog/margin.py``.

Numerics shared by every loss here:

- cosines are computed in float32 (float64 stays float64) with autocast off,
  because a bf16 cosine is only good to ~3 digits and the scale (often 64)
  magnifies that error;
- sin(theta) is ``sqrt(max(1 - cos^2, eps))`` and theta, where a loss needs it,
  ``atan2(sin, cos)``: both have finite gradients at cosines of exactly +-1,
  where acos has none;
- zero-norm embeddings give cosines of 0 (F.normalize divides by max(norm, eps)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.losses._common import check_labels, no_autocast, reduce, upcast
from losszoo.losses.classification import LogitLoss
from losszoo.registry import LOSSES

# Keeps sin(theta) = sqrt(1 - cos^2) differentiable at cosines of exactly +-1.
_SIN_EPS = 1e-12


# ---------------------------------------------------------------------------
# helpers


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half-precision inputs, the input's own dtype otherwise."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def cosine_logits(embeddings: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Cosine between every embedding ``(N, D)`` and every centre ``(C, D)`` or ``(C, k, D)``.

    Returns ``(N, C)`` or ``(N, C, k)``. Zero-norm embeddings give cosines of 0.
    """
    with no_autocast(embeddings):
        dtype = torch.promote_types(_compute_dtype(embeddings), _compute_dtype(weight))
        x = F.normalize(embeddings.to(dtype), dim=-1)
        w = F.normalize(weight.to(dtype), dim=-1)
        cosine = F.linear(x, w.reshape(-1, w.shape[-1]))
    return cosine.reshape(embeddings.shape[0], *weight.shape[:-1])


def _sin_from_cos(cos: torch.Tensor) -> torch.Tensor:
    return (1.0 - cos * cos).clamp_min(_SIN_EPS).sqrt()


def _cos_plus(cos_t: torch.Tensor, m: float | torch.Tensor, sin_t: torch.Tensor | None = None) -> torch.Tensor:
    """cos(theta + m) expanded as cos(theta)cos(m) - sin(theta)sin(m): finite gradient at cos(theta) = +-1.

    ``m`` is a number (its cosine taken in float64) or a tensor (one margin per
    sample); ``sin_t``, sin(theta) if the caller has it already.
    """
    cos_m, sin_m = (torch.cos(m), torch.sin(m)) if isinstance(m, torch.Tensor) else (math.cos(m), math.sin(m))
    return cos_t * cos_m - (_sin_from_cos(cos_t) if sin_t is None else sin_t) * sin_m


def _target(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return values.gather(1, labels[:, None]).squeeze(1)


def _with_target(values: torch.Tensor, labels: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``values`` with column ``labels[i]`` of row ``i`` replaced by ``target[i]``."""
    return values.scatter(1, labels[:, None], target[:, None].to(values.dtype))


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    with no_autocast(logits):
        return F.cross_entropy(upcast(logits), labels)


def _additive_angular_margin(
    cos_t: torch.Tensor, margin: float | torch.Tensor, easy_margin: bool = False
) -> torch.Tensor:
    """ArcFace's target logit cos(theta + m), kept monotonic in theta.

    cos(theta + m) is expanded (:func:`_cos_plus`), which has a finite gradient at
    cos(theta) = +-1. Where theta + m would pass pi the logit
    would rise again with the angle; there InsightFace's fallback
    cos(theta) - m sin(m) is used (or, with ``easy_margin``, no margin where
    cos(theta) <= 0). ``margin`` is a number or one margin per sample (MagFace).
    """
    m = torch.as_tensor(margin, dtype=cos_t.dtype, device=cos_t.device)
    with_margin = _cos_plus(cos_t, m)
    if easy_margin:
        return torch.where(cos_t > 0, with_margin, cos_t)
    return torch.where(cos_t > torch.cos(math.pi - m), with_margin, cos_t - m * torch.sin(m))


# ---------------------------------------------------------------------------
# pure functions: the math


def normface_loss(cosine: torch.Tensor, labels: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """NormFace: ``CE(s * cos(theta_j))``, softmax on scaled cosines, no margin.

    Wang et al., NormFace: L2 Hypersphere Embedding for Face Verification, ACM MM 2017.
    ``cosine`` ``(N, C)``, ``labels`` ``(N,)``. Equals pytorch-metric-learning's
    NormalizedSoftmaxLoss with ``temperature = 1 / scale``.

    >>> cosine = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> round(normface_loss(cosine, torch.tensor([0, 1]), scale=1.0).item(), 4)  # log(1 + e^-1)
    0.3133
    """
    return _cross_entropy(scale * cosine, labels)


def cosface_loss(cosine: torch.Tensor, labels: torch.Tensor, margin: float = 0.35, scale: float = 64.0) -> torch.Tensor:
    """CosFace: ``CE(s * (cos theta_j - m [j = y]))`` from cosines ``(N, C)``.

    Wang et al., CosFace: Large Margin Cosine Loss for Deep Face Recognition, CVPR 2018.
    """
    logits = _with_target(cosine, labels, _target(cosine, labels) - margin)
    return _cross_entropy(scale * logits, labels)


def arcface_loss(
    cosine: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.5,
    scale: float = 64.0,
    easy_margin: bool = False,
) -> torch.Tensor:
    """ArcFace: ``CE(s * cos(theta_j + m [j = y]))`` from cosines ``(N, C)``.

    Deng et al., ArcFace: Additive Angular Margin Loss for Deep Face Recognition,
    CVPR 2019. Where theta + m > pi the target logit is cos(theta) - m sin(m)
    (InsightFace's monotonic fallback); with ``easy_margin`` the margin is
    applied only where cos(theta) > 0.
    """
    target = _additive_angular_margin(_target(cosine, labels), margin, easy_margin)
    return _cross_entropy(scale * _with_target(cosine, labels, target), labels)


def combined_margin_target(cos_t: torch.Tensor, m1: float, m2: float, m3: float) -> torch.Tensor:
    """The combined-margin target logit ``cos(m1 theta + m2) - m3``, monotonic in theta.

    Where ``m1 theta + m2`` passes pi (theta > theta* = (pi - m2) / m1) the
    logit would rise again with the angle. There InsightFace's ArcFace
    fallback is generalised: ``cos(theta) - (pi - theta*) sin(theta*) - m3``
    (the first-order size of the margin at theta*; for m1 = 1 it is exactly
    ArcFace's ``cos(theta) - m2 sin(m2)``), shifted down where needed so that it
    starts no higher than -1 - m3, the value at theta*. The logit therefore
    never increases with theta, and (m1, m2, m3) = (1, m, 0) is ArcFace and
    (1, 0, m) is CosFace exactly.
    """
    sin_t = _sin_from_cos(cos_t)
    with_margin = (_cos_plus(cos_t, m2, sin_t) if m1 == 1.0 else torch.cos(m1 * torch.atan2(sin_t, cos_t) + m2)) - m3
    theta_star = (math.pi - m2) / m1
    if theta_star >= math.pi:
        return with_margin
    penalty = (math.pi - theta_star) * math.sin(theta_star)
    overshoot = max(0.0, math.cos(theta_star) - penalty + 1.0)
    fallback = cos_t - penalty - m3 - overshoot
    return torch.where(cos_t > math.cos(theta_star), with_margin, fallback)


def combined_margin_loss(
    cosine: torch.Tensor,
    labels: torch.Tensor,
    m1: float = 1.0,
    m2: float = 0.3,
    m3: float = 0.2,
    scale: float = 64.0,
) -> torch.Tensor:
    """Combined margin: ``CE(s * logit_j)``, ``logit_y = cos(m1 theta_y + m2) - m3``, others ``cos theta_j``.

    Deng et al., ArcFace, CVPR 2019, section 3.3 (SphereFace m1, ArcFace m2,
    CosFace m3 in one). ``cosine`` ``(N, C)``. See :func:`combined_margin_target`
    for the monotonic fallback.
    """
    target = combined_margin_target(_target(cosine, labels), m1, m2, m3)
    return _cross_entropy(scale * _with_target(cosine, labels, target), labels)


def chebyshev_cos_multiple(cos: torch.Tensor, m: int) -> torch.Tensor:
    """cos(m theta) as the Chebyshev polynomial T_m(cos theta); finite gradient at +-1."""
    previous, current = torch.ones_like(cos), cos
    if m == 0:
        return previous
    for _ in range(m - 1):
        previous, current = current, 2 * cos * current - previous
    return current


def angular_margin_psi(cos: torch.Tensor, m: int) -> torch.Tensor:
    """L-Softmax's psi(theta) = (-1)^k cos(m theta) - 2k, theta in [k pi/m, (k+1) pi/m].

    Monotonically decreasing in theta on [0, pi]; k carries no gradient.
    """
    with torch.no_grad():
        theta = torch.acos(cos.clamp(-1.0, 1.0))
        k = torch.floor(theta / (math.pi / m))
        sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    return sign * chebyshev_cos_multiple(cos, m) - 2.0 * k


def _norms(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each row; its gradient at a zero row is 0."""
    return torch.linalg.vector_norm(x, dim=-1)


def _multiplicative_margin_logits(
    embeddings: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor | None, margin: int, scale: float,
    centre_norms: bool,
) -> torch.Tensor:
    """``s ||x|| ||W_j|| psi_j`` (L-Softmax) or, without ``centre_norms``, ``s ||x|| psi_j`` (SphereFace).

    Without ``labels`` no margin: ``psi_j = cos theta_j`` for every class (what accuracy is measured on).
    """
    with no_autocast(embeddings):
        dtype = torch.promote_types(_compute_dtype(embeddings), _compute_dtype(weight))
        x, w = embeddings.to(dtype), weight.to(dtype)
        angular = cosine_logits(x, w)
        if labels is not None:
            angular = _with_target(angular, labels, angular_margin_psi(_target(angular, labels), margin))
        logits = scale * angular * _norms(x)[:, None]
        return logits * _norms(w)[None, :] if centre_norms else logits


def large_margin_softmax_loss(
    embeddings: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    margin: int = 4,
    scale: float = 1.0,
) -> torch.Tensor:
    """L-Softmax: ``CE(s ||x|| ||W_j|| psi_j)``, ``psi_y = (-1)^k cos(m theta_y) - 2k``, ``psi_j = cos theta_j``.

    Liu et al., Large-Margin Softmax Loss for Convolutional Neural Networks, ICML
    2016, eq. 6-7 (no bias). ``embeddings`` ``(N, D)``, ``weight`` ``(C, D)``.
    The embedding and centre norms stay in the logits: only the angle gets the
    margin. Equals pytorch-metric-learning's LargeMarginSoftmaxLoss.
    """
    logits = _multiplicative_margin_logits(embeddings, weight, labels, margin, scale, centre_norms=True)
    return _cross_entropy(logits, labels)


def sphereface_loss(
    embeddings: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    margin: int = 4,
    scale: float = 1.0,
) -> torch.Tensor:
    """SphereFace (A-Softmax): ``CE(s ||x|| psi_j)`` with unit-norm centres.

    Liu et al., SphereFace: Deep Hypersphere Embedding for Face Recognition, CVPR
    2017. As :func:`large_margin_softmax_loss` but the centres are normalised
    (their norms leave the logits). ``embeddings`` ``(N, D)``, ``weight``
    ``(C, D)``. Equals pytorch-metric-learning's SphereFaceLoss, which like this
    function omits the paper's training-time annealing with plain softmax.
    """
    logits = _multiplicative_margin_logits(embeddings, weight, labels, margin, scale, centre_norms=False)
    return _cross_entropy(logits, labels)


def subcenter_arcface_loss(
    subcenter_cosine: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.5,
    scale: float = 64.0,
) -> torch.Tensor:
    """Sub-center ArcFace: ArcFace on ``cos theta_j = max_k cos(x, W_jk)``.

    Deng et al., Sub-center ArcFace: Boosting Face Recognition by Large-Scale Noisy
    Web Faces, ECCV 2020. ``subcenter_cosine`` ``(N, C, k)``.
    """
    return arcface_loss(subcenter_cosine.max(dim=2).values, labels, margin, scale)  # max: cheap backward


def adacos_next_scale(cosine: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """AdaCos's scale for this batch from the previous one (no gradient).

    ``s_t = log(B_avg) / cos(min(pi/4, theta_med))`` with
    ``B_avg = (1/N) sum_i sum_{j != y_i} exp(s_{t-1} cos theta_ij)`` (computed as
    a logsumexp, so it cannot overflow) and ``theta_med`` the median target
    angle of the batch (torch.median: the lower middle value when N is even).
    """
    with torch.no_grad():
        cosine = upcast(cosine.detach())
        others = (scale * cosine).masked_fill(F.one_hot(labels, cosine.shape[1]).bool(), -math.inf)
        log_b_avg = torch.logsumexp(others.flatten(), dim=0) - math.log(cosine.shape[0])
        theta_med = torch.median(torch.acos(_target(cosine, labels).clamp(-1.0, 1.0)))
        return log_b_avg / torch.cos(theta_med.clamp_max(math.pi / 4))


def adacos_loss(cosine: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """AdaCos: ``CE(s * cos theta_j)`` with the adaptive scale ``s`` (see :func:`adacos_next_scale`).

    Zhang et al., AdaCos: Adaptively Scaling Cosine Logits for Effectively Learning
    Deep Face Representations, CVPR 2019. ``cosine`` ``(N, C)``.
    """
    return _cross_entropy(scale * cosine, labels)


def curricularface_loss(
    cosine: torch.Tensor,
    labels: torch.Tensor,
    t: torch.Tensor | float,
    margin: float = 0.5,
    scale: float = 64.0,
) -> torch.Tensor:
    """CurricularFace: ArcFace target, hard negatives re-weighted by the curriculum ``t``.

    Huang et al., CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
    Recognition, CVPR 2020. With ``phi = cos(theta_y + m)`` (ArcFace's target,
    monotonic fallback included), a non-target cosine is hard when
    ``cos theta_j > cos(theta_y + m)`` and becomes ``cos theta_j (t + cos theta_j)``;
    easy ones stay ``cos theta_j``. Loss ``CE(s * logits)``. ``t`` is the running
    mean of the target cosine (updated by the module). ``cosine`` ``(N, C)``.
    """
    cosine = cosine.clamp(-1.0, 1.0)
    cos_t = _target(cosine, labels)
    hard = cosine > _cos_plus(cos_t, margin).detach()[:, None]
    logits = torch.where(hard, cosine * (t + cosine), cosine)
    logits = _with_target(logits, labels, _additive_angular_margin(cos_t, margin))
    return _cross_entropy(scale * logits, labels)


def adaface_loss(
    cosine: torch.Tensor,
    norms: torch.Tensor,
    labels: torch.Tensor,
    batch_mean: torch.Tensor | float,
    batch_std: torch.Tensor | float,
    margin: float = 0.4,
    h: float = 0.333,
    scale: float = 64.0,
    eps: float = 1e-3,
) -> torch.Tensor:
    """AdaFace: margins that adapt to image quality through the feature norm.

    Kim et al., AdaFace: Quality Adaptive Margin for Face Recognition, CVPR 2022.
    With ``a = clip(||x||, 0.001, 100)`` (no gradient) and
    ``z = clip(h (a - mean) / (std + eps), -1, 1)``, the target logit is
    ``cos(clip(theta_y - m z, eps, pi - eps)) - (m + m z)`` and the others
    ``cos theta_j``, all cosines clamped to ``[-1 + eps, 1 - eps]`` first as in
    the reference code. Loss ``CE(s * logits)``. ``cosine`` ``(N, C)``,
    ``norms`` ``(N,)`` the un-normalised embedding norms; ``batch_mean`` and
    ``batch_std`` their running statistics.
    """
    cosine = cosine.clamp(-1.0 + eps, 1.0 - eps)
    safe_norms = norms.detach().to(cosine.dtype).clamp(0.001, 100.0)
    z = (h * (safe_norms - batch_mean) / (batch_std + eps)).clamp(-1.0, 1.0)
    theta = torch.acos(_target(cosine, labels))  # finite gradient: |cos| <= 1 - eps
    target = torch.cos((theta - margin * z).clamp(eps, math.pi - eps)) - (margin + margin * z)
    return _cross_entropy(scale * _with_target(cosine, labels, target), labels)


def magface_loss(
    cosine: torch.Tensor,
    norms: torch.Tensor,
    labels: torch.Tensor,
    l_a: float = 10.0,
    u_a: float = 110.0,
    l_m: float = 0.45,
    u_m: float = 0.8,
    lambda_g: float = 35.0,
    scale: float = 64.0,
) -> torch.Tensor:
    """MagFace: ArcFace with a margin growing with the feature magnitude, plus its regulariser.

    Meng et al., MagFace: A Universal Representation for Face Recognition and
    Quality Assessment, CVPR 2021. With ``a = clip(||x||, l_a, u_a)``,
    ``m(a) = l_m + (u_m - l_m)(a - l_a)/(u_a - l_a)`` and
    ``g(a) = a / u_a^2 + 1 / a``: ``CE(s * cos(theta_j + m(a) [j = y])) + lambda_g mean g(a)``,
    with ArcFace's monotonic fallback. The gradient flows through ``a`` into
    both terms, as in the reference code. ``cosine`` ``(N, C)``, ``norms``
    ``(N,)`` the un-normalised embedding norms.
    """
    a = norms.to(cosine.dtype).clamp(l_a, u_a)
    margin = l_m + (u_m - l_m) * (a - l_a) / (u_a - l_a)
    target = _additive_angular_margin(_target(cosine, labels), margin)
    classification = _cross_entropy(scale * _with_target(cosine, labels, target), labels)
    regulariser = (a / u_a**2 + 1.0 / a).mean()
    return classification + lambda_g * regulariser


def center_loss(
    logits: torch.Tensor,
    embeddings: torch.Tensor,
    centers: torch.Tensor,
    labels: torch.Tensor,
    lambda_c: float = 0.003,
) -> torch.Tensor:
    """Center loss with softmax: ``mean_i [CE(z_i, y_i) + lambda/2 ||x_i - c_{y_i}||^2]``.

    Wen et al., A Discriminative Feature Learning Approach for Deep Face
    Recognition, ECCV 2016. ``logits`` ``(N, C)`` from the linear classifier,
    ``embeddings`` ``(N, D)``, ``centers`` ``(C, D)``. The centres are learned by
    the optimiser (not the paper's separate alpha update rule).
    """
    with no_autocast(embeddings):
        x = upcast(embeddings)
        spread = (x - centers.to(x.dtype)[labels]).pow(2).sum(dim=1)
        return F.cross_entropy(upcast(logits), labels) + 0.5 * lambda_c * spread.mean()


def multi_margin_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    p: int = 1,
    margin: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-class hinge (Weston-Watkins): ``sum_{j != y} max(0, margin - z_y + z_j)^p / C``.

    Weston & Watkins, Support Vector Machines for Multi-Class Pattern Recognition,
    ESANN 1999. ``logits`` ``(N, C)``. Equals torch.nn.MultiMarginLoss.

    >>> multi_margin_loss(torch.tensor([[0.5, 0.0]]), torch.tensor([0])).item()  # (1 - 0.5 + 0) / 2
    0.25
    """
    # torch's fused kernel is exactly this formula; the docstring example and tests pin it.
    return F.multi_margin_loss(upcast(logits), labels, p=p, margin=margin, reduction=reduction)


def squared_hinge_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """One-vs-rest squared hinge: ``(1/C) sum_j max(0, margin - t_j z_j)^2``, ``t_j = +1 if j = y else -1``.

    Each class is its own binary L2-SVM (the one-vs-rest objective of
    scikit-learn's LinearSVC with ``loss="squared_hinge"``; Keras's
    ``squared_hinge`` on +-1 one-hot targets). Chosen over Crammer-Singer
    because it is continuously differentiable everywhere. ``logits`` ``(N, C)``.

    >>> squared_hinge_loss(torch.tensor([[0.5, -2.0]]), torch.tensor([0])).item()  # ((1 - 0.5)^2 + 0) / 2
    0.125
    """
    z = upcast(logits)
    signs = 2.0 * F.one_hot(labels, z.shape[1]).to(z.dtype) - 1.0
    return reduce((margin - signs * z).clamp_min(0.0).pow(2).mean(dim=1), reduction)


# ---------------------------------------------------------------------------
# modules: hyperparameters, learnable centres and running statistics


def _class_weight(num_classes: int, embedding_dim: int, sub_centres: int | None = None) -> nn.Parameter:
    """One learnable row per class, ``(num_classes, embedding_dim)`` or ``(num_classes, sub_centres,
    embedding_dim)``, Xavier-normal initialised."""
    shape = (num_classes, embedding_dim) if sub_centres is None else (num_classes, sub_centres, embedding_dim)
    weight = nn.Parameter(torch.empty(shape))
    nn.init.xavier_normal_(weight.data.view(-1, embedding_dim))
    return weight


class CosineCentres(nn.Module):
    """Base for losses that compare embeddings with learnable class centres ``weight`` by cosine.

    ``weight`` has shape ``(num_classes, embedding_dim)``, or ``(num_classes,
    sub_centres, embedding_dim)`` when ``sub_centres`` is given. ``scale`` is
    stored as an attribute unless None (a subclass may keep it in a buffer).
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        scale: float | None = 1.0,
        sub_centres: int | None = None,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.weight = _class_weight(num_classes, embedding_dim, sub_centres)
        if scale is not None:
            self.scale = scale

    def cosine(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Cosines to the centres, ``(N, C)`` (``(N, C, k)`` with sub-centres); checks labels first."""
        if labels is not None:
            check_labels(labels, self.num_classes)
        return cosine_logits(embeddings, self.weight)

    def class_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Scaled cosines to the centres: what accuracy and nll are measured on."""
        return self.scale * self.cosine(embeddings)


class NormFaceLoss(CosineCentres):
    """NormFace (Wang et al. 2017): softmax on scaled cosines, centres ``weight`` (C, D)."""

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 20.0):
        super().__init__(num_classes, embedding_dim, scale)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return normface_loss(self.cosine(embeddings, labels), labels, self.scale)


class _MultiplicativeMarginLoss(CosineCentres):
    """L-Softmax and SphereFace: an integer margin multiplies the target angle, centres ``weight`` (C, D).

    The embedding norms stay in the logits; ``centre_norms`` says whether the
    centres' norms do too (L-Softmax) or the centres are unit vectors (SphereFace).
    """

    centre_norms: bool

    def __init__(self, num_classes: int, embedding_dim: int, margin: int = 4, scale: float = 1.0):
        super().__init__(num_classes, embedding_dim, scale)
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_labels(labels, self.num_classes)
        loss = large_margin_softmax_loss if self.centre_norms else sphereface_loss
        return loss(embeddings, self.weight, labels, self.margin, self.scale)

    def class_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The logits without the margin: ``s ||x|| ||W_j|| cos theta_j`` (SphereFace: ``s ||x|| cos theta_j``)."""
        return _multiplicative_margin_logits(embeddings, self.weight, None, self.margin, self.scale, self.centre_norms)


class LargeMarginSoftmaxLoss(_MultiplicativeMarginLoss):
    """L-Softmax (Liu et al. 2016) with integer angular margin and centres ``weight`` (C, D);
    :func:`large_margin_softmax_loss`."""

    centre_norms = True


class SphereFaceLoss(_MultiplicativeMarginLoss):
    """SphereFace / A-Softmax (Liu et al. 2017) with unit centres ``weight`` (C, D); :func:`sphereface_loss`."""

    centre_norms = False


class CosFaceLoss(CosineCentres):
    """CosFace (Wang et al. 2018) with centres ``weight`` of shape (C, D)."""

    def __init__(self, num_classes: int, embedding_dim: int, margin: float = 0.35, scale: float = 64.0):
        super().__init__(num_classes, embedding_dim, scale)
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cosface_loss(self.cosine(embeddings, labels), labels, self.margin, self.scale)


class ArcFaceLoss(CosineCentres):
    """ArcFace (Deng et al. 2019) with centres ``weight`` of shape (C, D)."""

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: float = 0.5,
        scale: float = 64.0,
        easy_margin: bool = False,
    ):
        super().__init__(num_classes, embedding_dim, scale)
        self.margin = margin
        self.easy_margin = easy_margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return arcface_loss(self.cosine(embeddings, labels), labels, self.margin, self.scale, self.easy_margin)


class CombinedMarginLoss(CosineCentres):
    """Combined margin ``cos(m1 theta + m2) - m3`` (InsightFace) with centres ``weight`` (C, D)."""

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        m1: float = 1.0,
        m2: float = 0.3,
        m3: float = 0.2,
        scale: float = 64.0,
    ):
        super().__init__(num_classes, embedding_dim, scale)
        self.m1, self.m2, self.m3 = m1, m2, m3

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = self.cosine(embeddings, labels)
        return combined_margin_loss(cosine, labels, self.m1, self.m2, self.m3, self.scale)


class SubCenterArcFaceLoss(CosineCentres):
    """Sub-center ArcFace (Deng et al. 2020): ``k`` centres per class, ``weight`` (C, k, D)."""

    def __init__(self, num_classes: int, embedding_dim: int, k: int = 3, margin: float = 0.5, scale: float = 64.0):
        super().__init__(num_classes, embedding_dim, scale, sub_centres=k)
        self.k = k
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return subcenter_arcface_loss(self.cosine(embeddings, labels), labels, self.margin, self.scale)

    def class_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Scaled cosine to the nearest sub-centre of each class."""
        return self.scale * self.cosine(embeddings).max(dim=2).values


class AdaCosLoss(CosineCentres):
    """AdaCos (Zhang et al. 2019): the scale adapts each training step; kept in the ``scale`` buffer.

    It starts at ``sqrt(2) log(C - 1)``; with ``dynamic=False`` it stays there
    (fixed AdaCos).
    """

    def __init__(self, num_classes: int, embedding_dim: int, dynamic: bool = True):
        LOSSES.get("adacos").check({"dynamic": dynamic}, {"num_classes": num_classes})
        super().__init__(num_classes, embedding_dim, scale=None)
        self.dynamic = dynamic
        self.register_buffer("scale", torch.tensor(math.sqrt(2.0) * math.log(num_classes - 1)))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = self.cosine(embeddings, labels)
        if self.training and self.dynamic and labels.numel():
            self.scale.copy_(adacos_next_scale(cosine, labels, self.scale.to(cosine.dtype)))
        # a copy, so that a later in-place update cannot invalidate this graph
        return adacos_loss(cosine, labels, self.scale.to(cosine.dtype).clone())

    def class_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        cosine = self.cosine(embeddings)
        return self.scale.to(cosine.dtype) * cosine


class CurricularFaceLoss(CosineCentres):
    """CurricularFace (Huang et al. 2020); the curriculum ``t`` is the running-mean buffer ``t``.

    In training mode, before each loss, ``t <- momentum * mean_i cos theta_{i,y_i} + (1 - momentum) t``.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: float = 0.5,
        scale: float = 64.0,
        momentum: float = 0.01,
    ):
        super().__init__(num_classes, embedding_dim, scale)
        self.margin = margin
        self.momentum = momentum
        self.register_buffer("t", torch.zeros(()))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = self.cosine(embeddings, labels)
        if self.training and labels.numel():
            with torch.no_grad():
                batch = _target(cosine.detach().clamp(-1.0, 1.0), labels).mean()
                self.t.copy_(self.momentum * batch + (1.0 - self.momentum) * self.t)
        return curricularface_loss(cosine, labels, self.t.to(cosine.dtype).clone(), self.margin, self.scale)


class AdaFaceLoss(CosineCentres):
    """AdaFace (Kim et al. 2022); running norm statistics in buffers ``batch_mean`` and ``batch_std``.

    In training mode, before each loss, with ``a = clip(||x||, 0.001, 100)``:
    ``batch_mean <- momentum * mean(a) + (1 - momentum) batch_mean`` and likewise
    ``batch_std`` with the unbiased std of ``a`` (left as is for a batch of one).
    They start at 20 and 100, as in the reference code.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: float = 0.4,
        h: float = 0.333,
        scale: float = 64.0,
        momentum: float = 0.01,
    ):
        super().__init__(num_classes, embedding_dim, scale)
        self.margin = margin
        self.h = h
        self.momentum = momentum
        self.register_buffer("batch_mean", torch.tensor(20.0))
        self.register_buffer("batch_std", torch.tensor(100.0))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = self.cosine(embeddings, labels)
        norms = _norms(upcast(embeddings.detach()))
        if self.training and labels.numel():
            with torch.no_grad():
                safe = norms.clamp(0.001, 100.0)
                self.batch_mean.copy_(self.momentum * safe.mean() + (1.0 - self.momentum) * self.batch_mean)
                if safe.numel() > 1:
                    self.batch_std.copy_(self.momentum * safe.std() + (1.0 - self.momentum) * self.batch_std)
        mean, std = (b.to(cosine.dtype).clone() for b in (self.batch_mean, self.batch_std))
        return adaface_loss(cosine, norms, labels, mean, std, self.margin, self.h, self.scale)


class MagFaceLoss(CosineCentres):
    """MagFace (Meng et al. 2021): magnitude-aware margin and regulariser, centres ``weight`` (C, D)."""

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        l_a: float = 10.0,
        u_a: float = 110.0,
        l_m: float = 0.45,
        u_m: float = 0.8,
        lambda_g: float = 35.0,
        scale: float = 64.0,
    ):
        LOSSES.get("magface").check(dict(l_a=l_a, u_a=u_a, l_m=l_m, u_m=u_m))
        super().__init__(num_classes, embedding_dim, scale)
        self.l_a, self.u_a, self.l_m, self.u_m, self.lambda_g = l_a, u_a, l_m, u_m, lambda_g

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = self.cosine(embeddings, labels)
        with no_autocast(embeddings):
            norms = _norms(upcast(embeddings))
        return magface_loss(
            cosine, norms, labels, self.l_a, self.u_a, self.l_m, self.u_m, self.lambda_g, self.scale
        )


class SoftmaxLoss(nn.Module):
    """Plain softmax on embeddings: a linear classifier ``x W^T + b`` with cross-entropy.

    The baseline every angular-margin paper starts from; ``weight`` (C, D) and
    ``bias`` (C,) are learned with the model. :class:`CenterLoss` adds its
    centre term to this classifier.
    """

    def __init__(self, num_classes: int, embedding_dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.weight = _class_weight(num_classes, embedding_dim)
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_labels(labels, self.num_classes)
        logits = self.class_logits(embeddings)
        return F.cross_entropy(logits, labels).to(embeddings.dtype)

    def class_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The linear classifier's logits ``x W^T + b``."""
        with no_autocast(embeddings):
            x = upcast(embeddings)
            return F.linear(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class CenterLoss(SoftmaxLoss):
    """Center loss (Wen et al. 2016) joint with softmax.

    The softmax classifier is ``weight`` (C, D) and ``bias`` (C,); the learnable
    class centres are ``centers`` (C, D).
    """

    def __init__(self, num_classes: int, embedding_dim: int, lambda_c: float = 0.003):
        super().__init__(num_classes, embedding_dim)
        self.lambda_c = lambda_c
        self.centers = nn.Parameter(torch.randn(num_classes, embedding_dim))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_labels(labels, self.num_classes)
        return center_loss(self.class_logits(embeddings), embeddings, self.centers, labels, self.lambda_c)


class MultiMarginLoss(LogitLoss):
    """Multi-class hinge on logits (N, C); torch.nn.MultiMarginLoss without class weights."""

    name = "multi_margin"

    def __init__(self, num_classes: int | None = None, p: int = 1, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(num_classes, reduction, p=p, margin=margin)
        self.p = p
        self.margin = margin

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return multi_margin_loss(logits, labels, self.p, self.margin, self.reduction)


class SquaredHingeLoss(LogitLoss):
    """One-vs-rest squared hinge on logits (N, C)."""

    name = "squared_hinge"

    def __init__(self, num_classes: int | None = None, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(num_classes, reduction, margin=margin)
        self.margin = margin

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check(logits, labels)
        return squared_hinge_loss(logits, labels, self.margin, self.reduction)
