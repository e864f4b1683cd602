"""Multi-label (and binary) losses, metrics and datasets: one logit per label.

Input kind ``multilabel``: logits ``(N, L)`` and float targets ``(N, L)`` of 0/1
(a plain binary set is ``L = 1``); the trainer passes ``num_classes = L``.
Implementations: losszoo/losses/multilabel.py, losszoo/metrics/multilabel.py,
losszoo/data/shapes.py. ``ENTRIES`` holds losses, metrics and datasets alike:
each registry takes the entries of its own kind.
"""

from losszoo.catalog import Facts, Param, dataset, loss, metric, one_per_class
from losszoo.catalog import datasets as _datasets
from losszoo.catalog.datasets import GENERATED, SPLIT, SPLIT_RULES

_LOSS = "losszoo.losses.multilabel"
_MET = "losszoo.metrics.multilabel"
_DATA = "losszoo.data.shapes"
_COMMON = dict(family="multilabel", input="multilabel", target_kind="multilabel", optional_context=("num_classes",),
               stackable=True)
_METRIC = dict(family="multilabel", input="multilabel", target_kind="multilabel", task="multilabel",
               value_range=(0.0, 1.0))
_LIN = "Lin et al., Focal Loss for Dense Object Detection, ICCV 2017"
_SIGMOID = "p = sigmoid(z), t in {0, 1}"

LOSSES = [
    loss(
        "bce",
        f"{_LOSS}:BCELoss",
        **_COMMON,
        elementwise=True,
        summary="binary cross-entropy on one logit per label, with an optional weight on the positives",
        # No range: pos_weight is a per-label (or dataset-wide) prior on the positives, not a loss shape.
        params=(
            Param("pos_weight", None, "weight of the positive term: none, one number, or one per label",
                  type="float_or_floats", nullable=True, ge=0.0, short="pw"),
        ),
        rules=(one_per_class("pos_weight", "label", "labels"),),
        paper="Cox, The Regression Analysis of Binary Sequences, JRSS B 1958",
        formula="-[w t log p + (1 - t) log(1 - p)],  " + _SIGMOID + ", w = pos_weight; mean over N L elements",
        reference="torch.nn.functional.binary_cross_entropy_with_logits",
    ),
    loss(
        "sigmoid_focal",
        f"{_LOSS}:SigmoidFocalLoss",
        **_COMMON,
        elementwise=True,
        summary="per-label focal loss: binary cross-entropy down-weighted by (1 - p_t)^gamma",
        params=(
            # Lin et al. tune alpha and gamma together (Table 1: gamma 0 .. 5, alpha .25 .. .75 at the best gammas)
            Param("alpha", 0.25, "weight of the positives (1 - alpha for the negatives); null weighs nothing",
                  nullable=True, ge=0.0, le=1.0, short="a", tune=(0.1, 0.9)),
            Param("gamma", 2.0, "focusing exponent; 0 is (alpha-weighted) binary cross-entropy", ge=0.0, short="g",
                  tune=(0.0, 5.0)),
        ),
        paper=_LIN,
        formula="alpha_t (1 - p_t)^gamma BCE(z, t),  p_t = p t + (1 - p)(1 - t),  alpha_t = alpha t + (1 - alpha)"
        "(1 - t); mean over N L elements (torchvision's default reduction is none)",
        reference="torchvision.ops.sigmoid_focal_loss (formula; torchvision is not a dependency)",
    ),
    loss(
        "asymmetric",
        f"{_LOSS}:AsymmetricLoss",
        **_COMMON,
        elementwise=True,
        summary="ASL: focal exponents apart for positives and negatives, easy negatives shifted to zero loss",
        params=(
            # Around the paper's (4, 0 or 1, 0.05)
            Param("gamma_neg", 4.0, "focusing exponent of the negatives", ge=0.0, short="gn", tune=(0.0, 6.0)),
            Param("gamma_pos", 1.0, "focusing exponent of the positives", ge=0.0, short="gp", tune=(0.0, 2.0)),
            Param("clip", 0.05, "probability shift m: negatives with p <= m cost nothing", ge=0.0, lt=1.0,
                  short="m", tune=(0.0, 0.2)),
            Param("eps", 1e-8, "floor of the probabilities inside the log", ge=0.0, lt=1.0, short="eps"),
        ),
        paper="Ridnik et al., Asymmetric Loss For Multi-Label Classification, ICCV 2021",
        formula="t: -(1 - p)^gamma_pos log max(p, eps);  1 - t: -p_m^gamma_neg log max(1 - p_m, eps),  "
        "p_m = max(p - clip, 0); mean over N L elements (the reference sums: sum = mean x N x L)",
        reference="Alibaba-MIIL/ASL AsymmetricLoss (its -loss.sum() is reduction='sum')",
    ),
    loss(
        "multilabel_soft_margin",
        f"{_LOSS}:MultiLabelSoftMarginLoss",
        **_COMMON,
        elementwise=True,
        summary="binary cross-entropy averaged over each sample's labels (one value per sample)",
        paper="PyTorch's MultiLabelSoftMarginLoss",
        formula="-1/L sum_l [t_l log p_l + (1 - t_l) log(1 - p_l)] per sample",
        reference="torch.nn.functional.multilabel_soft_margin_loss",
    ),
    loss(
        "zlpr",
        f"{_LOSS}:ZLPRLoss",
        **_COMMON,
        elementwise=True,
        summary="multi-label categorical cross-entropy: positives above 0, negatives below, softmax-coupled",
        paper="Su et al., ZLPR: A Novel Loss for Multi-label Classification, arXiv:2208.02955, 2022",
        formula="log(1 + sum_{l: t_l = 0} e^{z_l}) + log(1 + sum_{l: t_l = 1} e^{-z_l}) per sample",
        reference="formula",
    ),
    loss(
        "two_way",
        f"{_LOSS}:TwoWayLoss",
        **_COMMON,
        summary="two-way loss: every positive against every negative, within each sample and within each label",
        params=(
            # A factor of 4 either side of the paper's T_p = 4, T_n = 1
            Param("pos_temperature", 4.0, "T_p: softness of the maximum over the positives", gt=0.0, short="Tp",
                  tune=(1.0, 16.0, "log")),
            Param("neg_temperature", 1.0, "T_n: softness of the maximum over the negatives", gt=0.0, short="Tn",
                  tune=(0.25, 4.0, "log")),
        ),
        paper="Kobayashi, Two-way Multi-Label Loss, CVPR 2023",
        formula="ell(P, N) = softplus(T_n LSE_{n in N}(z_n / T_n) + T_p LSE_{p in P}(-z_p / T_p)); mean of ell "
        "over the samples with a positive + mean of ell over the labels with a positive (over the batch)",
        reference="formula (the authors' code masks with -100 instead of -inf)",
    ),
]

_AUROC = "sklearn.metrics.roc_auc_score(average='macro') on sigmoid(z), over the labels with both classes"
_AP = "sklearn.metrics.average_precision_score(average='macro') on sigmoid(z), over the labels with a positive"

METRICS = [
    # Multi-label, on logits (N, L) and 0/1 targets (N, L); average_precision (first) picks the best epoch
    metric("average_precision", f"{_MET}:average_precision", **_METRIC, higher_is_better=True, default=True,
           summary="mAP: macro average precision over labels; a label without positives is skipped",
           formula="mean_l sum_k (R_k - R_{k-1}) P_k over the distinct scores of label l, highest first",
           reference=_AP),
    metric("auroc", f"{_MET}:auroc", **_METRIC, higher_is_better=True, default=True,
           summary="macro ROC AUC over labels; a label whose targets hold one class is skipped",
           formula="mean_l P(z_l of a positive > z_l of a negative), ties 1/2", reference=_AUROC),
    metric("f1", f"{_MET}:f1", **_METRIC, higher_is_better=True, default=True,
           summary="macro F1 of the decisions sigmoid(z) > 0.5 (a label with nothing to find or found scores 0)",
           formula="mean_l 2 TP_l / (2 TP_l + FP_l + FN_l)",
           reference="sklearn.metrics.f1_score(average='macro', zero_division=0) on sigmoid(z) > 0.5"),
    # The trainer chooses the threshold on val (best_threshold) and applies it on test (f1_at).
    metric("f1_best", f"{_MET}:f1_best", **_METRIC, higher_is_better=True,
           fitted_on_val=f"{_MET}:best_threshold", applied_with=f"{_MET}:f1_at",
           summary="macro F1 at one threshold for all labels, chosen to maximise it on val and applied on test "
                   "(best_threshold on val, f1_at on test)",
           formula="f1_at(z, t, tau*),  tau* = argmax_tau f1_at(z_val, t_val, tau)",
           reference="sklearn.metrics.f1_score(average='macro', zero_division=0) on sigmoid(z) > tau*"),
    metric("hamming_loss", f"{_MET}:hamming_loss", **_METRIC, higher_is_better=False, default=True,
           summary="share of wrong label decisions sigmoid(z) > 0.5", formula="1/(N L) sum_il [p_il > 0.5 != t_il]",
           reference="sklearn.metrics.hamming_loss"),
    # Two-class sets (breast_cancer, moons, circles) with class logits (N, 2) and labels (N,): a set of more
    # classes raises, so neither is a default.
    metric("binary_auroc", f"{_MET}:binary_auroc", family="classification", input="logits", target_kind="labels",
           task="classification", higher_is_better=True, value_range=(0.0, 1.0),
           summary="ROC AUC of class 1 scored by softmax(z)_1; two-class sets only",
           formula="P(s of a class-1 sample > s of a class-0 sample), s = z_1 - z_0 (the order of softmax(z)_1)",
           reference="sklearn.metrics.roc_auc_score(y, softmax(z)[:, 1])"),
    metric("binary_average_precision", f"{_MET}:binary_average_precision", family="classification",
           input="logits", target_kind="labels", task="classification", higher_is_better=True,
           value_range=(0.0, 1.0), summary="average precision of class 1 scored by softmax(z)_1; two-class sets only",
           formula="sum_k (R_k - R_{k-1}) P_k over the distinct scores s = z_1 - z_0, highest first",
           reference="sklearn.metrics.average_precision_score(y, softmax(z)[:, 1])"),
]

#: The shapes generator's parameters (split included), declared once in catalog/datasets.py.
SHAPES_PARAMS = {e.name: e for e in _datasets.ENTRIES}["shapes"].params


def shapes_facts(task: str, classes: int | None):
    def facts(p: dict) -> Facts:
        return Facts(task, p["n_samples"], classes, image_shape=(p["channels"], p["size"], p["size"]))
    return facts


DATASETS = [
    dataset("multilabel", f"{_DATA}:multilabel", family="synthetic", task="multilabel", rules=SPLIT_RULES + GENERATED,
            params=SPLIT + (
                Param("n_samples", 1000, "number of samples generated", type="int", ge=20, le=10_000_000),
                Param("n_features", 20, "number of features (word counts)", type="int", ge=1, le=100_000),
                Param("n_classes", 5, "number of labels L", type="int", ge=1, le=10_000),
                Param("n_labels", 2, "mean number of labels per sample (Poisson)", type="int", ge=1),
                Param("random_state", 0, "seed of the generator (the run seed fixes the split, not the data)",
                      type="int", ge=0, lt=2**32),
            ),
            facts=lambda p: Facts("multilabel", p["n_samples"], p["n_classes"], features=p["n_features"]),
            summary="scikit-learn's make_multilabel_classification: bag-of-words samples with 0/1 labels",
            paper="McCallum, Multi-label text classification with a mixture model trained by EM, AAAI workshop 1999"),
    dataset("shapes_multilabel", f"{_DATA}:shapes_multilabel", family="synthetic", task="multilabel", images=True,
            params=SHAPES_PARAMS, rules=SPLIT_RULES + GENERATED, facts=shapes_facts("multilabel", 4),
            summary="the shapes images; per image which kinds can be seen: circle, square, triangle, line (0/1)"),
]

ENTRIES = LOSSES + METRICS + DATASETS
