"""Box metrics on predicted boxes ``(N, 4)`` and true boxes ``(N, 4)``, one of each per image.

Boxes are corners ``(x1, y1, x2, y2)``; predictions are read as the IoU losses
read them, as two opposite corners in either order
(``losszoo.losses.boxes.order_corners``). IoU here is exact, without the
losses' ``eps``: ``|B ∩ G| / |B ∪ G|``, and 0 when both boxes are empty.
Metadata: ``losszoo/catalog/boxes.py``.
"""

from __future__ import annotations

import torch

from losszoo.losses.boxes import check_boxes, order_corners


def box_iou(boxes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of each predicted box with its own true box, ``(N,)`` in float64.

    >>> box_iou(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 0.0, 3.0, 2.0]])).tolist()
    [0.3333333333333333]
    """
    check_boxes(boxes, target)
    x1, y1, x2, y2 = order_corners(boxes.double()).unbind(dim=-1)
    gx1, gy1, gx2, gy2 = order_corners(target.double()).unbind(dim=-1)
    inter = (torch.minimum(x2, gx2) - torch.maximum(x1, gx1)).clamp_min(0) * (
        torch.minimum(y2, gy2) - torch.maximum(y1, gy1)
    ).clamp_min(0)
    union = (x2 - x1) * (y2 - y1) + (gx2 - gx1) * (gy2 - gy1) - inter
    return torch.where(union > 0, inter / union.clamp_min(torch.finfo(torch.float64).tiny), 0.0)


def mean_iou(boxes: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over images of the IoU of the predicted box with the true one.

    >>> mean_iou(torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]] * 2))
    0.625
    """
    if boxes.shape[0] == 0:
        return float("nan")
    return box_iou(boxes, target).mean().item()


def ap50(boxes: torch.Tensor, target: torch.Tensor) -> float:
    """Share of images whose predicted box has IoU >= 0.5 with the true box.

    With exactly one predicted and one true box per image and no confidence
    scores, this is the precision (and equally the recall) of the detections at
    the IoU threshold 0.5 used by PASCAL VOC and COCO's AP50 (>= 0.5, as
    COCO); it is not an area under a precision-recall curve, which would need
    scores to rank the boxes.

    >>> ap50(torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]] * 2))
    0.5
    """
    if boxes.shape[0] == 0:
        return float("nan")
    return (box_iou(boxes, target) >= 0.5).double().mean().item()
