"""Margin losses: angular margins on embeddings with learnable class centres, and
hinge margins on logits. Implementations: losszoo/losses/margin.py. Margins are in
radians (pytorch-metric-learning takes ArcFace's in degrees)."""

import math

from losszoo.catalog import Param, Rule, loss
from losszoo.registry import LossEntry

_IMPL = "losszoo.losses.margin"
_CONTEXT = ("num_classes", "embedding_dim")
_RIGHT_ANGLE = math.pi / 2
#: Scale of cosine logits: from CosFace's lower bound (eq. 8: about 4 for 10 classes at p = 0.9) to twice the
#: papers' 64 (the Reality Check searched scales as well as margins).
_COSINE_SCALE = (4.0, 128.0, "log")
#: Additive angular margins (radians): the Reality Check's and the papers' sweeps lie within it.
_ANGULAR_MARGIN = (0.1, 0.7)
#: Weight of a batch in a running statistic: the papers fix 0.01.
_MOMENTUM = (0.001, 0.1, "log")
#: A hinge margin on raw logits: a decade either side of the SVM's 1 (the logits' scale is learned, so the margin
#: acts through the start of training and the weight decay).
_LOGIT_MARGIN = (0.1, 10.0, "log")


def _scale(default: float, tune: tuple | None = _COSINE_SCALE) -> Param:
    return Param("scale", default, "multiplies the logits before softmax", gt=0.0, short="s", tune=tune)


def _unnormalised_scale() -> Param:
    """L-Softmax's and SphereFace's scale: no range, since the learned norms ||x|| (and ||W||) absorb it and the
    papers have none (pytorch-metric-learning added it)."""
    return _scale(1.0, tune=None)


def _embedding_loss(name: str, cls: str, **metadata) -> LossEntry:
    return loss(
        name,
        f"{_IMPL}:{cls}",
        family="margin",
        input="embeddings",
        target_kind="labels",
        context=_CONTEXT,
        classifies=True,
        stackable=True,
        **metadata,
    )


ENTRIES = [
    _embedding_loss(
        "normface",
        "NormFaceLoss",
        summary="softmax on scaled cosines to normalised class centres, no margin",
        params=(_scale(20.0),),
        paper="Wang et al., NormFace: L2 Hypersphere Embedding for Face Verification, ACM MM 2017",
        formula="CE(s * cos(theta_j))",
        reference="pytorch_metric_learning.losses.NormalizedSoftmaxLoss (temperature = 1 / scale)",
    ),
    _embedding_loss(
        "large_margin_softmax",
        "LargeMarginSoftmaxLoss",
        summary="multiplicative angular margin m*theta on the un-normalised softmax (L-Softmax)",
        params=(
            Param("margin", 4, "multiplies the target angle", type="int", ge=1, short="m",
                  tune=(1, 4)),  # the paper compares m = 1 .. 4
            _unnormalised_scale(),
        ),
        paper="Liu et al., Large-Margin Softmax Loss for Convolutional Neural Networks, ICML 2016",
        formula="CE(s ||x|| ||W_j|| psi_j), psi_y = (-1)^k cos(m theta_y) - 2k, theta_y in [k pi/m, (k+1) pi/m]",
        reference="pytorch_metric_learning.losses.LargeMarginSoftmaxLoss",
    ),
    _embedding_loss(
        "sphereface",
        "SphereFaceLoss",
        summary="multiplicative angular margin m*theta with unit class centres (A-Softmax)",
        params=(
            Param("margin", 4, "multiplies the target angle", type="int", ge=1, short="m",
                  tune=(1, 4)),  # the paper compares m = 1 .. 4
            _unnormalised_scale(),
        ),
        paper="Liu et al., SphereFace: Deep Hypersphere Embedding for Face Recognition, CVPR 2017",
        formula="CE(s ||x|| psi_j), psi_y = (-1)^k cos(m theta_y) - 2k, psi_j = cos(theta_j)",
        reference="pytorch_metric_learning.losses.SphereFaceLoss",
    ),
    _embedding_loss(
        "cosface",
        "CosFaceLoss",
        summary="additive cosine margin (large margin cosine loss)",
        params=(
            Param("margin", 0.35, "subtracted from the target cosine", gt=0.0, lt=1.0, short="m",
                  tune=(0.05, 0.5)),  # the paper sweeps m from 0 to 0.45; 0.35 is its choice
            _scale(64.0),
        ),
        paper="Wang et al., CosFace: Large Margin Cosine Loss, CVPR 2018",
        formula="CE(s * (cos(theta_j) - m [j = y]))",
        reference="pytorch_metric_learning.losses.CosFaceLoss",
    ),
    _embedding_loss(
        "arcface",
        "ArcFaceLoss",
        summary="additive angular margin",
        params=(
            Param("margin", 0.5, "added to the target angle (radians)", gt=0.0, lt=_RIGHT_ANGLE, short="m",
                  tune=_ANGULAR_MARGIN),
            _scale(64.0),
            Param("easy_margin", False, "apply the margin only where cos(theta) > 0", type="bool", short="easy"),
        ),
        paper="Deng et al., ArcFace: Additive Angular Margin Loss, CVPR 2019",
        formula="CE(s * cos(theta_j + m [j = y])); past theta + m > pi: cos(theta) - m sin(m)",
        reference="pytorch_metric_learning.losses.ArcFaceLoss (margin in degrees there)",
    ),
    _embedding_loss(
        "combined_margin",
        "CombinedMarginLoss",
        summary="SphereFace, ArcFace and CosFace margins in one: cos(m1 theta + m2) - m3",
        params=(
            # Around the paper's combinations (1, 0.3, 0.2), (0.9, 0.4, 0.15) and its SphereFace m1 = 1.35
            Param("m1", 1.0, "multiplies the target angle (SphereFace)", gt=0.0, short="m1", tune=(0.9, 1.5)),
            Param("m2", 0.3, "added to the target angle, radians (ArcFace)", ge=0.0, lt=_RIGHT_ANGLE, short="m2",
                  tune=(0.0, 0.5)),
            Param("m3", 0.2, "subtracted from the target cosine (CosFace)", ge=0.0, lt=1.0, short="m3",
                  tune=(0.0, 0.35)),
            _scale(64.0),
        ),
        paper="Deng et al., ArcFace: Additive Angular Margin Loss (combined margin, sec. 3.3), CVPR 2019",
        formula="CE(s * logit_j), logit_y = cos(m1 theta_y + m2) - m3 (monotonic fallback past m1 theta + m2 > pi)",
        reference="formula; (1, m, 0) is arcface and (1, 0, m) is cosface",
    ),
    _embedding_loss(
        "subcenter_arcface",
        "SubCenterArcFaceLoss",
        summary="ArcFace against the nearest of k sub-centres per class (robust to label noise)",
        params=(
            Param("k", 3, "sub-centres per class", type="int", ge=1, short="k", tune=(1, 10)),  # paper: K up to 10
            Param("margin", 0.5, "added to the target angle (radians)", gt=0.0, lt=_RIGHT_ANGLE, short="m",
                  tune=_ANGULAR_MARGIN),
            _scale(64.0),
        ),
        paper="Deng et al., Sub-center ArcFace: Boosting Face Recognition by Large-Scale Noisy Web Faces, ECCV 2020",
        formula="ArcFace on cos(theta_j) = max_k cos(x, W_jk)",
        reference="pytorch_metric_learning.losses.SubCenterArcFaceLoss (margin in degrees there)",
    ),
    _embedding_loss(
        "adacos",
        "AdaCosLoss",
        summary="cosine softmax whose scale adapts to the batch, no margin",
        params=(
            Param("dynamic", True, "adapt the scale every training step (false: fixed AdaCos)", type="bool",
                  short="dyn"),
        ),
        rules=(Rule("num_classes", "needs at least 3 classes: its scale sqrt(2) log(C - 1) is 0 for C = {num_classes}",
                    lambda v: v["num_classes"] >= 3, needs=("num_classes",)),),
        paper="Zhang et al., AdaCos: Adaptively Scaling Cosine Logits for Deep Face Representations, CVPR 2019",
        formula="CE(s_t cos(theta_j)), s_t = log(mean_i sum_{j != y_i} exp(s_{t-1} cos theta_ij)) "
        "/ cos(min(pi/4, median theta_y)), s_0 = sqrt(2) log(C - 1)",
        reference="formula",
    ),
    _embedding_loss(
        "curricularface",
        "CurricularFaceLoss",
        summary="ArcFace margin with hard negatives re-weighted by a running curriculum",
        params=(
            Param("margin", 0.5, "added to the target angle (radians)", gt=0.0, lt=_RIGHT_ANGLE, short="m",
                  tune=_ANGULAR_MARGIN),
            _scale(64.0),
            Param("momentum", 0.01, "weight of the batch in the running mean t", gt=0.0, le=1.0, short="mom",
                  tune=_MOMENTUM),
        ),
        paper="Huang et al., CurricularFace: Adaptive Curriculum Learning Loss for Deep Face Recognition, CVPR 2020",
        formula="CE(s * logit_j), logit_y = cos(theta_y + m), logit_j = cos theta_j (t + cos theta_j) "
        "if cos theta_j > cos(theta_y + m) else cos theta_j; t = running mean of cos theta_y",
        reference="formula",
    ),
    _embedding_loss(
        "adaface",
        "AdaFaceLoss",
        summary="margin that adapts to image quality through the embedding norm",
        params=(
            Param("margin", 0.4, "margin size m (radians and cosine)", gt=0.0, lt=_RIGHT_ANGLE, short="m",
                  tune=_ANGULAR_MARGIN),
            Param("h", 0.333, "concentration of the normalised norm", gt=0.0, short="h",
                  tune=(0.1, 1.0)),  # a factor of 3 around the paper's 0.333
            _scale(64.0),
            Param("momentum", 0.01, "weight of the batch in the running norm statistics", gt=0.0, le=1.0,
                  short="mom", tune=_MOMENTUM),
        ),
        paper="Kim et al., AdaFace: Quality Adaptive Margin for Face Recognition, CVPR 2022",
        formula="CE(s * logit_j), logit_y = cos(theta_y - m z) - (m + m z), "
        "z = clip(h (||x|| - mu) / (sigma + eps), -1, 1)",
        reference="formula",
        # The paper stops the gradient through the norm, so finite differences see a slope autograd does not;
        # tests/losses/test_margin.py gradchecks it with the norms held fixed instead.
        no_gradcheck="the embedding norm is detached by design (as in the paper)",
    ),
    _embedding_loss(
        "magface",
        "MagFaceLoss",
        summary="ArcFace margin growing with the embedding magnitude, plus a magnitude regulariser",
        params=(
            # Ranges around the paper's (10, 110, 0.45, 0.8, 35) that meet only at their ends, so every point keeps
            # l_a < u_a and l_m <= u_m (the rules below).
            Param("l_a", 10.0, "lower bound of the magnitude", gt=0.0, short="la", tune=(1.0, 20.0, "log")),
            Param("u_a", 110.0, "upper bound of the magnitude (> l_a)", gt=0.0, short="ua", tune=(40.0, 150.0, "log")),
            Param("l_m", 0.45, "margin at the lower magnitude (radians)", ge=0.0, lt=_RIGHT_ANGLE, short="lm",
                  tune=(0.2, 0.5)),
            Param("u_m", 0.8, "margin at the upper magnitude (radians, >= l_m)", ge=0.0, lt=_RIGHT_ANGLE, short="um",
                  tune=(0.5, 1.0)),
            Param("lambda_g", 35.0, "weight of the magnitude regulariser", ge=0.0, short="lg",
                  tune=(5.0, 100.0, "log")),
            _scale(64.0),
        ),
        rules=(
            Rule("l_a", "must be below u_a = {u_a:g}, got {l_a:g}", lambda v: v["l_a"] < v["u_a"]),
            Rule("u_m", "must be >= l_m = {l_m:g}, got {u_m:g}", lambda v: v["l_m"] <= v["u_m"]),
        ),
        paper="Meng et al., MagFace: A Universal Representation for Face Recognition and Quality Assessment, CVPR 2021",
        formula="CE(s * cos(theta_j + m(a) [j = y])) + lambda_g mean(a / u_a^2 + 1 / a), a = clip(||x||, l_a, u_a), "
        "m(a) linear from l_m at l_a to u_m at u_a",
        reference="formula",
    ),
    _embedding_loss(
        "center_loss",
        "CenterLoss",
        summary="softmax cross-entropy plus the squared distance to a learnable class centre",
        params=(Param("lambda_c", 0.003, "weight of the centre term", ge=0.0, short="lc",
                      tune=(1e-4, 0.1, "log")),),  # the paper's sweep of lambda runs 1e-4 .. 0.1
        paper="Wen et al., A Discriminative Feature Learning Approach for Deep Face Recognition, ECCV 2016",
        formula="mean_i [CE(W x_i + b, y_i) + lambda_c / 2 ||x_i - c_{y_i}||^2]",
        reference="formula",
    ),
    _embedding_loss(
        "softmax",
        "SoftmaxLoss",
        summary="plain softmax on embeddings: a learnable linear classifier, no normalisation, no margin",
        paper="the baseline of Liu et al., SphereFace, CVPR 2017 and of every margin paper since",
        formula="CE(W x + b)",
        reference="torch.nn.functional.cross_entropy(F.linear(x, W, b))",
    ),
    loss(
        "multi_margin",
        f"{_IMPL}:MultiMarginLoss",
        family="margin",
        summary="multi-class hinge on logits (Weston-Watkins)",
        input="logits",
        target_kind="labels",
        optional_context=("num_classes",),
        elementwise=True,
        stackable=True,
        params=(
            Param("p", 1, "power of the hinge", type="int", choices=(1, 2), short="p"),
            Param("margin", 1.0, "required gap between the target logit and the others", gt=0.0, short="m",
                  tune=_LOGIT_MARGIN),
        ),
        paper="Weston & Watkins, Support Vector Machines for Multi-Class Pattern Recognition, ESANN 1999",
        formula="sum_{j != y} max(0, margin - z_y + z_j)^p / C",
        reference="torch.nn.MultiMarginLoss",
    ),
    loss(
        "squared_hinge",
        f"{_IMPL}:SquaredHingeLoss",
        family="margin",
        summary="one-vs-rest squared hinge on logits (L2-SVM per class)",
        input="logits",
        target_kind="labels",
        optional_context=("num_classes",),
        elementwise=True,
        stackable=True,
        params=(Param("margin", 1.0, "required logit for the target, minus it for the others", gt=0.0, short="m",
                      tune=_LOGIT_MARGIN),),
        paper="Tang, Deep Learning using Linear Support Vector Machines, ICML workshop 2013",
        formula="(1/C) sum_j max(0, margin - t_j z_j)^2, t_j = +1 if j = y else -1",
        reference="formula",
    ),
]
