"""Angular-margin losses on embeddings with learnable class centres. Implementations:
losszoo/losses/margin.py. Margins are in radians."""

import math

from losszoo.catalog import Param, loss

_IMPL = "losszoo.losses.margin"
_CONTEXT = ("num_classes", "embedding_dim")

ENTRIES = [
    loss(
        "cosface",
        f"{_IMPL}:CosFaceLoss",
        family="margin",
        summary="additive cosine margin (large margin cosine loss)",
        input="embeddings",
        target_kind="labels",
        context=_CONTEXT,
        params=(
            Param("margin", 0.35, "subtracted from the target cosine", gt=0.0, lt=1.0, short="m"),
            Param("scale", 64.0, "multiplies the cosines before softmax", gt=0.0, short="s"),
        ),
        paper="Wang et al., CosFace: Large Margin Cosine Loss, CVPR 2018",
        formula="CE(s * (cos(theta_j) - m [j = y]))",
        reference="pytorch_metric_learning.losses.CosFaceLoss",
    ),
    loss(
        "arcface",
        f"{_IMPL}:ArcFaceLoss",
        family="margin",
        summary="additive angular margin",
        input="embeddings",
        target_kind="labels",
        context=_CONTEXT,
        params=(
            Param("margin", 0.5, "added to the target angle (radians)", gt=0.0, lt=math.pi / 2, short="m"),
            Param("scale", 64.0, "multiplies the cosines before softmax", gt=0.0, short="s"),
            Param("easy_margin", False, "apply the margin only where cos(theta) > 0", type="bool", short="easy"),
        ),
        paper="Deng et al., ArcFace: Additive Angular Margin Loss, CVPR 2019",
        formula="CE(s * cos(theta_j + m [j = y])); past theta + m > pi: cos(theta) - m sin(m)",
        reference="pytorch_metric_learning.losses.ArcFaceLoss (margin in degrees there)",
    ),
]
