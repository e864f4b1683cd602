"""Metric-learning losses on a batch of embeddings and its labels. Implementations:
losszoo/losses/metric_learning.py.

Each equals pytorch-metric-learning 2.9 with its default distance (Euclidean
between L2-normalised embeddings, or cosine similarity) and its default reducer.
Pair and triplet losses need batches with several samples per class; proxy
losses hold one learnable proxy per class as ``weight``.
"""

from typing import Any

from losszoo.catalog import Param, loss
from losszoo.registry import Entry

_IMPL = "losszoo.losses.metric_learning"
_PML = "pytorch_metric_learning.losses"
#: Distance margins: distances of L2-normalised embeddings lie in [0, 2]. The ranges of a positive and a negative
#: margin meet only at 0.5, so a positive margin never passes the negative one.
_POS_MARGIN = (0.0, 0.5)
_NEG_MARGIN = (0.5, 2.0)


def _pair_loss(name: str, cls: str, **metadata: Any) -> Entry:
    return loss(
        name,
        f"{_IMPL}:{cls}",
        family="metric_learning",
        input="embeddings",
        target_kind="labels",
        optional_context=("num_classes",),
        needs_pairs=True,
        stackable=True,
        **metadata,
    )


def _proxy_loss(name: str, cls: str, **metadata: Any) -> Entry:
    return loss(
        name,
        f"{_IMPL}:{cls}",
        family="metric_learning",
        input="embeddings",
        target_kind="labels",
        context=("num_classes", "embedding_dim"),
        stackable=True,
        **metadata,
    )


ENTRIES = [
    _pair_loss(
        "contrastive",
        "ContrastiveLoss",
        summary="pulls positive pairs within pos_margin, pushes negatives beyond neg_margin",
        params=(
            Param("pos_margin", 0.0, "positive pairs closer than this cost nothing", ge=0.0, lt=2.0, short="pm",
                  tune=_POS_MARGIN),
            Param("neg_margin", 1.0, "negative pairs farther than this cost nothing", gt=0.0, short="nm",
                  tune=_NEG_MARGIN),
        ),
        paper="Hadsell, Chopra & LeCun, Dimensionality Reduction by Learning an Invariant Mapping, CVPR 2006",
        formula="mean+_pos [d - pos_margin]_+ + mean+_neg [neg_margin - d]_+,  d: L2 distance of normalised embeddings",
        reference=f"{_PML}.ContrastiveLoss",
    ),
    _pair_loss(
        "triplet",
        "TripletLoss",
        summary="anchor closer to its positive than to its negative by a margin; all, hard or semihard triplets",
        params=(
            Param("margin", 0.05, "required gap between negative and positive distance", gt=0.0, short="m",
                  tune=(0.01, 1.0, "log")),  # the Reality Check's best margin is about 0.1
            Param(
                "mining", "all", "which triplets of the batch: all, batch-hard, or semi-hard",
                type="str", choices=("all", "hard", "semihard"), short="mine",
            ),
        ),
        paper=(
            "Schroff, Kalenichenko & Philbin, FaceNet, CVPR 2015; "
            "Hermans, Beyer & Leibe, In Defense of the Triplet Loss, 2017"
        ),
        formula="mean+ [d_ap - d_an + margin]_+ over the mined triplets",
        reference=f"{_PML}.TripletMarginLoss (+ miners.BatchHardMiner / TripletMarginMiner semihard)",
    ),
    _pair_loss(
        "multi_similarity",
        "MultiSimilarityLoss",
        summary="soft weighting of all positive and negative pairs around a similarity base",
        params=(
            # Around the paper's (2, 50, 0.5), alpha reaching down to 0.01
            Param("alpha", 2.0, "sharpness on positive pairs", gt=0.0, short="a", tune=(0.01, 20.0, "log")),
            Param("beta", 50.0, "sharpness on negative pairs", gt=0.0, short="b", tune=(1.0, 100.0, "log")),
            Param("base", 0.5, "cosine similarity the pairs are pushed past", ge=-1.0, le=1.0, short="base",
                  tune=(0.0, 1.0)),
        ),
        paper="Wang et al., Multi-Similarity Loss with General Pair Weighting, CVPR 2019",
        formula="mean_i 1/a log(1 + sum_P exp(-a (S - base))) + 1/b log(1 + sum_N exp(b (S - base)))",
        reference=f"{_PML}.MultiSimilarityLoss",
    ),
    _pair_loss(
        "circle",
        "CircleLoss",
        summary="pair similarity optimisation with self-paced weights towards a circular boundary",
        params=(
            Param(
                "margin", 0.4, "relaxation m: optima 1 + m and -m, thresholds 1 - m and m", ge=0.0, lt=1.0, short="m",
                tune=(0.0, 0.5),
            ),
            # The paper uses (m, gamma) = (0.25, 256) for faces and (0.4, 80) for fine-grained retrieval
            Param("gamma", 80.0, "scale of the similarities", gt=0.0, short="g", tune=(16.0, 256.0, "log")),
        ),
        paper="Sun et al., Circle Loss: A Unified Perspective of Pair Similarity Optimization, CVPR 2020",
        formula="softplus(lse_P -g a_p (s - 1 + m) + lse_N g a_n (s - m)),  a_p = [1 + m - s]_+, a_n = [s + m]_+",
        reference=f"{_PML}.CircleLoss",
        no_gradcheck="the self-paced weights a_p, a_n are constants in the gradient (paper, authors' code, PML), "
        "so the gradient is not that of the value; tests check it against the frozen-weight loss",
    ),
    _pair_loss(
        "supcon",
        "SupConLoss",
        summary="supervised contrastive: softmax over the batch with every same-label sample as a positive",
        params=(Param("temperature", 0.1, "divides the cosine similarities", gt=0.0, short="t",
                      tune=(0.03, 1.0, "log")),),  # the paper's best is 0.1; low temperatures need large batches
        paper="Khosla et al., Supervised Contrastive Learning, NeurIPS 2020",
        formula="-1/|P_i| sum_p log(exp(s_ip / t) / sum_{a != i} exp(s_ia / t))",
        reference=f"{_PML}.SupConLoss",
    ),
    _pair_loss(
        "npairs",
        "NPairsLoss",
        summary="one anchor-positive pair per class; softmax of each anchor over all positives",
        paper="Sohn, Improved Deep Metric Learning with Multi-class N-pair Loss Objective, NeurIPS 2016",
        formula="CE(cos(anchors, positives), arange(K)) over the first two samples of each class",
        reference=f"{_PML}.NPairsLoss",
    ),
    _pair_loss(
        "lifted_structure",
        "LiftedStructureLoss",
        summary="each positive pair against all negatives of both its samples (smoothed hardest negative)",
        params=(
            Param("pos_margin", 0.0, "subtracted from the positive distance", ge=0.0, lt=2.0, short="pm",
                  tune=_POS_MARGIN),
            Param("neg_margin", 1.0, "negative pairs are pushed beyond this distance", gt=0.0, short="nm",
                  tune=_NEG_MARGIN),
        ),
        paper="Oh Song et al., Deep Metric Learning via Lifted Structured Feature Embedding, CVPR 2016",
        formula="mean_P [log(sum_Ni exp(nm - d) + sum_Nj exp(nm - d)) + d_ij - pm]_+^2 / 2",
        reference=f"{_PML}.LiftedStructureLoss",
    ),
    _proxy_loss(
        "proxy_anchor",
        "ProxyAnchorLoss",
        summary="each class proxy as an anchor against all samples of the batch",
        params=(
            # Around the paper's (0.1, 32), the values of its ablations of delta and alpha
            Param("margin", 0.1, "cosine margin around the proxies", ge=0.0, lt=1.0, short="m", tune=(0.0, 0.4)),
            Param("alpha", 32.0, "scale of the cosines", gt=0.0, short="a", tune=(8.0, 128.0, "log")),
        ),
        paper="Kim et al., Proxy Anchor Loss for Deep Metric Learning, CVPR 2020",
        formula="1/|P+| sum_c log(1 + sum_{X_c+} exp(-a (s - m))) + 1/C sum_c log(1 + sum_{X_c-} exp(a (s + m)))",
        reference=f"{_PML}.ProxyAnchorLoss (proxies copied across)",
    ),
    _proxy_loss(
        "proxy_nca",
        "ProxyNCALoss",
        summary="softmax over negative squared distances to one proxy per class",
        params=(
            # ProxyNCA++ found a low temperature (1/9: scale 9) essential; the Reality Check tuned this scale too
            Param("scale", 1.0, "multiplies the negative squared distances (PML softmax_scale)", gt=0.0, short="s",
                  tune=(1.0, 32.0, "log")),
        ),
        paper="Movshovitz-Attias et al., No Fuss Distance Metric Learning using Proxies, ICCV 2017",
        formula="CE(-scale |x/|x| - p_c/|p_c||^2, y)",
        reference=f"{_PML}.ProxyNCALoss (proxies copied across)",
    ),
]
