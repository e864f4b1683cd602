"""Metrics against scikit-learn, pytorch-metric-learning's AccuracyCalculator, or slow loops written here."""

from __future__ import annotations

import math
import subprocess
import sys
from itertools import pairwise

import pytest
import torch
from sklearn import metrics as skm
from torch.utils._python_dispatch import TorchDispatchMode

import losszoo
from losszoo.inputs import INPUTS, TARGETS_OF_TASK
from losszoo.metrics import retrieval

NAMES = losszoo.METRICS.names()


def metric(name):
    return losszoo.METRICS.get(name).load()


def generator(seed):
    return torch.Generator().manual_seed(seed)


# Catalogue -----------------------------------------------------------------------------------------------


def test_catalogue_names_every_metric_of_the_spec():
    assert set(NAMES) == {
        "accuracy", "macro_f1", "nll", "ece", "mae", "rmse", "r2", "precision_at_1", "r_precision", "map_at_r",
        "verification_accuracy", "tar_at_far", "dice", "miou", "pixel_accuracy",
        # multi-label and binary (tests/metrics/test_multilabel_metrics.py), boxes (test_box_metrics.py)
        "auroc", "average_precision", "f1", "f1_best", "hamming_loss", "binary_auroc", "binary_average_precision",
        "mean_iou", "ap50",
    }


def test_catalogue_imports_no_torch():
    code = "import sys, losszoo; losszoo.METRICS.entries(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def sample_input(entry, seed=0):
    g = generator(seed)
    if entry.input == "logits":
        classes = 2 if entry.name.startswith("binary_") else 5
        return torch.randn(40, classes, generator=g), torch.randint(0, classes, (40,), generator=g)
    if entry.input == "multilabel":
        return torch.randn(40, 4, generator=g), (torch.rand(40, 4, generator=g) > 0.5).float()
    if entry.input == "boxes":
        corners = torch.rand(40, 2, 2, generator=g).sort(dim=1).values
        boxes = torch.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], dim=1)
        return boxes + 0.05 * torch.randn(40, 4, generator=g), boxes
    if entry.input == "values":
        return torch.randn(40, generator=g) * 10 + 3, torch.randn(40, generator=g) * 10 + 3
    if entry.input == "embeddings":
        return torch.randn(40, 6, generator=g), torch.randint(0, 4, (40,), generator=g)
    if entry.input == "pixel_logits":
        return torch.randn(2, 3, 5, 4, generator=g), torch.randint(0, 3, (2, 5, 4), generator=g)
    raise AssertionError(entry.input)


@pytest.mark.parametrize("name", NAMES)
def test_entry_metadata_and_python_float(name):
    entry = losszoo.METRICS.get(name)
    assert entry.kind == "metric" and entry.input in INPUTS
    assert entry.task in TARGETS_OF_TASK
    assert isinstance(entry.higher_is_better, bool)
    assert entry.summary and entry.formula and entry.reference
    value = entry.load()(*sample_input(entry))
    assert type(value) is float and math.isfinite(value)


@pytest.mark.parametrize("name", NAMES)
def test_half_precision_outputs_give_the_float32_value(name):
    output, target = sample_input(losszoo.METRICS.get(name), seed=1)
    output = output.bfloat16()
    assert metric(name)(output, target) == pytest.approx(metric(name)(output.float(), target), rel=1e-6)


@pytest.mark.parametrize("name", [n for n in NAMES if losszoo.METRICS.get(n).target_kind in ("labels", "masks")])
def test_float_labels_are_rejected(name):
    output, target = sample_input(losszoo.METRICS.get(name))
    with pytest.raises(ValueError, match="integer"):
        metric(name)(output, target.double())


# Classification ------------------------------------------------------------------------------------------


def classification_case(seed, n=60, classes=6, scale=2.0):
    g = generator(seed)
    logits = torch.randn(n, classes, generator=g, dtype=torch.float64) * scale
    # Labels from a subset of the classes, so some classes appear only in predictions (or nowhere).
    labels = torch.randint(0, classes - 2, (n,), generator=g)
    return logits, labels


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_classification_equals_sklearn(seed, scale):
    logits, labels = classification_case(seed, scale=scale)
    predicted = logits.argmax(1).numpy()
    y = labels.numpy()
    probs = torch.softmax(logits, 1).numpy()
    assert metric("accuracy")(logits, labels) == pytest.approx(skm.accuracy_score(y, predicted), rel=1e-12)
    assert metric("macro_f1")(logits, labels) == pytest.approx(
        skm.f1_score(y, predicted, average="macro", zero_division=0), rel=1e-12
    )
    assert metric("nll")(logits, labels) == pytest.approx(skm.log_loss(y, probs, labels=range(6)), rel=1e-9)


def test_macro_f1_counts_classes_only_predicted():
    # Class 2 is predicted once but never true: its F1 of 0 enters the mean, class 3 (nowhere) does not.
    logits = torch.eye(4)[[0, 0, 1, 2]]
    labels = torch.tensor([0, 0, 1, 1])
    assert metric("macro_f1")(logits, labels) == pytest.approx((1 + 2 / 3 + 0) / 3)


def slow_ece(logits, labels, bins=15):
    probs = torch.softmax(logits.double(), 1).tolist()
    edges = [b / bins for b in range(bins + 1)]
    total = 0.0
    for lo, hi in pairwise(edges):
        members = [i for i, p in enumerate(probs) if lo < max(p) <= hi]
        if not members:
            continue
        confidence = sum(max(probs[i]) for i in members) / len(members)
        accuracy = sum(probs[i].index(max(probs[i])) == labels[i] for i in members) / len(members)
        total += len(members) / len(probs) * abs(accuracy - confidence)
    return total


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scale", [0.3, 2.0, 8.0])
def test_ece_equals_slow_binning(seed, scale):
    logits, labels = classification_case(seed, n=200, scale=scale)
    assert metric("ece")(logits, labels) == pytest.approx(slow_ece(logits, labels.tolist()), rel=1e-9, abs=1e-12)


def test_ece_of_perfectly_calibrated_bins_is_zero():
    # Confidence exactly 0.5 (two equal logits), and half of those predictions are right.
    logits = torch.zeros(4, 2)
    assert metric("ece")(logits, torch.tensor([0, 1, 0, 1])) == 0.0
    assert metric("ece")(logits, torch.tensor([0, 0, 0, 0])) == 0.5


def test_ece_bins_are_open_below_and_closed_above():
    """A confidence exactly on an edge belongs to the bin below: (0, 0.5] and (0.5, 1] with two bins."""
    from losszoo.metrics.classification import ece

    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # confidences 0.5 (exact) and 0.75
    labels = torch.tensor([0, 1])  # the first right, the second wrong
    # (lo, hi]: |1 - 0.5| / 2 + |0 - 0.75| / 2 = 0.625; with [lo, hi) both would share one bin: 0.125
    assert ece(logits, labels, bins=2) == pytest.approx(0.625)
    assert slow_ece(logits, labels.tolist(), bins=2) == pytest.approx(0.625)


def test_classification_extremes_and_half_precision():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]])
    labels = torch.tensor([1, 1])
    assert metric("nll")(logits, labels) == pytest.approx(1e4, rel=1e-6)  # float32 log_softmax stays finite
    assert metric("ece")(logits, labels) == pytest.approx(0.5)
    bf16 = torch.randn(30, 4).bfloat16()
    y = torch.randint(0, 4, (30,))
    assert metric("nll")(bf16, y) == pytest.approx(metric("nll")(bf16.float(), y), rel=1e-6)


@pytest.mark.parametrize("name", ["accuracy", "macro_f1", "nll", "ece"])
def test_classification_labels_out_of_range(name):
    with pytest.raises(ValueError, match="outside"):
        metric(name)(torch.randn(3, 4), torch.tensor([0, 4, 1]))


# Regression ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_regression_equals_sklearn(seed):
    g = generator(seed)
    y = torch.randn(50, generator=g, dtype=torch.float64) * 40 + 150
    p = y + torch.randn(50, generator=g, dtype=torch.float64) * 20
    yn, pn = y.numpy(), p.numpy()
    assert metric("mae")(p, y) == pytest.approx(skm.mean_absolute_error(yn, pn), rel=1e-12)
    assert metric("rmse")(p, y) == pytest.approx(skm.mean_squared_error(yn, pn) ** 0.5, rel=1e-12)
    assert metric("r2")(p, y) == pytest.approx(skm.r2_score(yn, pn), rel=1e-12)
    assert metric("r2")(p[:, None], y) == metric("r2")(p, y)  # (N, 1) heads are accepted


def test_r2_of_constant_targets_matches_sklearn():
    y = torch.full((5,), 3.0)
    for p in (y.clone(), y + torch.arange(5.0)):
        assert metric("r2")(p, y) == skm.r2_score(y.numpy(), p.numpy())


def test_regression_shape_mismatch():
    with pytest.raises(ValueError, match="expected"):
        metric("mae")(torch.zeros(4), torch.zeros(5))


# Retrieval -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pml_calculator():
    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    return AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        k="max_bin_count",
        knn_func=CustomKNN(CosineSimilarity()),
        device=torch.device("cpu"),
    )


def retrieval_case(seed, n=150, dim=8, classes=12, dtype=torch.float64, singletons=0):
    g = generator(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    labels[:singletons] = torch.arange(classes, classes + singletons)  # classes with one member: left out
    centres = torch.randn(classes + singletons, dim, generator=g, dtype=torch.float64)
    embeddings = centres[labels] + torch.randn(n, dim, generator=g, dtype=torch.float64) * 1.5
    return embeddings.to(dtype), labels


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("singletons", [0, 5])
def test_retrieval_equals_pml(pml_calculator, seed, dtype, singletons):
    embeddings, labels = retrieval_case(seed, dtype=dtype, singletons=singletons, classes=8 + 4 * seed)
    expected = pml_calculator.get_accuracy(embeddings, labels)
    got = retrieval.retrieval_scores(embeddings, labels)
    assert got["precision_at_1"] == pytest.approx(expected["precision_at_1"], rel=1e-12)
    assert got["r_precision"] == pytest.approx(expected["r_precision"], rel=1e-12)
    assert got["map_at_r"] == pytest.approx(expected["mean_average_precision_at_r"], rel=1e-12)
    for name in ("precision_at_1", "r_precision", "map_at_r"):
        assert metric(name)(embeddings, labels) == got[name]
    assert 0 < got["map_at_r"] < got["r_precision"] < 1  # the case is neither trivial nor hopeless


def test_retrieval_uneven_class_sizes_equal_pml(pml_calculator):
    # One large class: R far above the others'.
    embeddings, labels = retrieval_case(7, n=120, classes=6)
    labels[:50] = 0
    expected = pml_calculator.get_accuracy(embeddings, labels)
    got = retrieval.retrieval_scores(embeddings, labels)
    assert got["map_at_r"] == pytest.approx(expected["mean_average_precision_at_r"], rel=1e-12)
    assert got["r_precision"] == pytest.approx(expected["r_precision"], rel=1e-12)
    assert got["precision_at_1"] == pytest.approx(expected["precision_at_1"], rel=1e-12)


def test_retrieval_with_zero_norm_embeddings_is_finite():
    embeddings, labels = retrieval_case(2, n=30, classes=3, dtype=torch.float32)
    embeddings[:4] = 0  # similarity 0 to everything, as in PML's F.normalize
    assert all(0 <= v <= 1 for v in retrieval.retrieval_scores(embeddings, labels).values())
    assert math.isfinite(metric("verification_accuracy")(embeddings, labels))


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_retrieval_chunks_do_not_change_the_value(chunk_size):
    embeddings, labels = retrieval_case(3, n=90, dtype=torch.float32)
    assert retrieval.retrieval_scores(embeddings, labels, chunk_size=chunk_size) == retrieval.retrieval_scores(
        embeddings, labels
    )
    assert retrieval.precision_at_1(embeddings, labels, chunk_size) == retrieval.precision_at_1(embeddings, labels)


def test_retrieval_without_any_pair_of_a_class_is_nan():
    embeddings = torch.randn(4, 3)
    for name in ("precision_at_1", "r_precision", "map_at_r"):
        assert math.isnan(metric(name)(embeddings, torch.arange(4)))


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any torch op returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_retrieval_on_10000_embeddings_stays_within_one_chunk_of_rows():
    n, chunk = 10_000, 2_500
    g = generator(0)
    embeddings, labels = torch.randn(n, 128, generator=g), torch.randint(0, 1000, (n,), generator=g)
    with LargestTensor() as spy:
        scores = retrieval.retrieval_scores(embeddings, labels, chunk_size=chunk)
    assert spy.largest == chunk * n  # one chunk of similarities, never n x n
    assert all(0 <= v <= 1 for v in scores.values())
    assert retrieval.CHUNK_ELEMENTS // n < n  # the default chunk is a slice too


# Verification --------------------------------------------------------------------------------------------


def slow_verification(scores, same, folds, k=10):
    accuracies = []
    for held_out in range(k):
        train = [(s, y) for s, y, f in zip(scores, same, folds, strict=True) if f != held_out]
        test = [(s, y) for s, y, f in zip(scores, same, folds, strict=True) if f == held_out]
        values = sorted({s for s, _ in train})
        candidates = [-math.inf] + [(a + b) / 2 for a, b in pairwise(values)] + [math.inf]
        best, best_correct = None, -1
        for t in candidates:  # ascending: the lowest of equally good thresholds wins
            correct = sum((s > t) == y for s, y in train)
            if correct > best_correct:
                best, best_correct = t, correct
        accuracies.append(sum((s > best) == y for s, y in test) / len(test))
    return sum(accuracies) / len(accuracies)


def slow_pairs(embeddings, labels):
    e, y = embeddings.tolist(), labels.tolist()
    scores, same = [], []
    for i in range(len(e)):
        for j in range(i + 1, len(e)):
            dot = sum(a * b for a, b in zip(e[i], e[j], strict=True))
            norm = math.sqrt(sum(a * a for a in e[i])) * math.sqrt(sum(b * b for b in e[j]))
            scores.append(dot / norm)
            same.append(y[i] == y[j])
    return scores, same


def test_verification_pairs_are_all_pairs_with_their_cosine():
    embeddings, labels = retrieval_case(0, n=12, classes=3)
    scores, same = retrieval.verification_pairs(embeddings, labels)
    expected_scores, expected_same = slow_pairs(embeddings, labels)
    torch.testing.assert_close(scores, torch.tensor(expected_scores, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    assert same.tolist() == expected_same


def test_verification_sampled_pairs_are_seeded_and_distinct():
    embeddings, labels = retrieval_case(0, n=50, classes=3)
    scores, same = retrieval.verification_pairs(embeddings, labels, max_pairs=300, seed=4)
    assert scores.shape == (300,)
    again = retrieval.verification_pairs(embeddings, labels, max_pairs=300, seed=4)
    assert torch.equal(scores, again[0]) and torch.equal(same, again[1])
    assert not torch.equal(scores, retrieval.verification_pairs(embeddings, labels, max_pairs=300, seed=5)[0])
    assert (scores < 1 - 1e-9).all()  # no embedding paired with itself


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("quantized", [False, True])
def test_verification_accuracy_equals_slow_cross_validation(seed, quantized):
    embeddings, labels = retrieval_case(seed, n=18, dim=3, classes=3)
    if quantized:  # tied scores between folds
        embeddings = embeddings.sign()
    scores, same = retrieval.balance_pairs(*retrieval.verification_pairs(embeddings, labels))
    folds = retrieval.fold_ids(len(scores), 10, seed=0)
    expected = slow_verification(scores.tolist(), same.tolist(), folds.tolist())
    assert metric("verification_accuracy")(embeddings, labels) == pytest.approx(expected, rel=1e-12)
    unbalanced, same_all = retrieval.verification_pairs(embeddings, labels)
    folds = retrieval.fold_ids(len(unbalanced), 10, seed=0)
    expected = slow_verification(unbalanced.tolist(), same_all.tolist(), folds.tolist())
    got = retrieval.verification_accuracy(embeddings, labels, balanced=False)
    assert got == pytest.approx(expected, rel=1e-12)


def test_balanced_pairs_hold_as_many_negatives_as_positives():
    embeddings, labels = retrieval_case(0, n=30, dim=4, classes=5)
    scores, same = retrieval.verification_pairs(embeddings, labels)
    kept, kept_same = retrieval.balance_pairs(scores, same, seed=1)
    assert int(kept_same.sum()) == int((~kept_same).sum()) == int(same.sum())  # positives are the rarer kind
    assert set(kept.tolist()) <= set(scores.tolist())
    # "never the same" scores 0.5 on balanced pairs, not (C - 1) / C
    constant = torch.ones(30, 4)
    assert retrieval.verification_accuracy(constant, labels) == pytest.approx(0.5, abs=0.1)


def test_verification_accuracy_on_sampled_pairs_equals_slow_cross_validation():
    embeddings, labels = retrieval_case(1, n=40, dim=3, classes=2)
    got = retrieval.verification_accuracy(embeddings, labels, max_pairs=150, seed=3)
    scores, same = retrieval.balance_pairs(*retrieval.verification_pairs(embeddings, labels, max_pairs=150, seed=3),
                                           seed=3)
    folds = retrieval.fold_ids(len(scores), 10, seed=3).tolist()
    expected = slow_verification(scores.tolist(), same.tolist(), folds)
    assert got == pytest.approx(expected, rel=1e-12)


def test_fold_ids_are_balanced():
    ids = retrieval.fold_ids(103, 10, seed=2)
    assert sorted(torch.bincount(ids).tolist()) == [10] * 7 + [11] * 3


def slow_tar_at_far(scores, same, far):
    positives = [s for s, y in zip(scores, same, strict=True) if y]
    negatives = [s for s, y in zip(scores, same, strict=True) if not y]
    best = 0.0
    for t in [-math.inf, *scores]:
        if sum(s > t for s in negatives) / len(negatives) <= far:
            best = max(best, sum(s > t for s in positives) / len(positives))
    return best


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("far", [1e-2, 0.1, 0.35])
def test_tar_at_far_equals_slow_roc(seed, far):
    embeddings, labels = retrieval_case(seed, n=20, dim=3, classes=3)
    scores, same = retrieval.verification_pairs(embeddings, labels)
    expected = slow_tar_at_far(scores.tolist(), same.tolist(), far)
    got = retrieval.tar_at_far(embeddings, labels, far=far)
    assert got == pytest.approx(expected, rel=1e-12)
    if far == 1e-2:
        assert metric("tar_at_far")(embeddings, labels) == got


def test_tar_at_far_without_negative_pairs_is_nan():
    assert math.isnan(metric("tar_at_far")(torch.randn(4, 3), torch.zeros(4, dtype=torch.long)))


# Segmentation --------------------------------------------------------------------------------------------


def slow_segmentation(logits, masks, ignore_index=None):
    predicted = logits.argmax(1).reshape(-1).tolist()
    truth = masks.reshape(-1).tolist()
    pixels = [(p, t) for p, t in zip(predicted, truth, strict=True) if t != ignore_index]
    dices, ious = [], []
    for c in range(logits.shape[1]):
        both = sum(p == c and t == c for p, t in pixels)
        in_p = sum(p == c for p, _ in pixels)
        in_t = sum(t == c for _, t in pixels)
        if in_p + in_t == 0:
            continue
        dices.append(2 * both / (in_p + in_t))
        ious.append(both / (in_p + in_t - both))
    accuracy = sum(p == t for p, t in pixels) / len(pixels)
    return sum(dices) / len(dices), sum(ious) / len(ious), accuracy


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_segmentation_equals_slow_counts(seed, ignore_index):
    g = generator(seed)
    classes = 5
    # Masks use classes 0-2, and a bias makes class 4 rare in predictions: class 3 or 4 may be absent from both.
    masks = torch.randint(0, 3, (2, 6, 7), generator=g)
    logits = torch.randn(2, classes, 6, 7, generator=g, dtype=torch.float64)
    logits[:, 4] -= 3.0
    logits[:, 0] += masks == 0
    if ignore_index is not None:
        masks[0, :2] = ignore_index
    expected = slow_segmentation(logits, masks, ignore_index)
    kw = {"ignore_index": ignore_index}
    assert metric("dice")(logits, masks, **kw) == pytest.approx(expected[0], rel=1e-12)
    assert metric("miou")(logits, masks, **kw) == pytest.approx(expected[1], rel=1e-12)
    assert metric("pixel_accuracy")(logits, masks, **kw) == pytest.approx(expected[2], rel=1e-12)


def test_segmentation_skips_classes_absent_from_both():
    masks = torch.tensor([[[0, 1], [1, 1]]])
    logits = torch.nn.functional.one_hot(masks, 4).permute(0, 3, 1, 2).float()  # perfect, classes 2-3 absent
    assert metric("dice")(logits, masks) == 1.0
    assert metric("miou")(logits, masks) == 1.0


def test_segmentation_masks_out_of_range():
    with pytest.raises(ValueError, match="outside"):
        metric("dice")(torch.randn(1, 3, 2, 2), torch.tensor([[[0, 1], [2, 3]]]))
