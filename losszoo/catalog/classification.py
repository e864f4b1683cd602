"""Cross-entropy variants on class logits. Implementations: losszoo/losses/classification.py.

Every loss here takes logits (N, C) and labels (N,), or per-pixel logits
(N, C, H, W) and labels (N, H, W), and accepts reduction mean | sum | none.
"""

from losszoo.catalog import Param, Rule, loss, one_per_class

_IMPL = "losszoo.losses.classification"
_COMMON = dict(family="cross_entropy", input="logits", target_kind="labels", elementwise=True, stackable=True)
_CLASS_AXIS = ("num_classes",)  # optional: checked against the logits when given
_IMBALANCE_CONTEXT = ("num_classes", "class_counts")

ENTRIES = [
    loss(
        "cross_entropy",
        f"{_IMPL}:CrossEntropyLoss",
        **_COMMON,
        summary="softmax cross-entropy with label smoothing, class weights and ignore_index",
        optional_context=_CLASS_AXIS,
        params=(
            Param("label_smoothing", 0.0, "mass spread uniformly over all classes", ge=0.0, le=1.0, short="ls",
                  tune=(0.0, 0.3)),  # Szegedy et al. use 0.1; past 0.3 the target is mostly noise
            Param("weight", None, "one weight per class", type="floats", nullable=True, ge=0.0, short="w"),
            Param("ignore_index", -100, "target value that contributes nothing", type="int", short="ign"),
        ),
        rules=(one_per_class("weight"),),
        paper="Szegedy et al., Rethinking the Inception Architecture (label smoothing), CVPR 2016",
        formula="-sum_c q_c log softmax(z)_c,  q = (1 - ls) onehot(y) + ls / C",
        reference="torch.nn.functional.cross_entropy",
    ),
    loss(
        "focal",
        f"{_IMPL}:FocalLoss",
        **_COMMON,
        summary="down-weights easy examples by (1 - p_t)^gamma",
        optional_context=_CLASS_AXIS,
        params=(
            Param("gamma", 2.0, "focusing exponent; 0 is cross-entropy", ge=0.0, short="g",
                  tune=(0.0, 5.0)),  # Lin et al. sweep 0 to 5 (Table 1)
            # No range for alpha: one number scales every class alike (the learning rate's job), a list is per class.
            Param(
                "alpha", None, "class weight: none, one number, or one per class",
                type="float_or_floats", nullable=True, ge=0.0, short="a",
            ),
        ),
        rules=(one_per_class("alpha"),),
        paper="Lin et al., Focal Loss for Dense Object Detection, ICCV 2017",
        formula="-alpha_t (1 - p_t)^gamma log p_t,  p_t = softmax(z)_y; mean over samples",
        reference="formula",
    ),
    loss(
        "poly1",
        f"{_IMPL}:Poly1Loss",
        **_COMMON,
        summary="cross-entropy plus epsilon (1 - p_t): re-weights the first polynomial term",
        optional_context=_CLASS_AXIS,
        params=(
            # PolyLoss sweeps epsilon from its bound -1 (best for detection) past ImageNet's best, 2
            Param("epsilon", 1.0, "extra weight of the (1 - p_t) term; 0 is cross-entropy", ge=-1.0, short="eps",
                  tune=(-1.0, 5.0)),
        ),
        paper="Leng et al., PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions, ICLR 2022",
        formula="-log p_t + epsilon (1 - p_t),  p_t = softmax(z)_y",
        reference="formula",
    ),
    loss(
        "gce",
        f"{_IMPL}:GCELoss",
        **_COMMON,
        summary="generalized cross-entropy (L_q): between cross-entropy (q -> 0) and MAE (q = 1), noise-robust",
        optional_context=_CLASS_AXIS,
        params=(
            Param("q", 0.7, "exponent on p_t; -> 0 is cross-entropy, 1 is mean absolute error", gt=0.0, le=1.0,
                  short="q", tune=(0.1, 1.0)),  # the paper compares q from 0.1 to 1 (0.7 its default)
        ),
        paper="Zhang & Sabuncu, Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy Labels, "
        "NeurIPS 2018",
        formula="(1 - p_t^q) / q",
        reference="formula",
    ),
    loss(
        "sce",
        f"{_IMPL}:SCELoss",
        **_COMMON,
        summary="symmetric cross-entropy: cross-entropy plus reverse cross-entropy, noise-robust",
        optional_context=_CLASS_AXIS,
        params=(
            # The paper's grids; lows > 0 keep the constructor's "alpha and beta not both 0" out of reach.
            Param("alpha", 0.1, "weight of the cross-entropy term", ge=0.0, short="a", tune=(0.01, 1.0, "log")),
            Param("beta", 1.0, "weight of the reverse cross-entropy term", ge=0.0, short="b", tune=(0.1, 10.0, "log")),
            # No range: the reverse term is -beta A (1 - p_t), so only beta * A matters and beta's range covers it.
            Param("log_zero", -4.0, "value taken for log 0 in the reverse term (A in the paper)", lt=0.0, short="A"),
        ),
        rules=(Rule("alpha", "sce with alpha = beta = 0 is zero everywhere; set alpha or beta > 0",
                    lambda v: v["alpha"] + v["beta"] > 0),),
        paper="Wang et al., Symmetric Cross Entropy for Robust Learning with Noisy Labels, ICCV 2019",
        formula="alpha CE - beta sum_c p_c log q_c = -alpha log p_t - beta A (1 - p_t),  log 0 := A",
        reference="formula",
    ),
    loss(
        "taylor_ce",
        f"{_IMPL}:TaylorCELoss",
        **_COMMON,
        summary="Taylor cross-entropy: -log p_t expanded around p_t = 1 and cut after `order` terms",
        optional_context=_CLASS_AXIS,
        params=(
            Param(
                "order", 2, "number of Taylor terms; 1 is mean absolute error, more tends to cross-entropy",
                type="int", ge=1, le=1000, short="n",
                tune=(1, 10),  # 1 is MAE; the paper's best orders are small, and by 10 it is close to cross-entropy
            ),
        ),
        paper="Feng et al., Can Cross Entropy Loss Be Robust to Label Noise?, IJCAI 2020",
        formula="sum_{k=1..order} (1 - p_t)^k / k",
        reference="formula",
    ),
    loss(
        "bi_tempered",
        f"{_IMPL}:BiTemperedLoss",
        **_COMMON,
        summary="bi-tempered logistic loss: bounded (t1 < 1) with a heavy-tailed softmax (t2 > 1)",
        optional_context=_CLASS_AXIS,
        params=(
            # Amid et al.'s settings lie in t1 0.5..1, t2 1..4; t2 >= 1 keeps clear of the finite-support case.
            Param("t1", 0.8, "temperature of the log; < 1 bounds the loss, 1 is the usual log", ge=0.0, le=1.0,
                  short="t1", tune=(0.5, 1.0)),
            Param("t2", 1.2, "temperature of the softmax; > 1 heavy tail, < 1 finite support, 1 is softmax",
                  ge=0.0, le=5.0, short="t2", tune=(1.0, 4.0)),
        ),
        rules=(Rule("t1", "t2 = {t2:g} < 1 gives probabilities of exactly 0, whose log_t1 is -inf unless t1 < 1; "
                    "use t1 < 1 or t2 >= 1", lambda v: v["t2"] >= 1.0 or v["t1"] < 1.0),),
        paper="Amid et al., Robust Bi-Tempered Logistic Loss Based on Bregman Divergences, NeurIPS 2019",
        formula="-log_t1(p_y) - (1 - sum_c p_c^(2-t1)) / (2-t1),  p = exp_t2(z - lambda(z)),  sum_c p_c = 1; "
        "t1 = t2 = 1 is cross-entropy",
        reference="formula",
    ),
    loss(
        "ldam",
        f"{_IMPL}:LDAMLoss",
        **_COMMON,
        summary="label-distribution-aware margin: larger target margins for rarer classes",
        context=_IMBALANCE_CONTEXT,
        params=(
            Param("max_margin", 0.5, "margin of the rarest class; others get max_margin (n_min / n_j)^(1/4)",
                  gt=0.0, short="m", tune=(0.05, 1.0, "log")),  # the paper sets C so that it is 0.5
            Param("scale", 30.0, "multiplies the logits after the margin (the paper uses cosine logits)",
                  gt=0.0, short="s", tune=(1.0, 64.0, "log")),  # the authors' code uses 30
        ),
        paper="Cao et al., Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss, NeurIPS 2019",
        formula="CE(s (z - Delta_y onehot(y)), y),  Delta_j = C / n_j^(1/4),  max_j Delta_j = max_margin",
        reference="formula",
    ),
    loss(
        "class_balanced",
        f"{_IMPL}:ClassBalancedLoss",
        **_COMMON,
        summary="weights a base loss by the inverse effective number of samples of each class",
        context=_IMBALANCE_CONTEXT,
        params=(
            Param("beta", 0.9999, "effective-number decay; 0 weights all classes equally, -> 1 weights by 1/n",
                  ge=0.0, lt=1.0, short="b",
                  # Cui et al.'s grid is 0.9 .. 0.9999; a linear range draws mostly below 0.99 (log(1 - beta) would not)
                  tune=(0.9, 0.9999)),
            Param(
                "base", "cross_entropy",
                "loss weighted: cross_entropy or focal (softmax), sigmoid or sigmoid_focal (one-vs-all, summed)",
                type="str", choices=("cross_entropy", "focal", "sigmoid", "sigmoid_focal"), short="base",
            ),
            # No range: the default base ignores it; a recipe choosing a focal base names gamma in its tune space.
            Param("gamma", 2.0, "focusing exponent of the focal bases (ignored by the others)", ge=0.0, short="g"),
        ),
        paper="Cui et al., Class-Balanced Loss Based on Effective Number of Samples, CVPR 2019",
        formula="w_y L_base(z, y),  w_c = (1 - beta) / (1 - beta^n_c) scaled so that sum_c w_c = C",
        reference="formula",
    ),
    loss(
        "confidence_penalty",
        f"{_IMPL}:ConfidencePenaltyLoss",
        **_COMMON,
        summary="cross-entropy minus beta times the entropy of the prediction: discourages over-confidence",
        optional_context=_CLASS_AXIS,
        params=(Param("beta", 0.1, "weight of the entropy bonus; 0 is cross-entropy", ge=0.0, short="b",
                      tune=(0.1, 4.0, "log")),),  # the paper's grid runs from 0.1 to a few units
        paper="Pereyra et al., Regularizing Neural Networks by Penalizing Confident Output Distributions, "
        "ICLR 2017 workshop",
        formula="-log p_t - beta H(p),  H(p) = -sum_c p_c log p_c",
        reference="formula",
    ),
]
