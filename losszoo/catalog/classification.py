"""Cross-entropy variants on class logits. Implementations: losszoo/losses/classification.py."""

from losszoo.catalog import Param, loss

_IMPL = "losszoo.losses.classification"

ENTRIES = [
    loss(
        "cross_entropy",
        f"{_IMPL}:CrossEntropyLoss",
        family="cross_entropy",
        summary="softmax cross-entropy with label smoothing, class weights and ignore_index",
        input="logits",
        target_kind="labels",
        elementwise=True,
        context=("num_classes",),
        params=(
            Param("label_smoothing", 0.0, "mass spread uniformly over all classes", ge=0.0, le=1.0, short="ls"),
            Param("weight", None, "one weight per class", type="floats", nullable=True, ge=0.0, short="w"),
            Param("ignore_index", -100, "target value that contributes nothing", type="int", short="ign"),
        ),
        paper="Szegedy et al., Rethinking the Inception Architecture (label smoothing), CVPR 2016",
        formula="-sum_c q_c log softmax(z)_c,  q = (1 - ls) onehot(y) + ls / C",
        reference="torch.nn.functional.cross_entropy",
    ),
    loss(
        "focal",
        f"{_IMPL}:FocalLoss",
        family="cross_entropy",
        summary="down-weights easy examples by (1 - p_t)^gamma",
        input="logits",
        target_kind="labels",
        elementwise=True,
        context=("num_classes",),
        params=(
            Param("gamma", 2.0, "focusing exponent; 0 is cross-entropy", ge=0.0, short="g"),
            Param(
                "alpha", None, "class weight: none, one number, or one per class",
                type="float_or_floats", nullable=True, ge=0.0, short="a",
            ),
        ),
        paper="Lin et al., Focal Loss for Dense Object Detection, ICCV 2017",
        formula="-alpha_t (1 - p_t)^gamma log p_t,  p_t = softmax(z)_y; mean over samples",
        reference="formula",
    ),
]
