"""Segmentation metrics on per-pixel logits ``(N, C, H, W)`` and masks ``(N, H, W)``.

Metadata: ``losszoo/catalog/metrics.py``. Predictions are the per-pixel argmax.
Scores are pooled over every pixel of the set (one confusion matrix), not
averaged per image; the per-class scores are averaged over the classes that
appear in the prediction or the truth (a class absent from both is skipped).
Pixels whose mask equals ``ignore_index`` are left out.
"""

from __future__ import annotations

import torch

from losszoo.metrics.classification import check_class_labels


def confusion_matrix(
    logits: torch.Tensor, masks: torch.Tensor, ignore_index: int | None = None
) -> torch.Tensor:
    """``(C, C)`` int64 pixel counts, rows the true class and columns the predicted class."""
    if logits.ndim < 2 or masks.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"expected logits (N, C, H, W) and masks (N, H, W), got {tuple(logits.shape)} and "
                         f"{tuple(masks.shape)}")
    num_classes = logits.shape[1]
    check_class_labels(masks, num_classes, ignore_index)
    predicted = logits.argmax(dim=1)
    if ignore_index is not None:
        keep = masks != ignore_index
        predicted, masks = predicted[keep], masks[keep]
    flat = masks.reshape(-1) * num_classes + predicted.reshape(-1)
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _per_class(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int | None):
    confusion = confusion_matrix(logits, masks, ignore_index).double()
    overlap = confusion.diagonal()
    # |P_c| + |T_c|: predicted plus true pixels of class c
    areas = confusion.sum(dim=0) + confusion.sum(dim=1)
    return overlap, areas, areas > 0


def dice(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int | None = None) -> float:
    """Mean over classes of ``2 |P_c ∩ T_c| / (|P_c| + |T_c|)``.

    >>> logits = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # predicts [[0, 1]]
    >>> dice(logits, torch.tensor([[[0, 0]]]))  # class 0: 2/3, class 1: 0
    0.3333333333333333
    """
    overlap, areas, present = _per_class(logits, masks, ignore_index)
    if not present.any():
        return float("nan")
    return (2 * overlap[present] / areas[present]).mean().item()


def miou(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int | None = None) -> float:
    """Mean over classes of ``|P_c ∩ T_c| / |P_c ∪ T_c|`` (Jaccard index).

    >>> logits = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # predicts [[0, 1]]
    >>> miou(logits, torch.tensor([[[0, 0]]]))  # class 0: 1/2, class 1: 0
    0.25
    """
    overlap, areas, present = _per_class(logits, masks, ignore_index)
    if not present.any():
        return float("nan")
    return (overlap[present] / (areas[present] - overlap[present])).mean().item()


def pixel_accuracy(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int | None = None) -> float:
    """Share of pixels whose argmax class is the true class.

    >>> logits = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # predicts [[0, 1]]
    >>> pixel_accuracy(logits, torch.tensor([[[0, 0]]]))
    0.5
    """
    confusion = confusion_matrix(logits, masks, ignore_index)
    total = confusion.sum()
    if total == 0:
        return float("nan")
    return (confusion.diagonal().sum().double() / total).item()
