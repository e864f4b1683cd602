"""Input kinds: what a loss or a metric consumes, as one object each.

An :class:`InputKind` says which tasks it serves, which targets go with it,
how wide the model's head must be, how the head's output becomes the loss's
input, which views of a forward pass metrics read, and an example input for
the conformance suite. Adding a kind means adding an object here (and losses
and metrics that take it); the registry, the recipe checks, the trainer and
the conformance suite read these objects and switch on nothing.

This module imports no torch at import time: ``losszoo list`` reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The tasks a dataset can fix, each with the target it provides.
TARGETS_OF_TASK = {
    "classification": "labels",  # (N,) integers in [0, C)
    "regression": "values",  # (N,) floats, standardised on train
    "segmentation": "masks",  # (N, H, W) integers in [0, C)
    "multilabel": "multilabel",  # (N, L) floats of 0 and 1; a binary set is L = 1
    "boxes": "boxes",  # (N, 4) floats (x1, y1, x2, y2), normalised to [0, 1]
}


@dataclass(frozen=True)
class InputKind:
    """One kind of loss (or metric) input.

    ``head`` is the width of the model's output: ``"classes"`` (one per class
    or label), ``"embedding"`` (the model's ``embedding_dim``) or a fixed number.
    ``view`` is the name metrics of this kind read from an evaluation (the
    per-pixel view of ``logits`` on images is ``pixel_logits``).
    """

    name: str
    doc: str
    tasks: tuple[str, ...]
    head: str | int
    view: str  # what metrics of this kind read (values and mean_var both give predicted values)
    #: turns the model's output into what the loss takes (e.g. values squeeze the head's last axis)
    to_loss_input: Callable[[Any], Any] | None = None
    #: the conformance suite's random input and target of this kind: example(sample) -> (input, target)
    example: Callable[[Sample], tuple[Any, Any]] | None = None
    #: named extreme inputs for the same target: extremes(sample, input, target, loss) -> {name: input}
    extremes: Callable[[Sample, Any, Any, Any], dict[str, Any]] | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(TARGETS_OF_TASK[t] for t in self.tasks)

    def serves(self, task: str) -> bool:
        return task in self.tasks

    def head_size(self, num_classes: int | None, embedding_dim: int) -> int:
        if self.head == "classes":
            if not num_classes:
                raise ValueError(f"input {self.name!r} needs a number of classes")
            return num_classes
        if self.head == "embedding":
            return embedding_dim
        return int(self.head)

    def loss_input(self, output: Any) -> Any:
        return output if self.to_loss_input is None else self.to_loss_input(output)

    def view_for(self, task: str) -> str:
        """The view metrics read: class logits of images segmented are per-pixel logits."""
        return "pixel_logits" if self.name == "logits" and task == "segmentation" else self.view


def _squeeze_last(output: Any) -> Any:
    return output.squeeze(-1)


@dataclass
class Sample:
    """What the conformance suite draws examples with (``losszoo.testing``)."""

    batch: int
    classes: int
    dim: int  # embedding size
    image: int  # side of segmentation inputs
    generator: Any  # a seeded torch.Generator
    dtype: Any
    input_range: tuple[float, float] | None = None  # open interval the loss's formula admits
    target_range: tuple[float, float] | None = None

    def draw(self, *shape: int, low: float | None = None, high: float | None = None) -> Any:
        import torch

        if low is not None and high is not None:
            return low + (high - low) * torch.rand(*shape, generator=self.generator, dtype=self.dtype)
        return torch.randn(*shape, generator=self.generator, dtype=self.dtype)

    def labels(self) -> Any:
        import torch

        return torch.arange(self.batch) % self.classes  # every class twice: pair losses see positives


def _signs(x: Any) -> Any:
    import torch

    return torch.where(torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) > 0.5, 1.0, -1.0).to(x.dtype)


def _huge_and_zero(s: Sample, x: Any, y: Any, loss: Any) -> dict[str, Any]:
    return {"logits of +-1e4": 1e4 * _signs(x), "logits all 0": x.new_zeros(x.shape)}


def _embedding_extremes(s: Sample, x: Any, y: Any, loss: Any) -> dict[str, Any]:
    cases = {"zero-norm embeddings": x.new_zeros(x.shape),
             "embeddings of norm 1e4": 1e4 * x / x.norm(dim=1, keepdim=True)}
    weight = getattr(loss, "weight", None)
    if weight is not None and getattr(weight, "ndim", 0) >= 2:
        centres = weight.detach().to(x.dtype)
        centres = centres.reshape(centres.shape[0], -1, centres.shape[-1])[:, 0]
        if tuple(centres.shape) == (s.classes, s.dim):
            cases["cosine exactly +1 (on the class centre)"] = centres[y].clone()
            cases["cosine exactly -1 (opposite the class centre)"] = -centres[y].clone()
    cases["all embeddings equal"] = x[:1].expand_as(x).clone()
    return cases


def _value_extremes(s: Sample, x: Any, y: Any, loss: Any) -> dict[str, Any]:
    lo, hi = s.input_range or (-1e4, 1e4)
    return {"values at the top of their range": x.new_full(x.shape, min(hi, 1e4) - 1e-3),
            "values at the bottom of their range": x.new_full(x.shape, max(lo, -1e4) + 1e-3)}


def _mean_var_extremes(s: Sample, x: Any, y: Any, loss: Any) -> dict[str, Any]:
    import torch

    return {"mean and raw variance of +-1e4": torch.stack([x.new_full(x[:, 0].shape, 1e4),
                                                          x.new_full(x[:, 1].shape, -1e4)], 1)}


def _pixel_example(s: Sample) -> tuple[Any, Any]:
    import torch

    return s.draw(2, s.classes, s.image, s.image), torch.randint(0, s.classes, (2, s.image, s.image),
                                                                  generator=s.generator)


def _multilabel_example(s: Sample) -> tuple[Any, Any]:
    return s.draw(s.batch, s.classes), (s.draw(s.batch, s.classes, low=0.0, high=1.0) > 0.5).to(s.dtype)


def _box_example(s: Sample) -> tuple[Any, Any]:
    import torch

    corners = s.draw(s.batch, 2, 2, low=0.0, high=1.0).sort(dim=1).values  # (x1, x2), (y1, y2) ordered
    target = torch.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], dim=1)
    return s.draw(s.batch, 4), target


def _box_extremes(s: Sample, x: Any, y: Any, loss: Any) -> dict[str, Any]:
    return {"boxes of +-1e4": 1e4 * _signs(x), "zero-size boxes": x.new_zeros(x.shape),
            "prediction equal to the target": y.detach().clone()}


INPUT_KINDS: dict[str, InputKind] = {
    kind.name: kind
    for kind in (
        InputKind("logits", "class logits (N, C)", ("classification", "segmentation"), "classes", "logits",
                  example=lambda s: (s.draw(s.batch, s.classes), s.labels()), extremes=_huge_and_zero),
        InputKind("embeddings", "embeddings (N, D); class centres inside the loss", ("classification",), "embedding",
                  "embeddings", example=lambda s: (s.draw(s.batch, s.dim), s.labels()),
                  extremes=_embedding_extremes),
        InputKind("values", "predicted values (N,)", ("regression",), 1, "values", _squeeze_last,
                  example=lambda s: (s.draw(s.batch, low=(s.input_range or (None,))[0],
                                            high=(s.input_range or (None, None))[1]),
                                     s.draw(s.batch, low=(s.target_range or (None,))[0],
                                            high=(s.target_range or (None, None))[1])),
                  extremes=_value_extremes),
        InputKind("mean_var", "predicted mean and raw variance (N, 2)", ("regression",), 2, "values",
                  example=lambda s: (s.draw(s.batch, 2), s.draw(s.batch, low=(s.target_range or (None,))[0],
                                                                high=(s.target_range or (None, None))[1])),
                  extremes=_mean_var_extremes),
        InputKind("pixel_logits", "per-pixel class logits (N, C, H, W)", ("segmentation",), "classes",
                  "pixel_logits", example=_pixel_example, extremes=_huge_and_zero),
        InputKind("multilabel", "one logit per label (N, L); targets 0/1 (N, L)", ("multilabel",), "classes",
                  "multilabel", example=_multilabel_example, extremes=_huge_and_zero),
        InputKind("boxes", "boxes (N, 4) as x1, y1, x2, y2; targets likewise", ("boxes",), 4, "boxes",
                  example=_box_example, extremes=_box_extremes),
    )
}

#: The one-line description of each kind, for ``losszoo list`` and messages.
INPUTS = {name: kind.doc for name, kind in INPUT_KINDS.items()}


def input_kind(name: str) -> InputKind:
    return INPUT_KINDS[name]
