"""Metric-learning losses on a batch of embeddings ``(N, D)`` with integer labels ``(N,)``.

Pair and triplet losses compare every sample of the batch with every other one
through one pairwise matrix and boolean masks; proxy losses compare samples with
learnable class proxies held as ``weight`` of shape ``(num_classes,
embedding_dim)``. Every loss equals pytorch-metric-learning 2.9 with its default
distance, reducer and hyperparameters:

- distances are Euclidean between L2-normalised embeddings (PML ``LpDistance``)
  or cosine similarities (PML ``CosineSimilarity``);
- "mean over the non-zero terms" is PML's ``AvgNonZeroReducer``: the mean over
  the terms that are strictly positive, zero when none is.

A batch with nothing to score (no positive pair for the losses built on them, no
valid triplet) gives a zero that is still connected to the graph, never NaN;
contrastive and multi-similarity still score the negative pairs, as PML does. Everything is computed in float32 or
wider, also under autocast. Metadata and bounds: ``losszoo/catalog/metric_learning.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.losses._common import check_labels, no_autocast, upcast

TRIPLET_MINING = ("all", "hard", "semihard")


# -- shared pieces -------------------------------------------------------------------------------------------------


def _common_wide(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``y`` (embeddings and proxies) in one dtype, float32 or wider."""
    dtype = torch.promote_types(upcast(x).dtype, upcast(y).dtype)
    return x.to(dtype), y.to(dtype)


def _pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positive, negative)`` boolean ``(N, N)``: same label without the diagonal, and different label."""
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return positive, ~same


def cosine_matrix(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine similarity of every row of ``x`` with every row of ``y`` (default ``x``); zero rows give 0."""
    x = F.normalize(x, dim=1)
    y = x if y is None else F.normalize(y, dim=1)
    return x @ y.T


def squared_distance_matrix(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Squared Euclidean distance between L2-normalised rows, ``|x|^2 + |y|^2 - 2 x.y`` clamped at 0."""
    x = F.normalize(x, dim=1)
    y = x if y is None else F.normalize(y, dim=1)
    return (x.pow(2).sum(1)[:, None] + y.pow(2).sum(1)[None, :] - 2.0 * (x @ y.T)).clamp_min(0.0)


def distance_matrix(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between the L2-normalised rows of ``x``, ``(N, N)`` (``torch.cdist``, as PML).

    ``torch.cdist`` gives a zero gradient where a distance is 0 (the diagonal,
    identical or zero embeddings), not the infinite slope of sqrt at 0.
    """
    x = F.normalize(x, dim=1)
    return torch.cdist(x, x)


def masked_logsumexp(x: torch.Tensor, mask: torch.Tensor, dim: int = 1, add_one: bool = False) -> torch.Tensor:
    """``log sum_{mask} exp(x)`` along ``dim`` (``log(1 + sum ...)`` with ``add_one``); 0 where the mask is empty.

    Masked entries are filled with the most negative finite value, not -inf, so an
    empty row has a finite logsumexp and a finite (then discarded) gradient.
    """
    out = torch.logsumexp(x.masked_fill(~mask, torch.finfo(x.dtype).min), dim=dim)
    if add_one:
        # log(1 + sum exp x) = logaddexp(log sum exp x, 0), which is exactly 0 for an empty row.
        return torch.logaddexp(out, torch.zeros_like(out))
    return torch.where(mask.any(dim), out, torch.zeros_like(out))


def mean_of_positive(values: torch.Tensor) -> torch.Tensor:
    """Mean over the positive entries of non-negative ``values`` (PML ``AvgNonZeroReducer``).

    0, still connected to the graph, when no entry is positive.
    """
    return values.sum() / (values > 0).sum().clamp_min(1)


# -- pair and triplet losses ---------------------------------------------------------------------------------------


def contrastive_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, pos_margin: float = 0.0, neg_margin: float = 1.0
) -> torch.Tensor:
    """Contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006), as PML ``ContrastiveLoss``.

    With ``d`` the Euclidean distance between L2-normalised embeddings ``(N, D)``::

        mean+_{(i,j) positive} [d_ij - pos_margin]_+  +  mean+_{(i,j) negative} [neg_margin - d_ij]_+

    over ordered pairs ``i != j``, where ``mean+`` is the mean over the non-zero terms.

    >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    >>> round(contrastive_loss(x, torch.tensor([0, 0, 1])).item(), 4)
    0.0996
    """
    with no_autocast(embeddings):
        d = distance_matrix(upcast(embeddings))
        positive, negative = _pair_masks(labels)
        zero = torch.zeros_like(d)
        pos = torch.where(positive, F.relu(d - pos_margin), zero)
        neg = torch.where(negative, F.relu(neg_margin - d), zero)
        return mean_of_positive(pos) + mean_of_positive(neg)


def triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.05, mining: str = "all"
) -> torch.Tensor:
    """Triplet margin loss (Weinberger & Saul 2009; Schroff et al., FaceNet, CVPR 2015), as PML ``TripletMarginLoss``.

    With ``d`` the Euclidean distance between L2-normalised embeddings ``(N, D)``,
    each triplet (anchor a, positive p, negative n) costs ``[d_ap - d_an + margin]_+``
    and the loss is the mean over the non-zero costs of the triplets ``mining`` picks:

    - ``"all"``: every triplet of the batch (PML's default ``triplets_per_anchor="all"``);
    - ``"hard"``: per anchor, its farthest positive and nearest negative (batch hard,
      Hermans et al. 2017; PML ``BatchHardMiner``);
    - ``"semihard"``: every triplet with ``d_ap < d_an`` (and, being non-zero,
      ``d_an < d_ap + margin``); PML ``TripletMarginMiner(margin, "semihard")``.
    """
    if mining not in TRIPLET_MINING:
        raise ValueError(f"mining must be one of {', '.join(TRIPLET_MINING)}, got {mining!r}")
    with no_autocast(embeddings):
        d = distance_matrix(upcast(embeddings))
        positive, negative = _pair_masks(labels)
        if mining == "hard":
            valid = positive.any(1) & negative.any(1)
            hardest_pos = torch.where(positive, d, torch.full_like(d, -math.inf)).amax(1)
            hardest_neg = torch.where(negative, d, torch.full_like(d, math.inf)).amin(1)
            gap = torch.where(valid, hardest_pos - hardest_neg, torch.zeros_like(hardest_pos))
            costs = torch.where(valid, F.relu(gap + margin), torch.zeros_like(gap))
            return mean_of_positive(costs)
        # One row per (anchor, positive) pair and one column per candidate negative.
        anchor, pos_index = positive.nonzero(as_tuple=True)
        d_ap = d[anchor, pos_index][:, None]
        d_an = d[anchor]
        valid = negative[anchor]
        if mining == "semihard":
            valid = valid & (d_an > d_ap)
        costs = torch.where(valid, F.relu(d_ap - d_an + margin), torch.zeros_like(d_an))
        return mean_of_positive(costs)


def multi_similarity_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5
) -> torch.Tensor:
    """Multi-similarity loss (Wang et al., CVPR 2019), as PML ``MultiSimilarityLoss``.

    With ``S`` the cosine similarity of the embeddings ``(N, D)``, the mean over anchors i of::

        1/alpha log(1 + sum_{j in P_i} exp(-alpha (S_ij - base)))
      + 1/beta  log(1 + sum_{k in N_i} exp( beta (S_ik - base)))

    (PML applies no pair mining inside the loss; its ``MultiSimilarityMiner`` is separate.)
    """
    with no_autocast(embeddings):
        s = cosine_matrix(upcast(embeddings))
        positive, negative = _pair_masks(labels)
        pos = masked_logsumexp(-alpha * (s - base), positive, add_one=True) / alpha
        neg = masked_logsumexp(beta * (s - base), negative, add_one=True) / beta
        return (pos + neg).mean()


def circle_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.4, gamma: float = 80.0
) -> torch.Tensor:
    """Circle loss (Sun et al., CVPR 2020) for pair labels, as PML ``CircleLoss``.

    With cosine similarities ``s``, optima ``O_p = 1 + m``, ``O_n = -m`` and thresholds
    ``Delta_p = 1 - m``, ``Delta_n = m``, per anchor i with positives and negatives::

        softplus( logsumexp_{j in P_i} -gamma a_p (s_ij - Delta_p) + logsumexp_{k in N_i} gamma a_n (s_ik - Delta_n) )

    with ``a_p = [O_p - s_ij]_+`` and ``a_n = [s_ik - O_n]_+`` held constant in the
    gradient, as in the paper. Mean over the non-zero anchor losses.
    """
    with no_autocast(embeddings):
        s = cosine_matrix(upcast(embeddings))
        positive, negative = _pair_masks(labels)
        weight_pos = F.relu(1.0 + margin - s.detach())
        weight_neg = F.relu(s.detach() + margin)
        logit_pos = -gamma * weight_pos * (s - (1.0 - margin))
        logit_neg = gamma * weight_neg * (s - margin)
        per_anchor = F.softplus(masked_logsumexp(logit_pos, positive) + masked_logsumexp(logit_neg, negative))
        valid = positive.any(1) & negative.any(1)
        return mean_of_positive(torch.where(valid, per_anchor, torch.zeros_like(per_anchor)))


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., NeurIPS 2020), as PML ``SupConLoss``.

    With cosine similarities ``s`` and ``A_i`` every other sample of the batch, per anchor i::

        -1/|P_i| sum_{p in P_i} log( exp(s_ip / t) / sum_{a in A_i} exp(s_ia / t) )

    and the mean over the non-zero anchor losses; zero when the batch has no
    positive pair or no negative pair.
    """
    with no_autocast(embeddings):
        s = cosine_matrix(upcast(embeddings)) / temperature
        positive, negative = _pair_masks(labels)
        log_prob = s - masked_logsumexp(s, positive | negative)[:, None]
        count = positive.sum(1)
        per_anchor = -torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(1) / count.clamp_min(1)
        usable = positive.any() & negative.any()
        return mean_of_positive(torch.where(usable, per_anchor, torch.zeros_like(per_anchor)))


def _first_pair_per_label(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each label with two or more samples: its first and second sample, in label order."""
    sorted_labels, order = torch.sort(labels, stable=True)
    starts = torch.ones_like(sorted_labels, dtype=torch.bool)
    starts[1:] = sorted_labels[1:] != sorted_labels[:-1]
    second = torch.zeros_like(starts)
    second[1:] = starts[:-1] & ~starts[1:]
    at = second.nonzero(as_tuple=True)[0]
    return order[at - 1], order[at]


def npairs_loss(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """N-pair loss (Sohn, NeurIPS 2016), as PML ``NPairsLoss``.

    One (anchor, positive) pair per label that has two samples: the first two
    samples of that label. With ``S`` the cosine similarity between the K anchors
    and the K positives (PML's default ``DotProductSimilarity`` normalises the
    embeddings), the loss is ``CE(S, arange(K))``, the mean over the K anchors.
    """
    with no_autocast(embeddings):
        x = upcast(embeddings)
        anchor, pos = _first_pair_per_label(labels)
        s = cosine_matrix(x[anchor], x[pos])
        targets = torch.arange(len(anchor), device=x.device)
        # A sum over no pairs is a zero still connected to the embeddings; a mean would be NaN.
        return F.cross_entropy(s, targets, reduction="sum") / max(len(anchor), 1)


def lifted_structure_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, pos_margin: float = 0.0, neg_margin: float = 1.0
) -> torch.Tensor:
    """Lifted structured loss (Oh Song et al., CVPR 2016), as PML ``LiftedStructureLoss``.

    With ``d`` the Euclidean distance between L2-normalised embeddings, for every
    ordered positive pair (i, j)::

        J_ij = log( sum_{k in N_i} exp(neg_margin - d_ik) + sum_{l in N_j} exp(neg_margin - d_jl) ) + d_ij - pos_margin

    and the loss is ``mean_{(i,j)} [J_ij]_+^2 / 2``, i.e. the paper's
    ``1 / (2|P|) sum [J_ij]_+^2`` over unordered pairs. The log of the two sums is
    ``logaddexp`` of one logsumexp per anchor, so nothing larger than ``(N, N)`` is built.
    """
    with no_autocast(embeddings):
        d = distance_matrix(upcast(embeddings))
        positive, negative = _pair_masks(labels)
        per_anchor = masked_logsumexp(neg_margin - d, negative)
        j = torch.logaddexp(per_anchor[:, None], per_anchor[None, :]) + d - pos_margin
        usable = positive & negative.any()
        costs = torch.where(usable, F.relu(j).pow(2) / 2, torch.zeros_like(j))
        return costs.sum() / usable.sum().clamp_min(1)


# -- proxy losses --------------------------------------------------------------------------------------------------


def proxy_anchor_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, proxies: torch.Tensor, margin: float = 0.1, alpha: float = 32.0
) -> torch.Tensor:
    """Proxy-Anchor loss (Kim et al., CVPR 2020), as PML ``ProxyAnchorLoss``.

    With ``s`` the cosine between embeddings ``(N, D)`` and proxies ``(C, D)``, ``P+``
    the proxies of classes in the batch and ``X_c+`` / ``X_c-`` the samples of / not of class c::

        1/|P+| sum_{c in P+} log(1 + sum_{x in X_c+} exp(-alpha (s(x, c) - margin)))
      + 1/C    sum_{c}       log(1 + sum_{x in X_c-} exp( alpha (s(x, c) + margin)))
    """
    with no_autocast(embeddings):
        s = cosine_matrix(*_common_wide(embeddings, proxies))
        own = F.one_hot(labels, s.shape[1]).to(torch.bool)
        pos = masked_logsumexp(-alpha * (s - margin), own, dim=0, add_one=True)
        neg = masked_logsumexp(alpha * (s + margin), ~own, dim=0, add_one=True)
        with_positives = own.any(0).sum().clamp_min(1)
        return pos.sum() / with_positives + neg.sum() / s.shape[1]


def proxy_nca_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, proxies: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """Proxy-NCA loss (Movshovitz-Attias et al., ICCV 2017), as PML ``ProxyNCALoss``.

    With ``d^2`` the squared Euclidean distance between L2-normalised embeddings
    ``(N, D)`` and proxies ``(C, D)``, the mean over samples of ``CE(-scale d^2, y)``.
    PML forms the softmax and drops samples whose target probability underflows to
    0; the log-softmax here keeps them, with their large but finite cost.
    """
    with no_autocast(embeddings):
        d2 = squared_distance_matrix(*_common_wide(embeddings, proxies))
        return F.cross_entropy(-scale * d2, labels)


# -- modules -------------------------------------------------------------------------------------------------------


class PairLoss(nn.Module):
    """Base for losses on the pairs of a batch: checks labels, then calls ``loss_fn``."""

    def __init__(self, num_classes: int | None = None):
        super().__init__()
        self.num_classes = num_classes  # optional: pair losses need no class count, labels only compare

    def _check(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"expected embeddings (N, D) and labels (N,), got {tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        check_labels(labels, self.num_classes)


class ContrastiveLoss(PairLoss):
    """Contrastive loss on all pairs of the batch (Hadsell et al. 2006)."""

    def __init__(self, num_classes: int | None = None, pos_margin: float = 0.0, neg_margin: float = 1.0):
        super().__init__(num_classes)
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(embeddings, labels)
        return contrastive_loss(embeddings, labels, self.pos_margin, self.neg_margin)


class TripletLoss(PairLoss):
    """Triplet margin loss with in-batch mining: all, hard or semihard triplets."""

    def __init__(self, num_classes: int | None = None, margin: float = 0.05, mining: str = "all"):
        super().__init__(num_classes)
        self.margin = margin
        self.mining = mining

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(embeddings, labels)
        return triplet_loss(embeddings, labels, self.margin, self.mining)


class MultiSimilarityLoss(PairLoss):
    """Multi-similarity loss (Wang et al. 2019)."""

    def __init__(self, num_classes: int | None = None, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5):
        super().__init__(num_classes)
        self.alpha = alpha
        self.beta = beta
        self.base = base

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(embeddings, labels)
        return multi_similarity_loss(embeddings, labels, self.alpha, self.beta, self.base)


class CircleLoss(PairLoss):
    """Circle loss for pair labels (Sun et al. 2020)."""

    def __init__(self, num_classes: int | None = None, margin: float = 0.4, gamma: float = 80.0):
        super().__init__(num_classes)
        self.margin = margin
        self.gamma = gamma

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(embeddings, labels)
        return circle_loss(embeddings, labels, self.margin, self.gamma)


class SupConLoss(PairLoss):
    """Supervised contrastive loss (Khosla et al. 2020)."""

    def __init__(self, num_classes: int | None = None, temperature: float = 0.1):
        super().__init__(num_classes)
        self.temperature = temperature

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(embeddings, labels)
        return supcon_loss(embeddings, labels, self.temperature)


class NPairsLoss(PairLoss):
    """N-pair loss (Sohn 2016) on the first two samples of each label."""

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(embeddings, labels)
        return npairs_loss(embeddings, labels)


class LiftedStructureLoss(PairLoss):
    """Lifted structured loss (Oh Song et al. 2016)."""

    def __init__(self, num_classes: int | None = None, pos_margin: float = 0.0, neg_margin: float = 1.0):
        super().__init__(num_classes)
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(embeddings, labels)
        return lifted_structure_loss(embeddings, labels, self.pos_margin, self.neg_margin)


class ProxyLoss(PairLoss):
    """Base for losses with one learnable proxy per class, ``weight`` of shape ``(num_classes, embedding_dim)``."""

    def __init__(self, num_classes: int, embedding_dim: int):
        super().__init__(num_classes)
        self.embedding_dim = embedding_dim
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))

    def _check(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        super()._check(embeddings, labels)
        if embeddings.shape[1] != self.embedding_dim:
            raise ValueError(f"embeddings have {embeddings.shape[1]} dimensions, the proxies {self.embedding_dim}")

    def class_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine to each proxy: what accuracy and nll are measured on."""
        with no_autocast(embeddings):
            return cosine_matrix(*_common_wide(embeddings, self.weight))


class ProxyAnchorLoss(ProxyLoss):
    """Proxy-Anchor loss (Kim et al. 2020); proxies initialised as PML does (Kaiming normal, fan out)."""

    def __init__(self, num_classes: int, embedding_dim: int, margin: float = 0.1, alpha: float = 32.0):
        super().__init__(num_classes, embedding_dim)
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.margin = margin
        self.alpha = alpha

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(embeddings, labels)
        return proxy_anchor_loss(embeddings, labels, self.weight, self.margin, self.alpha)


class ProxyNCALoss(ProxyLoss):
    """Proxy-NCA loss (Movshovitz-Attias et al. 2017); proxies initialised as PML does (standard normal)."""

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 1.0):
        super().__init__(num_classes, embedding_dim)
        nn.init.normal_(self.weight)
        self.scale = scale

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(embeddings, labels)
        return proxy_nca_loss(embeddings, labels, self.weight, self.scale)

    def class_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Negative scaled squared distance to each proxy, the logits of the loss itself."""
        with no_autocast(embeddings):
            return -self.scale * squared_distance_matrix(*_common_wide(embeddings, self.weight))
