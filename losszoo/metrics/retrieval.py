"""Retrieval and verification metrics on embeddings ``(N, D)`` and integer labels ``(N,)``.

Retrieval: each embedding is a query against all the others (itself excluded),
ranked by cosine similarity. ``precision_at_1``, ``r_precision`` and
``map_at_r`` equal pytorch-metric-learning's ``AccuracyCalculator`` with
``knn_func=CustomKNN(CosineSimilarity())`` and the embeddings given once as
query and reference (``ref_includes_query=True``). Queries whose class has no
other member are left out of the mean, as there; if none is left the value is
nan. For a query of class y, ``R`` is the number of other embeddings of class
y; PML looks ``k = max R`` neighbours deep (``k="max_bin_count"`` or the whole
set), so ``R`` is never capped.

Queries are processed in chunks of rows so that no ``N x N`` similarity matrix
is ever built: memory is ``chunk_size x N`` in the input dtype (float32 for
half-precision inputs).

Verification (LFW protocol, Huang et al. 2007): pairs of embeddings scored by
cosine similarity, "same class" predicted above a threshold.

Metadata: ``losszoo/catalog/metrics.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Similarity entries per chunk of queries (chunk_size x N); 2**23 float32 is 32 MiB.
CHUNK_ELEMENTS = 2**23
#: Above this many pairs, verification scores a seeded uniform sample of this many pairs.
MAX_PAIRS = 100_000


def _check(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    if embeddings.ndim != 2 or labels.ndim != 1 or embeddings.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected embeddings (N, D) and labels (N,), got {tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")


def _unit(embeddings: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit norm (zero rows stay zero), in float32 or float64."""
    x = embeddings if embeddings.dtype == torch.float64 else embeddings.float()
    return F.normalize(x, dim=1)


def _default_chunk(n: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(n, 1))


def retrieval_scores(
    embeddings: torch.Tensor, labels: torch.Tensor, chunk_size: int | None = None, *, first_only: bool = False
) -> dict[str, float]:
    """``precision_at_1``, ``r_precision`` and ``map_at_r`` in one pass over the queries.

    For a query q with ``R_q`` other embeddings of its class and ``rel_q(i)`` = 1
    when its i-th nearest neighbour shares its class:

    - ``precision_at_1 = mean_q rel_q(1)``
    - ``r_precision = mean_q 1/R_q sum_{i<=R_q} rel_q(i)``
    - ``map_at_r = mean_q 1/R_q sum_{i<=R_q} rel_q(i) * (sum_{j<=i} rel_q(j)) / i``
      (Musgrave et al., A Metric Learning Reality Check, ECCV 2020)

    ``first_only=True`` computes only ``precision_at_1`` (nearest neighbour by
    max, no top-k); the other two are then nan. ``chunk_size`` queries are
    ranked at a time (default: ``CHUNK_ELEMENTS // N``).

    >>> emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> retrieval_scores(emb, torch.tensor([0, 0, 1, 1]))
    {'precision_at_1': 1.0, 'r_precision': 1.0, 'map_at_r': 1.0}
    """
    _check(embeddings, labels)
    nan = {"precision_at_1": math.nan, "r_precision": math.nan, "map_at_r": math.nan}
    n = labels.shape[0]
    if n < 2:
        return nan
    _, class_of, class_size = torch.unique(labels, return_inverse=True, return_counts=True)
    r = class_size[class_of] - 1  # same-class references of each query
    kept = r > 0
    if not kept.any():
        return nan
    k = 1 if first_only else int(r.max().item())
    chunk_size = chunk_size or _default_chunk(n)
    unit = _unit(embeddings)
    device = unit.device
    ranks = torch.arange(1, k + 1, device=device, dtype=torch.float64)
    hit_at_1 = torch.empty(n, dtype=torch.float64, device=device)
    hits_in_r = torch.empty(n, dtype=torch.float64, device=device)
    precision_sum = torch.empty(n, dtype=torch.float64, device=device)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        similarity = unit[start:stop] @ unit.T
        similarity[:, start:stop].fill_diagonal_(-math.inf)  # the query itself is not a reference
        neighbours = similarity.argmax(dim=1, keepdim=True) if first_only else similarity.topk(k, dim=1).indices
        del similarity
        relevant = labels[neighbours] == labels[start:stop, None]
        hit_at_1[start:stop] = relevant[:, 0]
        if first_only:
            continue
        relevant &= ranks <= r[start:stop, None]  # only the first R_q neighbours count
        hits = relevant.cumsum(dim=1)
        hits_in_r[start:stop] = hits[:, -1]
        precision_sum[start:stop] = (hits * relevant / ranks).sum(dim=1)
    r_kept = r[kept].double()
    return {
        "precision_at_1": hit_at_1[kept].mean().item(),
        "r_precision": math.nan if first_only else (hits_in_r[kept] / r_kept).mean().item(),
        "map_at_r": math.nan if first_only else (precision_sum[kept] / r_kept).mean().item(),
    }


def precision_at_1(embeddings: torch.Tensor, labels: torch.Tensor, chunk_size: int | None = None) -> float:
    """Share of queries whose nearest other embedding (cosine) shares its class.

    >>> precision_at_1(torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]]), torch.tensor([0, 0, 1]))
    1.0
    """
    return retrieval_scores(embeddings, labels, chunk_size, first_only=True)["precision_at_1"]


def r_precision(embeddings: torch.Tensor, labels: torch.Tensor, chunk_size: int | None = None) -> float:
    """Mean over queries of the share of same-class embeddings among its R nearest.

    >>> emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    >>> r_precision(emb, torch.tensor([0, 0, 1, 1]))  # every nearest neighbour is of the other class
    0.0
    """
    return retrieval_scores(embeddings, labels, chunk_size)["r_precision"]


def map_at_r(embeddings: torch.Tensor, labels: torch.Tensor, chunk_size: int | None = None) -> float:
    """Mean average precision at R (Musgrave et al., ECCV 2020).

    >>> emb = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.95, 0.3]])
    >>> map_at_r(emb, torch.tensor([0, 1, 0, 0]))  # AP 1/2, 1/4, 1/2; the lone class-1 query is left out
    0.4166666666666667
    """
    return retrieval_scores(embeddings, labels, chunk_size)["map_at_r"]


# Verification ------------------------------------------------------------------------------------------


def verification_pairs(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
    chunk_size: int = 2**16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities (float64) of pairs of embeddings and whether each pair shares a class.

    All ``N (N - 1) / 2`` pairs ``i < j`` in row-major order when they are at most
    ``max_pairs``; otherwise ``max_pairs`` pairs ``i != j`` drawn uniformly with
    replacement by a generator seeded with ``seed``.
    """
    _check(embeddings, labels)
    n = labels.shape[0]
    device = embeddings.device
    unit = _unit(embeddings)
    if n * (n - 1) // 2 <= max_pairs:  # then n x n is at most about 2 * max_pairs entries
        first, second = torch.triu_indices(n, n, offset=1, device=device)
        return (unit @ unit.T)[first, second].double(), labels[first] == labels[second]
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, n, (max_pairs,), generator=generator)
    second = torch.randint(0, n - 1, (max_pairs,), generator=generator)
    second += second >= first
    first, second = first.to(device), second.to(device)
    scores = torch.empty(max_pairs, dtype=torch.float64, device=device)
    for start in range(0, max_pairs, chunk_size):  # gathers chunk_size x D rows at a time
        a, b = first[start : start + chunk_size], second[start : start + chunk_size]
        scores[start : start + chunk_size] = torch.einsum("pd,pd->p", unit.index_select(0, a), unit.index_select(0, b))
    return scores, labels[first] == labels[second]


def balance_pairs(scores: torch.Tensor, same: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """As many different-class pairs as same-class ones (LFW's design), drawn by a seeded
    generator, the pairs' order kept. Without it, with C classes about (C-1)/C of all pairs
    are negatives and "never the same" already scores that much."""
    positives, negatives = torch.nonzero(same).squeeze(1), torch.nonzero(~same).squeeze(1)
    keep = min(len(positives), len(negatives))
    generator = torch.Generator().manual_seed(seed)

    def draw(index: torch.Tensor) -> torch.Tensor:
        return index[torch.randperm(len(index), generator=generator)[:keep].to(index.device)]

    chosen = torch.cat([draw(positives), draw(negatives)]).sort().values
    return scores[chosen], same[chosen]


def fold_ids(num_pairs: int, folds: int = 10, seed: int = 0) -> torch.Tensor:
    """Fold of each pair: a seeded random permutation cut into ``folds`` parts of near-equal size."""
    order = torch.randperm(num_pairs, generator=torch.Generator().manual_seed(seed))
    ids = torch.empty(num_pairs, dtype=torch.long)
    ids[order] = torch.arange(num_pairs) * folds // max(num_pairs, 1)
    return ids


def verification_accuracy(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    folds: int = 10,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
    balanced: bool = True,
) -> float:
    """Pair verification accuracy with a threshold chosen by cross-validation (LFW protocol).

    Pairs come from :func:`verification_pairs`, balanced to as many negatives
    as positives (:func:`balance_pairs`, as LFW's pairs are) unless
    ``balanced=False``, and are split into ``folds`` folds
    (:func:`fold_ids`). For each fold, the threshold t on the cosine similarity
    that classifies the other folds best ("same" when ``s > t``; candidates are
    the midpoints between consecutive distinct scores and +-inf; the lowest
    wins a tie) is applied to the held-out fold; the value is the mean
    held-out accuracy, so 0.5 is chance on balanced pairs.

    >>> emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> verification_accuracy(emb, torch.tensor([0, 0, 1, 1]), folds=2)
    1.0
    """
    scores, same = verification_pairs(embeddings, labels, max_pairs, seed)
    if balanced:
        scores, same = balance_pairs(scores, same, seed)
    if scores.numel() == 0:
        return math.nan
    fold = fold_ids(scores.numel(), folds, seed).to(scores.device)
    # Sort once: a boolean mask keeps the order, so every training split is already sorted.
    scores, order = scores.sort()
    same, fold = same[order], fold[order]
    accuracies = []
    for held_out in range(folds):
        test = fold == held_out
        if not test.any():
            continue
        train_scores, train_same = scores[~test], same[~test]
        n = train_scores.numel()
        zero = torch.zeros(1, dtype=torch.long, device=scores.device)
        # Cut c accepts train_scores[c:]; correct = negatives below the cut + positives from it on.
        negatives_below = torch.cat([zero, (~train_same).cumsum(0)])
        positives_below = torch.cat([zero, train_same.cumsum(0)])
        correct = negatives_below + positives_below[-1] - positives_below
        valid = torch.ones(n + 1, dtype=torch.bool, device=scores.device)
        valid[1:n] = train_scores[1:] > train_scores[:-1]  # never cut between equal scores
        cut = int(torch.where(valid, correct, -1).argmax().item())  # first maximum: lowest threshold
        if cut == 0:
            threshold = -math.inf
        elif cut == n:
            threshold = math.inf
        else:
            threshold = (train_scores[cut - 1].item() + train_scores[cut].item()) / 2
        accuracies.append(((scores[test] > threshold) == same[test]).double().mean().item())
    return sum(accuracies) / len(accuracies)


def tar_at_far(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    far: float = 1e-2,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
) -> float:
    """True accept rate at the lowest threshold whose false accept rate is at most ``far``.

    Over the pairs of :func:`verification_pairs`: ``TAR = P(s > t | same)`` with
    ``t`` the smallest threshold such that ``P(s > t | different) <= far``, i.e.
    the ``floor(far * n_different) + 1``-th largest different-class score. nan
    without pairs of both kinds.

    >>> emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> tar_at_far(emb, torch.tensor([0, 0, 1, 1]))
    1.0
    """
    scores, same = verification_pairs(embeddings, labels, max_pairs, seed)
    positives, negatives = scores[same], scores[~same]
    if positives.numel() == 0 or negatives.numel() == 0:
        return math.nan
    allowed = math.floor(round(far * negatives.numel(), 9))  # false accepts allowed
    if allowed >= negatives.numel():
        return 1.0
    threshold = negatives.topk(allowed + 1).values[-1]
    return (positives > threshold).double().mean().item()
