"""Multi-label metrics on logits ``(N, L)`` and 0/1 targets ``(N, L)``, and ranking metrics of a
two-class classifier.

Metadata: ``losszoo/catalog/multilabel.py``. Values equal scikit-learn's on
``sigmoid(logits)``: ``roc_auc_score`` and ``average_precision_score``
(``average="macro"``), ``f1_score(average="macro", zero_division=0)`` and
``hamming_loss`` on ``sigmoid(logits) > threshold``. Where scikit-learn raises
or warns for a label with a single class, we skip that label instead (said per
metric). Probabilities are computed in float64, so a threshold compares
exactly as scikit-learn does on float64 probabilities.

``f1_best`` needs two sets: :func:`best_threshold` chooses one threshold for
all labels on the validation set, and :func:`f1_at` applies it to the test set;
:func:`f1_best` on its own is the (optimistic) F1 at the best threshold of the
same set, which is what the validation set reports.
"""

from __future__ import annotations

import torch

from losszoo.metrics.classification import check_class_labels


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.ndim != 2 or targets.shape != logits.shape:
        raise ValueError(
            f"expected logits (N, L) and 0/1 targets (N, L), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits.double())


def _positives(targets: torch.Tensor) -> torch.Tensor:
    return targets > 0.5


# --------------------------------------------------------------------------- one score column


def _binary_auroc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney U) formula; ties get their mean rank.

    NaN when ``positive`` holds one class only.
    """
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ordered, order = torch.sort(scores.double())
    _, group, counts = torch.unique_consecutive(ordered, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()  # 1-based rank of each group's last member
    ranks = (last - (counts.double() - 1) / 2)[group]
    rank_sum = ranks[positive[order]].sum().item()
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _binary_average_precision(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """``sum_k (R_k - R_{k-1}) P_k`` over the distinct scores, highest first (no interpolation).

    NaN when ``positive`` holds no positive.
    """
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
    ordered, order = torch.sort(scores.double(), descending=True)
    hits = positive[order].double().cumsum(0)
    # Tied scores form one threshold: evaluate at the last member of each run.
    last = torch.ones_like(ordered, dtype=torch.bool)
    last[:-1] = ordered[1:] != ordered[:-1]
    tp = hits[last]
    predicted = torch.nonzero(last).squeeze(1).double() + 1
    recall = tp / n_pos
    gained = torch.diff(recall, prepend=recall.new_zeros(1))
    return (gained * tp / predicted).sum().item()


def _macro(values: list[float]) -> float:
    kept = [v for v in values if v == v]  # NaN marks a label skipped
    return sum(kept) / len(kept) if kept else float("nan")


# --------------------------------------------------------------------------- multi-label


def auroc(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Macro ROC AUC: the mean over labels of ``P(score of a positive > score of a negative)``, ties 1/2.

    Labels whose targets hold one class only are skipped (scikit-learn's
    ``roc_auc_score`` raises for them); NaN when every label is skipped.

    >>> auroc(torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
    1.0
    """
    _check(logits, targets)
    positive = _positives(targets)
    return _macro([_binary_auroc(logits[:, k], positive[:, k]) for k in range(logits.shape[1])])


def average_precision(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Macro average precision (mAP): the mean over labels of the area under the precision-recall steps.

    Labels without a positive are skipped (scikit-learn counts them as 0 and
    warns); NaN when every label is skipped.

    >>> average_precision(torch.tensor([[2.0], [1.0], [0.0]]), torch.tensor([[1.0], [0.0], [1.0]]))  # (1 + 2/3) / 2
    0.8333333333333333
    """
    _check(logits, targets)
    positive = _positives(targets)
    return _macro([_binary_average_precision(logits[:, k], positive[:, k]) for k in range(logits.shape[1])])


def f1_at(logits: torch.Tensor, targets: torch.Tensor, threshold: float) -> float:
    """Macro F1 of the predictions ``sigmoid(z) > threshold``: ``mean_l 2 TP_l / (2 TP_l + FP_l + FN_l)``.

    Every label counts; a label with no positive and no prediction scores 0
    (scikit-learn's ``zero_division=0``).

    >>> f1_at(torch.tensor([[1.0, -1.0], [-1.0, -1.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]]), 0.5)
    0.3333333333333333
    """
    _check(logits, targets)
    if targets.numel() == 0:
        return float("nan")
    predicted = _probabilities(logits) > threshold
    positive = _positives(targets)
    tp = (predicted & positive).sum(dim=0).double()
    support = (predicted.sum(dim=0) + positive.sum(dim=0)).double()  # 2 TP + FP + FN
    return torch.where(support > 0, 2 * tp / support.clamp_min(1), 0.0).mean().item()


def f1(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Macro F1 at the threshold 1/2, i.e. of the positive logits (:func:`f1_at`)."""
    return f1_at(logits, targets, 0.5)


def best_threshold(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The threshold on ``sigmoid(z)``, one for all labels, that maximises the macro F1 (:func:`f1_at`).

    Every distinct probability ``u`` is tried as "predict the probabilities >= u";
    the threshold returned is midway between ``u`` and the next lower
    probability (0 below the lowest), so that ``> threshold`` predicts the same
    set here and splits the gap on new data. Of equal scores the lowest
    threshold wins; 1/2 when nothing scores above 0 (no positive at all).

    >>> logits, targets = torch.tensor([[-3.0], [-2.0], [2.0]]), torch.tensor([[0.0], [1.0], [1.0]])
    >>> round(best_threshold(logits, targets), 4)  # midway between sigmoid(-3) and sigmoid(-2)
    0.0833
    """
    _check(logits, targets)
    if targets.numel() == 0:
        return 0.5
    probabilities = _probabilities(logits)
    positive = _positives(targets)
    candidates = torch.unique(probabilities)  # ascending
    n = probabilities.shape[0]
    total = torch.zeros_like(candidates)
    for k in range(probabilities.shape[1]):
        column = torch.sort(probabilities[:, k]).values
        hits = torch.sort(probabilities[positive[:, k], k]).values
        predicted = n - torch.searchsorted(column, candidates)  # how many are >= each candidate
        tp = hits.numel() - torch.searchsorted(hits, candidates)
        support = (predicted + hits.numel()).double()
        total += torch.where(support > 0, 2 * tp / support.clamp_min(1), 0.0)
    best = int(torch.argmax(total))  # the first maximum: the lowest threshold
    if total[best] <= 0:
        return 0.5
    below = candidates[best - 1].item() if best > 0 else 0.0
    return (below + candidates[best].item()) / 2


def f1_best(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Macro F1 at :func:`best_threshold` of these same logits: the validation set's value.

    On a test set use ``f1_at(test_logits, test_targets, best_threshold(val_logits, val_targets))``.

    >>> f1_best(torch.tensor([[-3.0], [-2.0], [2.0]]), torch.tensor([[0.0], [1.0], [1.0]]))
    1.0
    """
    return f1_at(logits, targets, best_threshold(logits, targets))


def hamming_loss(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of the ``N L`` label decisions ``sigmoid(z) > 1/2`` that are wrong (lower is better).

    >>> hamming_loss(torch.tensor([[1.0, -1.0], [-1.0, -1.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    0.5
    """
    _check(logits, targets)
    if targets.numel() == 0:
        return float("nan")
    return ((_probabilities(logits) > 0.5) != _positives(targets)).double().mean().item()


# --------------------------------------------------------------------------- two classes


def _two_class_scores(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if logits.ndim != 2 or logits.shape[1] != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"expected class logits (N, 2) and labels (N,) of a two-class set, "
            f"got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    check_class_labels(labels, 2)
    # softmax(z)_1 = sigmoid(z_1 - z_0): the same order, without the ties of probabilities that round to 1.
    return logits[:, 1].double() - logits[:, 0].double()


def binary_auroc(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC AUC of class 1 scored by ``softmax(z)_1``, from class logits ``(N, 2)`` and labels ``(N,)``.

    scikit-learn's ``roc_auc_score(labels, softmax(z)[:, 1])``; the ranking is
    taken on ``z_1 - z_0``, which orders samples as ``softmax(z)_1`` does without
    rounding near-certain ones into ties. NaN when the labels hold one class.

    >>> binary_auroc(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.5]]), torch.tensor([1, 0, 0]))
    1.0
    """
    return _binary_auroc(_two_class_scores(logits, labels), labels == 1)


def binary_average_precision(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Average precision of class 1 scored by ``softmax(z)_1`` (scikit-learn's ``average_precision_score``).

    NaN when no label is 1.

    >>> binary_average_precision(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.5]]), torch.tensor([1, 0, 0]))
    1.0
    """
    return _binary_average_precision(_two_class_scores(logits, labels), labels == 1)
