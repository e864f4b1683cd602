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


INPUT_KINDS: dict[str, InputKind] = {
    kind.name: kind
    for kind in (
        InputKind("logits", "class logits (N, C)", ("classification", "segmentation"), "classes", "logits"),
        InputKind("embeddings", "embeddings (N, D); class centres inside the loss", ("classification",), "embedding",
                  "embeddings"),
        InputKind("values", "predicted values (N,)", ("regression",), 1, "values", _squeeze_last),
        InputKind("mean_var", "predicted mean and raw variance (N, 2)", ("regression",), 2, "values"),
        InputKind("pixel_logits", "per-pixel class logits (N, C, H, W)", ("segmentation",), "classes",
                  "pixel_logits"),
        InputKind("multilabel", "one logit per label (N, L); targets 0/1 (N, L)", ("multilabel",), "classes",
                  "multilabel"),
        InputKind("boxes", "boxes (N, 4) as x1, y1, x2, y2; targets likewise", ("boxes",), 4, "boxes"),
    )
}

#: The one-line description of each kind, for ``losszoo list`` and messages.
INPUTS = {name: kind.doc for name, kind in INPUT_KINDS.items()}


def input_kind(name: str) -> InputKind:
    return INPUT_KINDS[name]
