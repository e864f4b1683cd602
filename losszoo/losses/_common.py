"""Small checks and reductions shared by every loss family."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

REDUCTIONS = ("mean", "sum", "none")

#: Set by ``labels_checked``: the labels a loss sees were all checked at once beforehand.
_CHECKED = contextvars.ContextVar("losszoo_labels_checked", default=False)


def labels_in_range(labels: torch.Tensor, num_classes: int) -> bool:
    """Whether every label lies in [0, num_classes) (an ignore_index outside it says no)."""
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.numel() == 0:
        return False
    low, high = torch.aminmax(labels)
    return bool(low.item() >= 0 and high.item() < num_classes)


@contextlib.contextmanager
def labels_checked() -> Iterator[None]:
    """Within it, ``check_labels`` trusts integer labels: for a trainer that checked every label of its
    training split once (``labels_in_range``), so that a step does not pay a scan and a sync for it."""
    token = _CHECKED.set(True)
    try:
        yield
    finally:
        _CHECKED.reset(token)


def check_labels(labels: torch.Tensor, num_classes: int | None, ignore_index: int | None = None) -> None:
    """Raise ValueError for labels outside [0, num_classes) before any kernel runs (without
    ``num_classes``, for a pair loss that needs no class count: negative labels).

    On a GPU an out-of-range label would otherwise be a device-side assert that
    poisons the CUDA context; the `.item()` here is a deliberate sync point.
    """
    dtype = labels.dtype
    if dtype.is_floating_point or dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {dtype}")
    if labels.numel() == 0 or _CHECKED.get():
        return
    # One kernel and two reads on the common, all-valid path: measured cheaper than max and min apart,
    # than one read of a stacked pair, and than an unsigned-compare trick with a single read.
    low, high = torch.aminmax(labels)
    if low.item() >= 0 and (num_classes is None or high.item() < num_classes):
        return
    valid = labels if ignore_index is None else labels[labels != ignore_index]
    if valid.numel() == 0:
        return
    low, high = int(valid.min().item()), int(valid.max().item())
    if num_classes is None:
        if low < 0:
            raise ValueError(f"label {low} is negative; labels are class indices from 0")
        return
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(f"label {bad} is outside [0, {num_classes}) (num_classes={num_classes})")


def upcast(x: torch.Tensor) -> torch.Tensor:
    """Half precision in float32 (sums over classes, pixels or pairs, exponentials and ratios need the
    range); float32 and float64 as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def no_autocast(x: torch.Tensor) -> torch.autocast:
    """A context without autocast on ``x``'s device: inside it, matmuls of upcast tensors stay in float32."""
    return torch.autocast(x.device.type, enabled=False)


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    return reduction


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` to per-sample (or per-element) loss values."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


class FunctionLoss(torch.nn.Module):
    """A loss registered as a plain function ``fn(input, target, **hyperparameters)``.

    Class labels for logits are checked against the number of logit columns
    before the function runs, as for every built-in loss.
    """

    def __init__(self, fn, params: dict, input_kind: str = ""):
        super().__init__()
        self.fn = fn
        self.params = dict(params)
        self.input_kind = input_kind

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.input_kind in ("logits", "pixel_logits"):
            check_labels(target, input.shape[1])
        return self.fn(input, target, **self.params)

    def extra_repr(self) -> str:
        return f"{self.fn.__name__}, " + ", ".join(f"{k}={v!r}" for k, v in self.params.items())
