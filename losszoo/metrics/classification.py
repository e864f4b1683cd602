"""Classification metrics on class logits ``(N, C)`` and integer labels ``(N,)``.

Metadata: ``losszoo/catalog/metrics.py``. Values equal scikit-learn's
(``accuracy_score``, ``f1_score(average="macro")``, ``log_loss``); ``ece``
follows Guo et al. 2017.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losszoo.losses._common import check_labels


def check_class_labels(labels: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> None:
    """Raise ValueError for non-integer labels or labels outside ``[0, num_classes)``: the check
    every loss makes, made by the metrics too."""
    check_labels(labels, num_classes, ignore_index)


def _check(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected logits (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    check_class_labels(labels, logits.shape[1])


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Log-softmax in float32 at least (half precision loses the small probabilities)."""
    return F.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=1)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of samples whose largest logit is the true class (first index wins a tie).

    >>> accuracy(torch.tensor([[2.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 1]))
    0.5
    """
    _check(logits, labels)
    if labels.numel() == 0:
        return float("nan")
    return (logits.argmax(dim=1) == labels).double().mean().item()


def macro_f1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Unweighted mean over classes of ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``.

    The mean runs over the classes present in the labels or in the predictions,
    as scikit-learn's ``f1_score(average="macro", zero_division=0)``.

    >>> macro_f1(torch.tensor([[2.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 1]))  # F1 = 2/3 and 0
    0.3333333333333333
    """
    _check(logits, labels)
    if labels.numel() == 0:
        return float("nan")
    num_classes = logits.shape[1]
    predicted = logits.argmax(dim=1)
    true_positive = torch.bincount(labels[predicted == labels], minlength=num_classes).double()
    # 2 TP + FP + FN = (predicted count) + (true count)
    support = torch.bincount(predicted, minlength=num_classes) + torch.bincount(labels, minlength=num_classes)
    support = support.double()
    present = support > 0
    return (2 * true_positive[present] / support[present]).mean().item()


def nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood ``-1/N sum_i log softmax(z_i)_{y_i}`` (scikit-learn's ``log_loss``).

    >>> round(nll(torch.tensor([[0.0, 0.0]]), torch.tensor([1])), 4)  # log 2
    0.6931
    """
    _check(logits, labels)
    if labels.numel() == 0:
        return float("nan")
    return -_log_probs(logits).gather(1, labels[:, None]).double().mean().item()


def ece(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence (Guo et al., On Calibration
    of Modern Neural Networks, ICML 2017).

    ``ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` over ``bins`` equal-width bins
    ``(b/bins, (b+1)/bins]`` of the confidence ``max_c softmax(z)_c``; empty bins add nothing.

    >>> ece(torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([0, 0]))  # conf 0.5, accuracy 1
    0.5
    """
    _check(logits, labels)
    if labels.numel() == 0:
        return float("nan")
    confidence, predicted = _log_probs(logits).exp().max(dim=1)
    confidence = confidence.double()
    correct = (predicted == labels).double()
    upper = torch.linspace(0, 1, bins + 1, dtype=torch.float64, device=logits.device)[1:]
    # bucketize (right=False) gives the b with upper[b-1] < conf <= upper[b]: bins are (lo, hi].
    bin_of = torch.bucketize(confidence, upper).clamp_max(bins - 1)
    gap = torch.zeros(bins, dtype=torch.float64, device=logits.device)
    gap.index_add_(0, bin_of, correct - confidence)
    return (gap.abs().sum() / labels.numel()).item()
