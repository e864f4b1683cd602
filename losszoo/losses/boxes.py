"""Bounding-box regression losses: predicted boxes ``(N, 4)`` against true boxes ``(N, 4)``.

Boxes are corners ``(x1, y1, x2, y2)``, one predicted box per true box. The
model head outputs four unconstrained numbers; the IoU losses read them as two
opposite corners and order them (:func:`order_corners`), so a prediction with
``x2 < x1`` is the box with those two values swapped, and a box of zero width
or height is a valid, empty box (IoU 0, every value and gradient finite).
``box_smooth_l1`` compares the four raw coordinates and orders nothing.

The IoU losses follow torchvision.ops (``generalized_box_iou_loss``,
``distance_box_iou_loss``, ``complete_box_iou_loss``) and its ``eps = 1e-7``
guards; torchvision's default reduction is ``"none"``, ours the mean over boxes.
``reduction="none"`` returns ``(N,)`` (``(N, 4)`` for box_smooth_l1).
Half-precision boxes (bf16 autocast included) are computed in float32.
Metadata: ``losszoo/catalog/boxes.py``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from losszoo.losses._common import check_reduction, reduce
from losszoo.losses.regression import smooth_l1_loss

_FOUR_OVER_PI_SQUARED = 4.0 / math.pi**2

# --------------------------------------------------------------------------- geometry


def check_boxes(boxes: torch.Tensor, target: torch.Tensor) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 4 or target.shape != boxes.shape:
        raise ValueError(
            f"expected predicted and true boxes of shape (N, 4) as (x1, y1, x2, y2), "
            f"got {tuple(boxes.shape)} and {tuple(target.shape)}"
        )


def _float(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes as float32 at least: half precision (and integers) lose areas, as torchvision's ``_upcast``."""
    return boxes if boxes.dtype in (torch.float32, torch.float64) else boxes.float()


def order_corners(boxes: torch.Tensor) -> torch.Tensor:
    """``(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))``: any two opposite corners as a proper box.

    >>> order_corners(torch.tensor([[3.0, 0.0, 1.0, 2.0]])).tolist()
    [[1.0, 0.0, 3.0, 2.0]]
    """
    x1, y1, x2, y2 = boxes.unbind(dim=-1)
    return torch.stack([torch.minimum(x1, x2), torch.minimum(y1, y2), torch.maximum(x1, x2),
                        torch.maximum(y1, y2)], dim=-1)


def _overlap(boxes: torch.Tensor, target: torch.Tensor, eps: float) -> tuple[torch.Tensor, ...]:
    """IoU, the union and the enclosing box's corners of ordered boxes, elementwise.

    ``IoU = inter / (union + eps)``, torchvision's convention.
    """
    x1, y1, x2, y2 = boxes.unbind(dim=-1)
    gx1, gy1, gx2, gy2 = target.unbind(dim=-1)
    inter = (torch.minimum(x2, gx2) - torch.maximum(x1, gx1)).clamp_min(0) * (
        torch.minimum(y2, gy2) - torch.maximum(y1, gy1)
    ).clamp_min(0)
    union = (x2 - x1) * (y2 - y1) + (gx2 - gx1) * (gy2 - gy1) - inter
    enclosing = (torch.minimum(x1, gx1), torch.minimum(y1, gy1), torch.maximum(x2, gx2), torch.maximum(y2, gy2))
    return inter / (union + eps), union, enclosing


def _centre_penalty(boxes: torch.Tensor, target: torch.Tensor, enclosing: tuple[torch.Tensor, ...],
                    eps: float) -> torch.Tensor:
    """``rho^2 / (c^2 + eps)``: squared distance of the centres over the enclosing box's squared diagonal."""
    cx1, cy1, cx2, cy2 = enclosing
    diagonal = (cx2 - cx1) ** 2 + (cy2 - cy1) ** 2 + eps
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2 - (target[..., :2] + target[..., 2:]) / 2
    return (centre**2).sum(dim=-1) / diagonal


def _aspect_angle(boxes: torch.Tensor) -> torch.Tensor:
    """``arctan(w / h)`` of ordered boxes: pi/2 for a box of zero height, 0 for a box of no size.

    As ``atan2(w, h)``, which equals torchvision's ``atan(w / h)`` for ``h > 0``
    and stays finite (value and gradient) where ``h = 0``; the empty box sees a
    safe denominator so that ``atan2(0, 0)`` passes no NaN gradient back.
    """
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    empty = (w == 0) & (h == 0)
    return torch.atan2(w, torch.where(empty, 1.0, h))


# --------------------------------------------------------------------------- the math


def iou_loss(boxes: torch.Tensor, target: torch.Tensor, eps: float = 1e-7, reduction: str = "mean") -> torch.Tensor:
    """``1 - IoU`` (Yu et al., UnitBox: An Advanced Object Detection Network, ACM MM 2016).

    ``IoU = |B ∩ G| / (|B ∪ G| + eps)``. Boxes that do not overlap all cost 1
    with a zero gradient: the gap GIoU, DIoU and CIoU close.

    >>> round(iou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 0.0, 3.0, 2.0]])).item(), 4)
    0.6667
    """
    boxes, target = order_corners(_float(boxes)), order_corners(_float(target))
    iou, _, _ = _overlap(boxes, target, eps)
    return reduce(1.0 - iou, reduction)


def giou_loss(boxes: torch.Tensor, target: torch.Tensor, eps: float = 1e-7, reduction: str = "mean") -> torch.Tensor:
    """``1 - GIoU`` (Rezatofighi et al., Generalized Intersection over Union, CVPR 2019);
    torchvision's ``generalized_box_iou_loss``.

    ``GIoU = IoU - (|C| - |B ∪ G|) / (|C| + eps)`` with ``C`` the smallest box
    enclosing both: apart boxes are pulled together. In ``[0, 2)``.

    >>> round(giou_loss(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[2.0, 0.0, 3.0, 1.0]])).item(), 4)
    1.3333
    """
    boxes, target = order_corners(_float(boxes)), order_corners(_float(target))
    iou, union, (cx1, cy1, cx2, cy2) = _overlap(boxes, target, eps)
    area = (cx2 - cx1) * (cy2 - cy1)
    return reduce(1.0 - iou + (area - union) / (area + eps), reduction)


def diou_loss(boxes: torch.Tensor, target: torch.Tensor, eps: float = 1e-7, reduction: str = "mean") -> torch.Tensor:
    """``1 - IoU + rho^2 / c^2`` (Zheng et al., Distance-IoU Loss, AAAI 2020);
    torchvision's ``distance_box_iou_loss``.

    ``rho`` is the distance between the boxes' centres and ``c`` the diagonal of
    the smallest enclosing box (``c^2 + eps`` in the division). In ``[0, 2)``.

    >>> round(diou_loss(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[2.0, 0.0, 3.0, 1.0]])).item(), 4)
    1.4
    """
    boxes, target = order_corners(_float(boxes)), order_corners(_float(target))
    iou, _, enclosing = _overlap(boxes, target, eps)
    return reduce(1.0 - iou + _centre_penalty(boxes, target, enclosing, eps), reduction)


def ciou_loss(boxes: torch.Tensor, target: torch.Tensor, eps: float = 1e-7, reduction: str = "mean") -> torch.Tensor:
    """``1 - IoU + rho^2 / c^2 + alpha v`` (Zheng et al., Distance-IoU Loss, AAAI 2020: Complete IoU);
    torchvision's ``complete_box_iou_loss``.

    ``v = 4 / pi^2 (arctan(w_G / h_G) - arctan(w_B / h_B))^2`` measures the
    difference in aspect ratio and ``alpha = v / (1 - IoU + v + eps)`` weighs it.
    As in the paper's code and torchvision, ``alpha`` is a constant in the
    backward pass (computed without gradient), so finite differences of this
    function do not match its gradient. The angles are ``atan2(w, h)``
    (:func:`_aspect_angle`), finite for boxes of zero height.

    >>> round(ciou_loss(torch.tensor([[0.0, 0.0, 2.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 2.0]])).item(), 4)
    0.7629
    """
    boxes, target = order_corners(_float(boxes)), order_corners(_float(target))
    iou, _, enclosing = _overlap(boxes, target, eps)
    v = _FOUR_OVER_PI_SQUARED * (_aspect_angle(target) - _aspect_angle(boxes)) ** 2
    with torch.no_grad():
        alpha = v / (1.0 - iou + v + eps)
    return reduce(1.0 - iou + _centre_penalty(boxes, target, enclosing, eps) + alpha * v, reduction)


def box_smooth_l1_loss(
    boxes: torch.Tensor, target: torch.Tensor, beta: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Smooth L1 on the four coordinates (Girshick, Fast R-CNN 2015): regression's ``smooth_l1`` on ``(N, 4)``.

    ``reduction="none"`` gives ``(N, 4)`` and the mean runs over all ``4 N``
    coordinates, as ``torch.nn.functional.smooth_l1_loss`` on the boxes. The
    corners are compared as predicted, not ordered.

    >>> box_smooth_l1_loss(torch.tensor([[0.0, 0.0, 1.0, 3.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]])).item()
    0.375
    """
    return smooth_l1_loss(_float(boxes), _float(target), beta, reduction)


# --------------------------------------------------------------------------- modules


class BoxLoss(nn.Module):
    """Base for losses on predicted and true boxes ``(N, 4)``: checks both, holds ``reduction``."""

    function = staticmethod(iou_loss)

    def __init__(self, eps: float = 1e-7, reduction: str = "mean"):
        super().__init__()
        self.eps = eps
        self.reduction = check_reduction(reduction)

    def forward(self, boxes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_boxes(boxes, target)
        return self.function(boxes, target, self.eps, self.reduction)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, reduction={self.reduction!r}"


class IoULoss(BoxLoss):
    """``1 - IoU`` of ordered boxes."""


class GIoULoss(BoxLoss):
    """``1 - GIoU`` (Rezatofighi et al. 2019)."""

    function = staticmethod(giou_loss)


class DIoULoss(BoxLoss):
    """``1 - DIoU`` (Zheng et al. 2020)."""

    function = staticmethod(diou_loss)


class CIoULoss(BoxLoss):
    """``1 - CIoU`` (Zheng et al. 2020); the aspect weight ``alpha`` is held constant in the backward pass."""

    function = staticmethod(ciou_loss)


class BoxSmoothL1Loss(nn.Module):
    """Smooth L1 on the four box coordinates, mean over coordinates."""

    def __init__(self, beta: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.beta = beta
        self.reduction = check_reduction(reduction)

    def forward(self, boxes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_boxes(boxes, target)
        return box_smooth_l1_loss(boxes, target, self.beta, self.reduction)
