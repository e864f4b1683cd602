"""A loss as a function of the parameters, and slices of it.

A :class:`Surface` is what every measurement reads: the parameters (a
:class:`~losszoo.landscape.directions.ParamSpace`) and a closure that returns
the loss, and the accuracy where there is one, at their current values. A run
gives one (``losszoo.landscape.runs``); a test gives a quadratic.

Slices move the parameters to ``w + a d1 (+ b d2)`` in place, evaluate without
a gradient graph, and put the original values back (``ParamSpace.kept``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from losszoo.landscape.directions import ParamSpace

#: ``forward()`` -> (scalar loss, accuracy in [0, 1] or None), at the current parameters.
Forward = Callable[[], tuple[torch.Tensor, torch.Tensor | None]]


class Surface:
    """The loss over ``params``; ``forward`` is evaluated at whatever values they hold."""

    def __init__(self, params: list[nn.Parameter], forward: Forward):
        self.space = ParamSpace(params)
        self.forward = forward

    def loss(self) -> torch.Tensor:
        """The loss, differentiable when gradients are enabled."""
        return self.forward()[0]

    @torch.no_grad()
    def evaluate(self, vector: torch.Tensor | None = None) -> tuple[float, float | None]:
        """``(loss, accuracy)`` at ``vector`` (written into the parameters), or where they are."""
        if vector is not None:
            self.space.set(vector)
        loss, accuracy = self.forward()
        return float(loss), None if accuracy is None else float(accuracy)


@dataclass
class Profile:
    """The loss (and accuracy) at ``w + a d`` for each ``a`` in ``alphas``."""

    alphas: list[float]
    loss: list[float]
    accuracy: list[float | None]


@dataclass
class Plane:
    """The loss at ``w + a d1 + b d2`` on the grid ``alphas x alphas``: ``loss[i][j]`` at (a_j, b_i)."""

    alphas: list[float]
    loss: list[list[float]]
    accuracy: list[list[float | None]] | None


def profile(surface: Surface, direction: torch.Tensor, points: int = 51, extent: float = 1.0) -> Profile:
    """The 1-D slice along ``direction`` over ``[-extent, extent]``, ``points`` evenly spaced steps."""
    alphas = torch.linspace(-extent, extent, points).tolist()
    losses, accuracies = [], []
    with surface.space.kept() as w:
        for a in alphas:
            loss, accuracy = surface.evaluate(w + a * direction)
            losses.append(loss)
            accuracies.append(accuracy)
    return Profile(alphas, losses, accuracies)


def plane(surface: Surface, d1: torch.Tensor, d2: torch.Tensor, points: int = 21, extent: float = 1.0) -> Plane:
    """The 2-D slice spanned by ``d1`` (x) and ``d2`` (y) over ``[-extent, extent]^2``."""
    alphas = torch.linspace(-extent, extent, points).tolist()
    losses, accuracies = [], []
    with surface.space.kept() as w:
        for b in alphas:
            row = w + b * d2
            cells = [surface.evaluate(row + a * d1) for a in alphas]
            losses.append([c[0] for c in cells])
            accuracies.append([c[1] for c in cells])
    has_accuracy = any(a is not None for row in accuracies for a in row)
    return Plane(alphas, losses, accuracies if has_accuracy else None)
