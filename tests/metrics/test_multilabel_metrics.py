"""Multi-label and two-class ranking metrics against scikit-learn.

Logits are rounded to a coarse grid in most tests so that tied scores, the
case ranking metrics most often get wrong, occur in every column.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score, hamming_loss, roc_auc_score

from losszoo.catalog import multilabel as catalog
from losszoo.metrics import multilabel as metrics

METRICS = {e.name: e for e in catalog.METRICS}


def data(seed: int, n: int = 40, l: int = 5, ties: bool = True, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    targets = (torch.rand(n, l, generator=g) < 0.35).float()
    logits = 1.5 * targets + torch.randn(n, l, generator=g)  # informative, not perfect
    if ties:
        logits = torch.round(logits * 2) / 2
    return logits.to(dtype), targets


def probabilities(logits: torch.Tensor) -> np.ndarray:
    return torch.sigmoid(logits.double()).numpy()


def test_catalogue_entries():
    assert set(METRICS) == {"auroc", "average_precision", "f1", "f1_best", "hamming_loss", "binary_auroc",
                            "binary_average_precision"}
    for name, entry in METRICS.items():
        assert entry.load() is getattr(metrics, name)
        assert entry.value_range == (0.0, 1.0) and entry.summary and entry.formula and entry.reference
        assert entry.higher_is_better == (name != "hamming_loss")
        binary = name.startswith("binary_")
        assert (entry.input, entry.target_kind, entry.task) == (
            ("logits", "labels", "classification") if binary else ("multilabel", "multilabel", "multilabel"))
    # f1_best is no default until the trainer brings val's threshold to test; the two-class ones raise on more.
    assert [e.name for e in catalog.METRICS if e.default] == ["average_precision", "auroc", "f1", "hamming_loss"]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [True, False])
def test_auroc_and_average_precision_equal_sklearn_macro(seed, ties):
    logits, targets = data(seed, ties=ties)
    y, p = targets.numpy(), probabilities(logits)
    assert metrics.auroc(logits, targets) == pytest.approx(roc_auc_score(y, p, average="macro"), rel=1e-12)
    assert metrics.average_precision(logits, targets) == pytest.approx(
        average_precision_score(y, p, average="macro"), rel=1e-12)


def test_labels_with_one_class_are_skipped():
    logits, targets = data(5)
    targets[:, 1] = 0.0  # no positive: AUROC and AP undefined
    targets[:, 3] = 1.0  # no negative: AUROC undefined, AP = 1
    y, p = targets.numpy(), probabilities(logits)
    both = [0, 2, 4]
    with_positive = [0, 2, 3, 4]
    assert metrics.auroc(logits, targets) == pytest.approx(roc_auc_score(y[:, both], p[:, both]), rel=1e-12)
    assert metrics.average_precision(logits, targets) == pytest.approx(
        average_precision_score(y[:, with_positive], p[:, with_positive]), rel=1e-12)
    assert math.isnan(metrics.auroc(logits, torch.zeros_like(targets)))
    assert math.isnan(metrics.average_precision(logits, torch.zeros_like(targets)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.5, 0.2, 0.75])
def test_f1_and_hamming_equal_sklearn(seed, threshold):
    logits, targets = data(seed)
    targets[:, 0] = 0.0  # a label with nothing to find: 0 when also nothing is predicted
    logits[:, 0] = -5.0
    y, predicted = targets.numpy(), probabilities(logits) > threshold
    expected = f1_score(y, predicted, average="macro", zero_division=0)
    assert metrics.f1_at(logits, targets, threshold) == pytest.approx(expected, rel=1e-12)
    if threshold == 0.5:
        assert metrics.f1(logits, targets) == pytest.approx(expected, rel=1e-12)
        assert metrics.hamming_loss(logits, targets) == pytest.approx(hamming_loss(y, predicted), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_best_threshold_maximises_sklearn_macro_f1(seed):
    logits, targets = data(seed, n=30, l=3)
    y, p = targets.numpy(), probabilities(logits)
    tau = metrics.best_threshold(logits, targets)
    at_tau = f1_score(y, p > tau, average="macro", zero_division=0)
    assert metrics.f1_best(logits, targets) == pytest.approx(at_tau, rel=1e-12)
    # Brute force: every cut midway between the distinct probabilities (and below the lowest, above the highest).
    cuts = np.unique(np.concatenate([[0.0], p.ravel(), [1.0]]))
    candidates = (cuts[1:] + cuts[:-1]) / 2
    best = max(f1_score(y, p > c, average="macro", zero_division=0) for c in candidates)
    assert at_tau == pytest.approx(best, rel=1e-12)
    # The lowest of the best thresholds, midway into its gap.
    first = min(c for c in candidates if f1_score(y, p > c, average="macro", zero_division=0) >= best - 1e-12)
    assert tau == pytest.approx(first, rel=1e-12)


def test_best_threshold_splits_the_gap_of_separable_scores():
    logits = torch.tensor([[-2.0], [-1.0], [1.0], [3.0]])
    targets = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
    tau = metrics.best_threshold(logits, targets)
    assert tau == pytest.approx((1 / (1 + math.e) + 1 / (1 + math.exp(-1))) / 2)
    assert metrics.f1_best(logits, targets) == 1.0
    assert metrics.best_threshold(logits, torch.zeros_like(targets)) == 0.5  # nothing to find


def test_val_threshold_applied_to_test():
    val_logits, val_targets = data(6)
    test_logits, test_targets = data(7)
    tau = metrics.best_threshold(val_logits, val_targets)
    expected = f1_score(test_targets.numpy(), probabilities(test_logits) > tau, average="macro", zero_division=0)
    assert metrics.f1_at(test_logits, test_targets, tau) == pytest.approx(expected, rel=1e-12)


def test_one_label_binary_set():
    logits, targets = data(8, l=1)
    y, p = targets.numpy().ravel(), probabilities(logits).ravel()
    assert metrics.auroc(logits, targets) == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert metrics.average_precision(logits, targets) == pytest.approx(average_precision_score(y, p), rel=1e-12)
    assert metrics.f1(logits, targets) == pytest.approx(f1_score(y, p > 0.5, zero_division=0), rel=1e-12)


@pytest.mark.parametrize("name", ["auroc", "average_precision", "f1", "f1_best", "hamming_loss"])
def test_shape_mismatch_raises(name):
    logits, targets = data(9)
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        getattr(metrics, name)(logits, targets[:, 0])


# ----------------------------------------------------------------- two classes


def two_class(seed: int, n: int = 50):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, (n,), generator=g)
    logits = torch.randn(n, 2, generator=g)
    logits[:, 1] += labels.float()
    return torch.round(logits * 2) / 2, labels  # ties in z_1 - z_0


@pytest.mark.parametrize("seed", range(4))
def test_binary_metrics_equal_sklearn_on_softmax(seed):
    logits, labels = two_class(seed)
    score = torch.softmax(logits.double(), dim=1)[:, 1].numpy()
    assert metrics.binary_auroc(logits, labels) == pytest.approx(roc_auc_score(labels.numpy(), score), rel=1e-12)
    assert metrics.binary_average_precision(logits, labels) == pytest.approx(
        average_precision_score(labels.numpy(), score), rel=1e-12)


def test_binary_metrics_rank_confident_samples_without_ties():
    # softmax(z)_1 rounds to 1.0 for both, yet z_1 - z_0 still orders them.
    logits = torch.tensor([[0.0, 50.0], [0.0, 60.0], [0.0, -1.0]])
    labels = torch.tensor([0, 1, 0])
    assert metrics.binary_auroc(logits, labels) == 1.0
    assert metrics.binary_average_precision(logits, labels) == 1.0


def test_binary_metrics_need_two_classes():
    logits, labels = two_class(0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        metrics.binary_auroc(torch.cat([logits, logits[:, :1]], dim=1), labels)
    with pytest.raises(ValueError, match="outside"):
        metrics.binary_average_precision(logits, labels + 1)
    assert math.isnan(metrics.binary_auroc(logits, torch.zeros_like(labels)))
