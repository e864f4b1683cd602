"""Flatness without curvature: how far the loss stays low, and how much a worst-case step costs.

- Flatness radius: along a filter-normalized random direction ``d``, the
  largest ``a >= 0`` with ``L(w + a d) - L(w) <= rise`` (rise 0.1), i.e. the
  distance to the first point where the loss has risen by more than ``rise``;
  averaged over a few directions. Because ``d`` has the norm of the weights
  filter by filter, ``a = 1`` is a step as large as the weights themselves, so
  radii compare across architectures. Found by doubling from 1/64 up to
  ``max_radius`` and then bisection to a relative precision ``tol``. On a
  quadratic ``L = 1/2 (w - w*)^T A (w - w*)`` at its minimum the radius along
  ``d`` is ``sqrt(2 rise / d^T A d)``.
- SAM sharpness (Foret et al., Sharpness-Aware Minimization, ICLR 2021): the
  loss increase after the first-order worst step of length ``rho``,
  ``L(w + rho g / ||g||) - L(w)`` with ``g`` the gradient at ``w``: one gradient,
  one evaluation. On the same quadratic it equals
  ``rho ||g|| + rho^2 g^T A g / (2 ||g||^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from losszoo.landscape.surface import Surface


@dataclass
class Radius:
    radius: float  # mean over the directions
    per_direction: list[float]
    capped: int  # directions where the loss never rose by `rise` up to max_radius
    evaluations: int


def radius_along(surface: Surface, w: torch.Tensor, base: float, direction: torch.Tensor, rise: float = 0.1,
                 max_radius: float = 16.0, tol: float = 1e-3) -> tuple[float, bool, int]:
    """``(radius, capped, evaluations)`` along one direction from ``w``, whose loss is ``base``."""
    evaluations = 0

    def too_high(a: float) -> bool:
        nonlocal evaluations
        evaluations += 1
        loss, _ = surface.evaluate(w + a * direction)
        return not (math.isfinite(loss) and loss - base <= rise)

    lo, hi = 0.0, 1.0 / 64
    while not too_high(hi):
        lo, hi = hi, 2 * hi
        if hi > max_radius:
            return max_radius, True, evaluations
    for _ in range(40):
        if hi - lo <= tol * hi:
            break
        mid = (lo + hi) / 2
        if too_high(mid):
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2, False, evaluations


def flatness_radius(surface: Surface, directions: list[torch.Tensor], rise: float = 0.1, max_radius: float = 16.0,
                    tol: float = 1e-3) -> Radius:
    """The flatness radius averaged over ``directions`` (each filter-normalized)."""
    radii, capped, evaluations = [], 0, 1
    with surface.space.kept() as w:
        base, _ = surface.evaluate()
        for d in directions:
            r, cap, n = radius_along(surface, w, base, d, rise, max_radius, tol)
            radii.append(r)
            capped += cap
            evaluations += n
    return Radius(sum(radii) / len(radii), radii, capped, evaluations)


def sam_sharpness(surface: Surface, rho: float = 0.05) -> float:
    """``L(w + rho g/||g||) - L(w)``; zero where the gradient vanishes."""
    space = surface.space
    with torch.enable_grad():
        value = surface.loss()
        grads = torch.autograd.grad(value, space.params, allow_unused=True, materialize_grads=True)
    g = space.flatten(list(grads))
    base = float(value.detach())
    del value, grads  # the graph goes here, before the second evaluation
    norm = g.norm()
    if norm == 0:
        return 0.0
    with space.kept() as w:
        perturbed, _ = surface.evaluate(w + (rho / norm) * g)
    return perturbed - base
