"""Bounding-box losses, metrics and the ``shapes_boxes`` dataset.

Input kind ``boxes``: predicted boxes ``(N, 4)`` and true boxes ``(N, 4)`` as
corners ``(x1, y1, x2, y2)``, one box per image. The model head outputs four
raw numbers read as two opposite corners: the IoU losses and the metrics order
them, so ``x2 < x1`` is the swapped box, never a negative area.
Implementations: losszoo/losses/boxes.py, losszoo/metrics/boxes.py,
losszoo/data/shapes.py. ``ENTRIES`` holds losses, metrics and datasets alike:
each registry takes the entries of its own kind.
"""

from losszoo.catalog import Param, dataset, loss, metric
from losszoo.catalog.datasets import GENERATED, SPLIT_RULES
from losszoo.catalog.multilabel import SHAPES_PARAMS, shapes_facts

_LOSS = "losszoo.losses.boxes"
_MET = "losszoo.metrics.boxes"
_COMMON = dict(family="boxes", input="boxes", target_kind="boxes", elementwise=True, stackable=True)
_EPS = Param("eps", 1e-7, "added to the denominators (torchvision's guard)", gt=0.0, le=1e-2, short="eps")
_ORDERED = "; corners ordered, IoU = |B ∩ G| / (|B ∪ G| + eps); mean over boxes"
_ZHENG = "Zheng et al., Distance-IoU Loss: Faster and Better Learning for Bounding Box Regression, AAAI 2020"

LOSSES = [
    loss("iou", f"{_LOSS}:IoULoss", **_COMMON, params=(_EPS,),
         summary="1 - IoU of the predicted and true box; apart boxes get no gradient",
         paper="Yu et al., UnitBox: An Advanced Object Detection Network, ACM MM 2016",
         formula="1 - IoU" + _ORDERED, reference="formula (torchvision's IoU convention)"),
    loss("giou", f"{_LOSS}:GIoULoss", **_COMMON, params=(_EPS,),
         summary="1 - generalized IoU: the empty part of the enclosing box pulls apart boxes together",
         paper="Rezatofighi et al., Generalized Intersection over Union: A Metric and a Loss for Bounding Box "
               "Regression, CVPR 2019",
         formula="1 - IoU + (|C| - |B ∪ G|) / (|C| + eps),  C the smallest enclosing box" + _ORDERED,
         reference="torchvision.ops.generalized_box_iou_loss (formula; torchvision is not a dependency)"),
    loss("diou", f"{_LOSS}:DIoULoss", **_COMMON, params=(_EPS,),
         summary="1 - IoU plus the squared centre distance over the enclosing box's squared diagonal",
         paper=_ZHENG,
         formula="1 - IoU + rho^2 / (c^2 + eps),  rho the centre distance, c the enclosing diagonal" + _ORDERED,
         reference="torchvision.ops.distance_box_iou_loss (formula)"),
    loss("ciou", f"{_LOSS}:CIoULoss", **_COMMON, params=(_EPS,),
         summary="DIoU plus an aspect-ratio term weighted by alpha (held constant in the backward pass)",
         paper=_ZHENG,
         formula="1 - IoU + rho^2 / (c^2 + eps) + alpha v,  v = 4/pi^2 (atan(w_G/h_G) - atan(w_B/h_B))^2,  "
                 "alpha = v / (1 - IoU + v + eps) without gradient" + _ORDERED,
         reference="torchvision.ops.complete_box_iou_loss (formula)",
         no_gradcheck="alpha is a constant in the backward pass (the paper's code, torchvision), so finite "
                      "differences disagree by design"),
    loss("box_smooth_l1", f"{_LOSS}:BoxSmoothL1Loss", **_COMMON,
         params=(Param("beta", 1.0, "where the loss turns linear, in box units (images are 1 wide); 0 is L1",
                       # corner errors are fractions of the image: from nearly L1 to quadratic over all of it
                       ge=0.0, short="b", tune=(0.001, 1.0, "log")),),
         summary="smooth L1 on the four corner coordinates (regression's smooth_l1 on boxes)",
         paper="Girshick, Fast R-CNN, ICCV 2015",
         formula="r^2 / (2 beta) if |r| < beta else |r| - beta / 2 per coordinate; mean over 4 N coordinates",
         reference="torch.nn.functional.smooth_l1_loss"),
]

_METRIC = dict(family="boxes", input="boxes", target_kind="boxes", task="boxes", higher_is_better=True,
               value_range=(0.0, 1.0), default=True)  # mean_iou (first) picks the best epoch
_IOU = "IoU = |B ∩ G| / |B ∪ G| of the ordered predicted box B and the true box G (0 if both are empty)"

METRICS = [
    metric("mean_iou", f"{_MET}:mean_iou", **_METRIC, summary="mean IoU of each predicted box with its true box",
           formula="1/N sum_i IoU(B_i, G_i),  " + _IOU, reference="formula"),
    metric("ap50", f"{_MET}:ap50", **_METRIC,
           summary="share of images whose box has IoU >= 0.5: with one unscored box per image, the precision "
                   "(= recall) at IoU 0.5, not an area under a precision-recall curve",
           formula="1/N sum_i [IoU(B_i, G_i) >= 0.5],  " + _IOU, reference="formula"),
]

DATASETS = [
    dataset("shapes_boxes", "losszoo.data.shapes:shapes_boxes", family="synthetic", task="boxes",
            images=True, params=tuple(p for p in SHAPES_PARAMS if p.name != "shapes"), rules=SPLIT_RULES + GENERATED,
            facts=shapes_facts("boxes", None),
            summary="the shapes images with one object each, wholly inside; target its exact bounding box "
                    "(x1, y1, x2, y2) in [0, 1]"),
]

ENTRIES = LOSSES + METRICS + DATASETS
