"""Evaluation metrics. Implementations: losszoo/metrics/<task>.py.

Each target is a pure function ``fn(output, target) -> float``; ``input`` names
what ``output`` is (logits, values, embeddings, pixel_logits) and the target
is the matching labels, values or masks. ``default`` metrics are those a run
reports when its recipe names none (each that its task and loss can feed, in
this order; the first picks the best epoch); ``value_range`` bounds values and
confidence intervals.
"""

import math

from losszoo.catalog import metric

_CLS = "losszoo.metrics.classification"
_REG = "losszoo.metrics.regression"
_RET = "losszoo.metrics.retrieval"
_SEG = "losszoo.metrics.segmentation"
_GUO = "Guo et al., On Calibration of Modern Neural Networks, ICML 2017"
_MUSGRAVE = "Musgrave et al., A Metric Learning Reality Check, ECCV 2020"
_LFW = "Huang et al., Labeled Faces in the Wild, UMass TR 07-49, 2007"
_PML = "pytorch_metric_learning.utils.accuracy_calculator.AccuracyCalculator (cosine, ref_includes_query)"
_RETRIEVAL = "each embedding queries all the others by cosine similarity, itself excluded: "

# One nearest-neighbour search serves all three retrieval metrics: the trainer calls this once.
_ONE_SEARCH = f"{_RET}:retrieval_scores"
_UNIT, _POSITIVE = (0.0, 1.0), (0.0, math.inf)  # where values (and confidence intervals) can lie

ENTRIES = [
    # Classification, on class logits (N, C) and labels (N,)
    metric("accuracy", f"{_CLS}:accuracy",
           value_range=_UNIT, default=True, family="classification", input="logits", target_kind="labels",
           task="classification", higher_is_better=True, summary="share of samples whose argmax is the label",
           formula="1/N sum_i [argmax_c z_ic = y_i]", reference="sklearn.metrics.accuracy_score"),
    metric("macro_f1", f"{_CLS}:macro_f1",
           value_range=_UNIT, default=True, family="classification", input="logits", target_kind="labels",
           task="classification", higher_is_better=True,
           summary="unweighted mean of per-class F1 over the classes in labels or predictions",
           formula="mean_c 2 TP_c / (2 TP_c + FP_c + FN_c)",
           reference="sklearn.metrics.f1_score(average='macro', zero_division=0)"),
    metric("nll", f"{_CLS}:nll",
           value_range=_POSITIVE, default=True, family="classification", input="logits", target_kind="labels",
           task="classification", higher_is_better=False, summary="mean negative log-likelihood of the softmax",
           formula="-1/N sum_i log softmax(z_i)_{y_i}", reference="sklearn.metrics.log_loss"),
    metric("ece", f"{_CLS}:ece",
           value_range=_UNIT, default=True, family="calibration", input="logits", target_kind="labels",
           task="classification", higher_is_better=False,
           summary="expected calibration error of the top-class confidence, 15 equal-width bins", paper=_GUO,
           formula="sum_b |B_b| / N |acc(B_b) - conf(B_b)|,  B_b = {i: max_c p_ic in (b/15, (b+1)/15]}",
           reference="formula"),
    # Regression, on predictions (N,) and targets (N,) in the data's units
    metric("rmse", f"{_REG}:rmse",
           value_range=_POSITIVE, default=True, family="regression", input="values", target_kind="values",
           task="regression", higher_is_better=False, summary="root mean squared error",
           formula="sqrt(1/N sum_i (p_i - y_i)^2)",
           reference="sklearn.metrics.root_mean_squared_error"),
    metric("mae", f"{_REG}:mae",
           value_range=_POSITIVE, default=True, family="regression", input="values", target_kind="values",
           task="regression", higher_is_better=False, summary="mean absolute error", formula="1/N sum_i |p_i - y_i|",
           reference="sklearn.metrics.mean_absolute_error"),
    metric("r2", f"{_REG}:r2",
           value_range=(-math.inf, 1.0), default=True, family="regression", input="values", target_kind="values",
           task="regression", higher_is_better=True, summary="coefficient of determination",
           formula="1 - sum_i (y_i - p_i)^2 / sum_i (y_i - mean(y))^2", reference="sklearn.metrics.r2_score"),
    # Retrieval and verification, on embeddings (N, D) and labels (N,)
    metric("precision_at_1", f"{_RET}:precision_at_1",
           value_range=_UNIT, default=True, family="retrieval", input="embeddings",
           target_kind="labels", task="classification", higher_is_better=True, paper=_MUSGRAVE,
           summary="share of queries whose nearest neighbour (cosine) shares their class",
           formula=_RETRIEVAL + "mean_q rel_q(1)", reference=_PML, computed_with=_ONE_SEARCH),
    metric("r_precision", f"{_RET}:r_precision",
           value_range=_UNIT, default=True, family="retrieval", input="embeddings", target_kind="labels",
           task="classification", higher_is_better=True, paper=_MUSGRAVE,
           summary="share of same-class embeddings among each query's R nearest (R = its class size - 1)",
           formula=_RETRIEVAL + "mean_q 1/R_q sum_{i<=R_q} rel_q(i)", reference=_PML, computed_with=_ONE_SEARCH),
    metric("map_at_r", f"{_RET}:map_at_r",
           value_range=_UNIT, default=True, family="retrieval", input="embeddings", target_kind="labels",
           task="classification", higher_is_better=True, paper=_MUSGRAVE,
           summary="mean average precision over each query's R nearest (R = its class size - 1)",
           formula=_RETRIEVAL + "mean_q 1/R_q sum_{i<=R_q} rel_q(i) P_q(i),  P_q(i) = 1/i sum_{j<=i} rel_q(j)",
           reference=_PML, computed_with=_ONE_SEARCH),
    metric("verification_accuracy", f"{_RET}:verification_accuracy",
           value_range=_UNIT, family="verification", input="embeddings",
           target_kind="labels", task="classification", higher_is_better=True, paper=_LFW,
           summary="same/different-class accuracy of balanced pairs by cosine threshold, 10-fold "
                   "cross-validated (0.5 is chance)",
           formula="mean over 10 folds of acc_fold([cos(x_i, x_j) > t*]), t* best on the other 9 folds; "
                   "all pairs (or a seeded sample of 100,000), negatives subsampled to the positives' count",
           reference="formula"),
    metric("tar_at_far", f"{_RET}:tar_at_far",
           value_range=_UNIT, family="verification", input="embeddings", target_kind="labels",
           task="classification", higher_is_better=True, paper=_LFW,
           summary="true accept rate of same-class pairs at a 1% false accept rate (cosine threshold)",
           formula="P(cos > t | same),  t = min{t: P(cos > t | different) <= 1e-2}", reference="formula"),
    # Segmentation, on per-pixel logits (N, C, H, W) and masks (N, H, W), pooled over the set
    metric("dice", f"{_SEG}:dice",
           value_range=_UNIT, default=True, family="segmentation", input="pixel_logits", target_kind="masks",
           task="segmentation", higher_is_better=True,
           summary="mean per-class Dice of argmax predictions; classes absent from both skipped",
           formula="mean_c 2 |P_c ∩ T_c| / (|P_c| + |T_c|)", reference="formula"),
    metric("miou", f"{_SEG}:miou",
           value_range=_UNIT, default=True, family="segmentation", input="pixel_logits", target_kind="masks",
           task="segmentation", higher_is_better=True,
           summary="mean per-class intersection over union; classes absent from both skipped",
           formula="mean_c |P_c ∩ T_c| / |P_c ∪ T_c|", reference="formula"),
    metric("pixel_accuracy", f"{_SEG}:pixel_accuracy",
           value_range=_UNIT, default=True, family="segmentation", input="pixel_logits",
           target_kind="masks", task="segmentation", higher_is_better=True,
           summary="share of pixels whose argmax is the true class", formula="1/P sum_p [argmax_c z_pc = y_p]",
           reference="formula"),
]
