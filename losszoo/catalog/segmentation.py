"""Segmentation losses on per-pixel logits ``(N, C, H, W)`` and integer masks ``(N, H, W)``.
Implementations: losszoo/losses/segmentation.py.

dice, tversky and lovasz_softmax equal kornia 0.9; every loss takes the softmax
inside and drops pixels labelled ``ignore_index`` from every sum.
"""

from typing import Any

from losszoo.catalog import Param, Rule, loss
from losszoo.registry import LossEntry

_IMPL = "losszoo.losses.segmentation"

_IGNORE = Param("ignore_index", -100, "mask value of pixels that count nowhere", type="int", short="ign")
_EPS = Param("eps", 1e-8, "added to the denominator of the overlap ratio", ge=0.0, short="eps")
# Salehi et al. sweep alpha = 0.1 .. 0.9 with beta = 1 - alpha; here the two are drawn apart, and lows > 0 keep
# the rule "alpha and beta not both 0" at every point.
_ALPHA = Param("alpha", 0.3, "weight of the false positives", ge=0.0, short="a", tune=(0.1, 0.9))
_BETA = Param("beta", 0.7, "weight of the false negatives", ge=0.0, short="b", tune=(0.1, 0.9))
#: Every segmentation loss: a softmax over one class is constant.
_TWO_CLASSES = Rule("num_classes", "needs at least 2 classes (a binary task passes two channels), got {num_classes}",
                    lambda v: v["num_classes"] >= 2, needs=("num_classes",))
_TVERSKY_WEIGHTS = Rule("alpha", "alpha and beta cannot both be 0: every index would be 1",
                        lambda v: v["alpha"] + v["beta"] > 0)


def _average(default: str) -> Param:
    return Param(
        "average", default, "micro: pool classes and pixels per image; macro: mean over the classes present",
        type="str", choices=("micro", "macro"), short="avg",
    )


def _segmentation_loss(name: str, cls: str, rules: tuple[Rule, ...] = (), **metadata: Any) -> LossEntry:
    return loss(
        name,
        f"{_IMPL}:{cls}",
        family="segmentation",
        input="pixel_logits",
        target_kind="masks",
        optional_context=("num_classes",),
        rules=(_TWO_CLASSES, *rules),
        **metadata,
    )


ENTRIES = [
    _segmentation_loss(
        "dice",
        "DiceLoss",
        summary="soft Dice overlap of softmax probabilities and one-hot masks",
        params=(_average("micro"), _EPS, _IGNORE),
        paper="Milletari, Navab & Ahmadi, V-Net, 3DV 2016",
        formula="1 - 2 sum p y / (sum (p + y) + eps), per image (micro) or per image and present class (macro)",
        reference="kornia.losses.dice_loss",
    ),
    _segmentation_loss(
        "jaccard",
        "JaccardLoss",
        summary="soft IoU: soft intersection over soft union",
        params=(_average("macro"), _EPS, _IGNORE),
        paper="Rahman & Wang, Optimizing Intersection-over-Union in Deep Neural Networks, ISVC 2016",
        formula="1 - sum p y / (sum (p + y - p y) + eps), per image and present class (macro) or per image (micro)",
        reference="formula",
    ),
    _segmentation_loss(
        "tversky",
        "TverskyLoss",
        summary="Dice with separate weights on false positives and false negatives",
        params=(_ALPHA, _BETA, _EPS, _IGNORE),
        rules=(_TVERSKY_WEIGHTS,),
        paper="Salehi, Erdogmus & Gholipour, Tversky Loss Function for Image Segmentation, MLMI 2017",
        formula="1 - mean_c tp / (tp + alpha fp + beta fn + eps), over the classes present in each image",
        reference="kornia.losses.tversky_loss",
    ),
    _segmentation_loss(
        "focal_tversky",
        "FocalTverskyLoss",
        summary="Tversky loss raised to a power gamma (paper: 1/gamma) to focus on poorly segmented classes",
        params=(
            _ALPHA,
            _BETA,
            Param("gamma", 0.75, "exponent on 1 - TI (the paper's 1/gamma; 1 is tversky)", gt=0.0, short="g",
                  tune=(0.33, 1.0)),  # the paper's gamma in [1, 3], inverted
            _EPS,
            _IGNORE,
        ),
        rules=(_TVERSKY_WEIGHTS,),
        paper="Abraham & Khan, A Novel Focal Tversky Loss Function, ISBI 2019",
        formula="mean_c (1 - TI_c)^gamma,  TI = tp / (tp + alpha fp + beta fn + eps)",
        reference="formula",
    ),
    _segmentation_loss(
        "lovasz_softmax",
        "LovaszSoftmaxLoss",
        summary="Lovasz extension of the Jaccard loss: a convex surrogate of the mean IoU",
        params=(_IGNORE,),
        paper="Berman, Triki & Blaschko, The Lovasz-Softmax Loss, CVPR 2018",
        formula="mean_{image, c} sum_k e_(k) (J(k) - J(k-1)),  e = |p_c - y_c| sorted decreasing, J = 1 - IoU",
        reference="kornia.losses.lovasz_softmax_loss",
    ),
    _segmentation_loss(
        "dice_ce",
        "DiceCELoss",
        summary="soft Dice plus pixel cross-entropy",
        params=(
            # Only the ratio of the two weights matters (their common scale is the learning rate's), so one is
            # searched, a decade either side of nnU-Net's 1:1; lambda_dice > 0 keeps the rule below.
            Param("lambda_dice", 1.0, "weight of the Dice term", ge=0.0, short="ld", tune=(0.1, 10.0, "log")),
            Param("lambda_ce", 1.0, "weight of the cross-entropy term", ge=0.0, short="lce"),
            _average("micro"),
            _EPS,
            _IGNORE,
        ),
        rules=(Rule("lambda_dice", "lambda_dice and lambda_ce cannot both be 0: the loss would be 0",
                    lambda v: v["lambda_dice"] + v["lambda_ce"] > 0),),
        paper="Isensee et al., nnU-Net, Nature Methods 2021",
        formula="lambda_dice * dice + lambda_ce * mean_pixels(-log p_y)",
        reference="formula",
    ),
]
