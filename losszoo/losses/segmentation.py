"""Segmentation losses on per-pixel logits ``(N, C, H, W)`` with integer masks ``(N, H, W)``.

Every loss takes the softmax over the classes inside. Pixels labelled
``ignore_index`` leave every sum of their own image (numerator and
denominator), as in kornia. Overlap scores are computed per image; an image with
nothing to score (a class absent from it, or every pixel ignored) gives finite
values and zero gradients, never NaN. Half-precision logits are scored in
float32. Metadata and bounds: ``losszoo/catalog/segmentation.py``.

Conventions (kornia 0.9 where it has the loss):

- ``dice`` ``micro`` pools classes and pixels of an image (kornia's default);
  ``macro`` averages the per-class losses over the classes present in the image's
  target (kornia ``average="macro"``); then the mean over images. ``eps`` is added
  to the denominator only.
- ``jaccard``, ``tversky`` and ``focal_tversky`` score each (image, class) and
  average over the classes present in the image, like kornia's ``tversky_loss``;
  an image without a present class counts as loss 1.
- ``lovasz_softmax`` averages over every class of every image, absent classes
  included, like kornia's ``lovasz_softmax_loss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.losses._common import check_labels, no_autocast, upcast
from losszoo.registry import LOSSES

AVERAGES = ("micro", "macro")


def _valid_targets(masks: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(target, valid)``: masks with ignored pixels mapped to class 0, and where pixels count."""
    valid = masks != ignore_index
    return torch.where(valid, masks, torch.zeros_like(masks)).long(), valid


def _one_hot(target: torch.Tensor, valid: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Boolean ``(N, C, H, W)``: pixel has class c and is not ignored."""
    classes = torch.arange(num_classes, device=target.device).view(1, -1, 1, 1)
    return (target[:, None] == classes) & valid[:, None]


def soft_counts(
    probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft confusion counts per image and class over the valid pixels, each ``(N, C)``.

    ``tp = sum p_c [y = c]``, ``pred = sum p_c`` and ``true = sum [y = c]``; so the
    false positives are ``pred - tp`` and the false negatives ``true - tp``. The
    per-class sums gather each pixel's target probability and add it into ``(N, C)``
    bins, in float64 (where the device has it) so that thousands of probabilities
    near 1 do not round up past the pixel count; no one-hot ``(N, C, H, W)`` product is formed.
    """
    batch, num_classes = probs.shape[:2]
    index = target.flatten(1)
    weight = valid.flatten(1).to(probs.dtype)
    target_prob = probs.flatten(2).gather(1, index[:, None]).squeeze(1) * weight
    wide = torch.float64 if probs.device.type in ("cpu", "cuda") else probs.dtype  # MPS has no float64
    bins = torch.zeros(batch, num_classes, dtype=wide, device=probs.device)
    tp = bins.scatter_add(1, index, target_prob.to(wide)).to(probs.dtype)
    true = bins.scatter_add(1, index, weight.to(wide)).to(probs.dtype)
    with no_autocast(probs):
        pred = torch.bmm(probs.flatten(2), weight[:, :, None]).squeeze(2)
    return tp, pred, true


def _safe_ratio(num: torch.Tensor, den: torch.Tensor, defined: torch.Tensor) -> torch.Tensor:
    """``num / den`` where ``defined``, else 0; the undefined branch gets a denominator of 1, so no NaN gradient."""
    ratio = num / torch.where(defined, den, torch.ones_like(den))
    return torch.where(defined, ratio, torch.zeros_like(ratio))


def _mean_over_present(per_class_loss: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Per image, the mean of ``(N, C)`` losses over present classes (1 with none); then the mean over images."""
    count = present.sum(1)
    total = torch.where(present, per_class_loss, torch.zeros_like(per_class_loss)).sum(1)
    per_image = torch.where(count > 0, total / count.clamp_min(1), torch.ones_like(total))
    return per_image.mean()


def dice_from_counts(
    tp: torch.Tensor, pred: torch.Tensor, true: torch.Tensor, average: str = "micro", eps: float = 1e-8
) -> torch.Tensor:
    """Soft Dice loss from :func:`soft_counts`; see :func:`dice_loss`."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")
    if average == "micro":
        tp, cardinality = tp.sum(1), (pred + true).sum(1)
        # An image with every pixel ignored has no Dice: kornia counts it as loss 1.
        return (1.0 - _safe_ratio(2.0 * tp, cardinality + eps, cardinality > 0)).mean()
    cardinality = pred + true
    per_class = 1.0 - _safe_ratio(2.0 * tp, cardinality + eps, cardinality > 0)
    return _mean_over_present(per_class, true > 0)


def dice_loss(
    logits: torch.Tensor,
    masks: torch.Tensor,
    average: str = "micro",
    eps: float = 1e-8,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Soft Sørensen-Dice loss (Milletari et al., V-Net, 3DV 2016), as ``kornia.losses.dice_loss``.

    With ``p = softmax(logits)`` ``(N, C, H, W)`` and one-hot masks ``y`` over the non-ignored pixels::

        micro: 1 - 2 sum_{c,hw} p y / (sum_{c,hw} (p + y) + eps)             per image
        macro: mean_{c present} 1 - 2 sum_hw p_c y_c / (sum_hw (p_c + y_c) + eps)   per image

    then the mean over images. An image with no valid pixel (or, for macro, no
    present class) counts as loss 1 with zero gradient.

    >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])  # (1, 2, 1, 2)
    >>> round(dice_loss(logits, torch.tensor([[[0, 1]]])).item(), 4)
    0.0003
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")
    logits = upcast(logits)
    target, valid = _valid_targets(masks, ignore_index)
    if average == "micro":
        # Micro Dice needs only each pixel's target probability: the softmax sums to 1 over the classes, so
        # the cardinality is twice the number of valid pixels.
        target_prob = F.softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
        tp = (target_prob * valid).sum((1, 2))
        count = valid.sum((1, 2)).to(tp.dtype)
        return dice_from_counts(tp[:, None], count[:, None], count[:, None], average, eps)
    return dice_from_counts(*soft_counts(F.softmax(logits, dim=1), target, valid), average=average, eps=eps)


def jaccard_loss(
    logits: torch.Tensor,
    masks: torch.Tensor,
    average: str = "macro",
    eps: float = 1e-8,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Soft Jaccard (IoU) loss (Rahman & Wang, ISVC 2016).

    With ``I = sum p y`` and ``U = sum (p + y - p y)`` over the non-ignored pixels::

        macro: mean_{c present} 1 - I_c / (U_c + eps)     per image (tversky with alpha = beta = 1)
        micro: 1 - sum_c I_c / (sum_c U_c + eps)            per image (D / (2 - D) of micro Dice D at eps 0)

    then the mean over images; an image with nothing to score counts as loss 1.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")
    probs = F.softmax(upcast(logits), dim=1)
    target, valid = _valid_targets(masks, ignore_index)
    tp, pred, true = soft_counts(probs, target, valid)
    if average == "micro":
        tp, pred, true = tp.sum(1), pred.sum(1), true.sum(1)
    union = pred + true - tp
    score = _safe_ratio(tp, union + eps, pred + true > 0)
    if average == "micro":
        return (1.0 - score).mean()
    return _mean_over_present(1.0 - score, true > 0)


def tversky_index(
    tp: torch.Tensor, pred: torch.Tensor, true: torch.Tensor, alpha: float, beta: float, eps: float
) -> torch.Tensor:
    """``TI = tp / (tp + alpha fp + beta fn + eps)`` per image and class.

    0 where the class is absent, and where the denominator is 0 (eps 0, nothing predicted and beta 0).
    """
    denominator = tp + alpha * (pred - tp) + beta * (true - tp) + eps
    return _safe_ratio(tp, denominator, (true > 0) & (denominator > 0))


def tversky_loss(
    logits: torch.Tensor,
    masks: torch.Tensor,
    alpha: float = 0.3,
    beta: float = 0.7,
    eps: float = 1e-8,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Tversky loss (Salehi et al., MLMI 2017), as ``kornia.losses.tversky_loss``.

    ``1 - TI`` with ``TI = tp / (tp + alpha fp + beta fn + eps)`` per image and class
    over the non-ignored pixels, averaged over the classes present in the image and
    then over images. ``alpha`` weighs false positives, ``beta`` false negatives;
    ``alpha = beta = 0.5`` is macro Dice (with twice the eps), ``alpha = beta = 1`` soft IoU.
    """
    probs = F.softmax(upcast(logits), dim=1)
    target, valid = _valid_targets(masks, ignore_index)
    tp, pred, true = soft_counts(probs, target, valid)
    return _mean_over_present(1.0 - tversky_index(tp, pred, true, alpha, beta, eps), true > 0)


def focal_tversky_loss(
    logits: torch.Tensor,
    masks: torch.Tensor,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    eps: float = 1e-8,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Focal Tversky loss (Abraham & Khan, ISBI 2019).

    ``(1 - TI)^gamma`` per image and class (TI as in :func:`tversky_loss`), averaged
    over the classes present in the image, then over images. The exponent is written
    ``gamma`` as in the authors' code (default 0.75); the paper writes it ``1/gamma``
    with gamma = 4/3, the same value. ``gamma = 1`` is the Tversky loss. The paper's
    alpha weighs false negatives; here, as in kornia, ``beta`` does, so its
    alpha = 0.7 is ``beta = 0.7``.
    """
    probs = F.softmax(upcast(logits), dim=1)
    target, valid = _valid_targets(masks, ignore_index)
    tp, pred, true = soft_counts(probs, target, valid)
    miss = (1.0 - tversky_index(tp, pred, true, alpha, beta, eps)).clamp_min(0.0)
    # x^gamma has an infinite slope at 0 for gamma < 1; a perfect score gets a zero gradient instead.
    positive = miss > 0
    focal = torch.where(positive, torch.where(positive, miss, torch.ones_like(miss)).pow(gamma), torch.zeros_like(miss))
    return _mean_over_present(focal, true > 0)


def lovasz_softmax_loss(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Lovász-softmax loss (Berman et al., CVPR 2018), as ``kornia.losses.lovasz_softmax_loss``.

    Per image and class, the Lovász extension of the Jaccard loss evaluated at the
    errors ``|p_c - y_c|``: errors sorted in decreasing order, each weighted by the
    increment of ``1 - IoU`` it causes. Mean over every class (absent ones included,
    where it is the largest probability of the class) and every image. Ignored pixels
    are dropped; an image with none left scores 0. Needs C >= 2.
    """
    probs = F.softmax(upcast(logits), dim=1).flatten(2)
    target, valid = _valid_targets(masks, ignore_index)
    foreground = _one_hot(target, valid, probs.shape[1]).flatten(2)
    valid = valid.flatten(1)[:, None]
    # Ignored pixels get error -1: they sort after every valid pixel, so they change no cumulative count that a
    # valid pixel sees, and are then zeroed.
    errors = torch.where(valid, (probs - foreground.to(probs.dtype)).abs(), torch.full_like(probs, -1.0))
    errors, order = torch.sort(errors, dim=2, descending=True)
    errors = errors.clamp_min(0.0)
    fg = foreground.gather(2, order).to(probs.dtype)
    total = fg.sum(2, keepdim=True)
    fg_seen = fg.cumsum(2)
    # intersection = total - fg_seen, union = total + (k - fg_seen) after k pixels; union >= 1 throughout.
    union = total + torch.arange(1, fg.shape[2] + 1, device=fg.device, dtype=fg.dtype) - fg_seen
    jaccard = 1.0 - (total - fg_seen) / union
    increments = torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=2)
    return (errors * increments).sum(2).mean()


def dice_ce_loss(
    logits: torch.Tensor,
    masks: torch.Tensor,
    lambda_dice: float = 1.0,
    lambda_ce: float = 1.0,
    average: str = "micro",
    eps: float = 1e-8,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Dice plus cross-entropy (as in nnU-Net, Isensee et al. 2021; MONAI ``DiceCELoss``).

    ``lambda_dice * dice + lambda_ce * CE``, with ``dice`` of :func:`dice_loss` and ``CE``
    the mean of ``-log p_y`` over the non-ignored pixels of the batch (0 when none is left).
    """
    log_probs = F.log_softmax(upcast(logits), dim=1)
    probs = log_probs.exp()
    target, valid = _valid_targets(masks, ignore_index)
    dice = dice_from_counts(*soft_counts(probs, target, valid), average=average, eps=eps)
    nll = -log_probs.gather(1, target[:, None]).squeeze(1)
    ce = torch.where(valid, nll, torch.zeros_like(nll)).sum() / valid.sum().clamp_min(1)
    return lambda_dice * dice + lambda_ce * ce


# -- modules -------------------------------------------------------------------------------------------------------


class SegmentationLoss(nn.Module):
    """Base: checks the entry's rules (catalog/segmentation.py) once, holds ``num_classes``,
    ``ignore_index`` and the hyperparameters, and checks logits and masks before scoring."""

    name = ""  # the registry entry whose rules the constructor evaluates

    def __init__(self, num_classes: int | None = None, ignore_index: int = -100, **hyperparameters: object):
        super().__init__()
        LOSSES.get(self.name).check({"ignore_index": ignore_index, **hyperparameters}, {"num_classes": num_classes})
        self.num_classes = num_classes  # optional: when given, checked against the logits
        self.ignore_index = ignore_index
        for key, value in hyperparameters.items():
            setattr(self, key, value)

    def _check(self, logits: torch.Tensor, masks: torch.Tensor) -> None:
        classes = logits.shape[1] if logits.ndim == 4 else None
        if classes is None or (self.num_classes is not None and classes != self.num_classes):
            raise ValueError(f"expected logits (N, {self.num_classes or 'C'}, H, W), got {tuple(logits.shape)}")
        if classes < 2:
            raise ValueError("segmentation logits need at least 2 classes (a binary task passes two channels)")
        if masks.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(f"expected masks {tuple(logits.shape[:1] + logits.shape[2:])}, got {tuple(masks.shape)}")
        if masks.is_floating_point() or masks.numel() == 0:
            check_labels(masks, classes, self.ignore_index)
            return
        # check_labels first copies out the non-ignored pixels; one min/max scan clears the usual mask, and
        # check_labels then names any label outside [0, C).
        low, high = torch.aminmax(torch.where(masks == self.ignore_index, torch.zeros_like(masks), masks))
        if low.item() < 0 or high.item() >= classes:
            check_labels(masks, classes, self.ignore_index)


class DiceLoss(SegmentationLoss):
    """Soft Dice loss, micro or macro averaged."""

    name = "dice"

    def __init__(
        self, num_classes: int | None = None, average: str = "micro", eps: float = 1e-8, ignore_index: int = -100
    ):
        super().__init__(num_classes, ignore_index, average=average, eps=eps)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self._check(logits, masks)
        return dice_loss(logits, masks, self.average, self.eps, self.ignore_index)


class JaccardLoss(SegmentationLoss):
    """Soft Jaccard (IoU) loss, micro or macro averaged."""

    name = "jaccard"

    def __init__(
        self, num_classes: int | None = None, average: str = "macro", eps: float = 1e-8, ignore_index: int = -100
    ):
        super().__init__(num_classes, ignore_index, average=average, eps=eps)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self._check(logits, masks)
        return jaccard_loss(logits, masks, self.average, self.eps, self.ignore_index)


class TverskyLoss(SegmentationLoss):
    """Tversky loss: false positives weighted by alpha, false negatives by beta."""

    name = "tversky"

    def __init__(
        self, num_classes: int | None = None, alpha: float = 0.3, beta: float = 0.7, eps: float = 1e-8,
        ignore_index: int = -100,
    ):
        super().__init__(num_classes, ignore_index, alpha=alpha, beta=beta, eps=eps)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self._check(logits, masks)
        return tversky_loss(logits, masks, self.alpha, self.beta, self.eps, self.ignore_index)


class FocalTverskyLoss(SegmentationLoss):
    """Focal Tversky loss ``(1 - TI)^gamma``."""

    name = "focal_tversky"

    def __init__(
        self,
        num_classes: int | None = None,
        alpha: float = 0.3,
        beta: float = 0.7,
        gamma: float = 0.75,
        eps: float = 1e-8,
        ignore_index: int = -100,
    ):
        super().__init__(num_classes, ignore_index, alpha=alpha, beta=beta, gamma=gamma, eps=eps)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self._check(logits, masks)
        return focal_tversky_loss(logits, masks, self.alpha, self.beta, self.gamma, self.eps, self.ignore_index)


class LovaszSoftmaxLoss(SegmentationLoss):
    """Lovász-softmax surrogate of the mean IoU."""

    name = "lovasz_softmax"

    def __init__(self, num_classes: int | None = None, ignore_index: int = -100):
        super().__init__(num_classes, ignore_index)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self._check(logits, masks)
        return lovasz_softmax_loss(logits, masks, self.ignore_index)


class DiceCELoss(SegmentationLoss):
    """Weighted sum of the soft Dice loss and pixel cross-entropy."""

    name = "dice_ce"

    def __init__(
        self,
        num_classes: int | None = None,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
        average: str = "micro",
        eps: float = 1e-8,
        ignore_index: int = -100,
    ):
        super().__init__(num_classes, ignore_index, lambda_dice=lambda_dice, lambda_ce=lambda_ce, average=average,
                         eps=eps)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self._check(logits, masks)
        return dice_ce_loss(
            logits, masks, self.lambda_dice, self.lambda_ce, self.average, self.eps, self.ignore_index
        )
