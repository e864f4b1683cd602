"""Curvature from Hessian-vector products: the extreme eigenvalues and the trace.

The Hessian ``H`` of the loss over the parameters is never formed. The
gradient is computed once with its graph kept (``create_graph=True``); each
product ``H v`` is then one backward pass through that graph, the gradient of
``g . v`` (Pearlmutter, Fast Exact Multiplication by the Hessian, Neural
Computation 1994). The graph lives only inside :func:`hessian_products`.

- Extreme eigenvalues: power iteration on ``H`` converges to the eigenvalue of
  largest magnitude ``l1``; power iteration on ``H - l1 I`` then converges to
  the other end of the spectrum (Yao et al., PyHessian, 2020, use the first
  step). Each estimate is a Rayleigh quotient ``v^T H v``, so it never
  overshoots: a negative smallest estimate proves a direction of negative
  curvature (a saddle, not a minimum), while a small one may still hide a
  more negative eigenvalue that 20 iterations did not reach.
- Trace: Hutchinson's estimator, ``tr H = E[v^T H v]`` for Rademacher ``v``
  (Hutchinson 1990; Avron and Toledo 2011), reported as the mean of the
  samples with its standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from losszoo.landscape.directions import ParamSpace

#: ``hvp(v)`` for ``v`` of shape ``(dim,)`` or a batch ``(k, dim)``.
HVP = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Eigen:
    """One eigenvalue estimate: its value, the iterations it took, and whether it met the tolerance."""

    value: float
    iterations: int
    converged: bool
    vector: torch.Tensor | None = None


@dataclass
class Trace:
    mean: float
    se: float
    samples: int


@contextmanager
def hessian_products(loss: Callable[[], torch.Tensor], space: ParamSpace,
                     batched: bool = True) -> Iterator[tuple[HVP, torch.Tensor]]:
    """Yield ``(hvp, gradient)`` for ``loss()`` at the current parameters; the graph is freed on exit.

    ``hvp`` takes a vector or a ``(k, dim)`` batch of vectors; with ``batched`` a batch goes through
    one vectorized backward pass (falling back to one pass per vector where an operation has no
    batching rule).
    """
    params = space.params
    with torch.enable_grad():
        value = loss()
        grads = torch.autograd.grad(value, params, create_graph=True, allow_unused=True, materialize_grads=True)
    flat = space.flatten(list(grads))
    constant = not flat.requires_grad  # the loss is linear in every parameter: H = 0
    state = {"batched": batched, "gradient": flat}  # the graph hangs on "gradient"; dropped on exit
    del value, grads

    def one(v: torch.Tensor) -> torch.Tensor:
        out = torch.autograd.grad(state["gradient"], params, grad_outputs=v, retain_graph=True, allow_unused=True,
                                  materialize_grads=True)
        return space.flatten(list(out))

    def hvp(v: torch.Tensor) -> torch.Tensor:
        if constant:
            return torch.zeros_like(v)
        if v.ndim == 1:
            return one(v)
        if state["batched"] and len(v) > 1:
            try:
                out = torch.autograd.grad(state["gradient"], params, grad_outputs=v, retain_graph=True,
                                          allow_unused=True, materialize_grads=True, is_grads_batched=True)
                return torch.cat([t.reshape(len(v), -1) for t in out], dim=1)
            except RuntimeError:  # an operation without a batching rule: go one by one from now on
                state["batched"] = False
        return torch.stack([one(row) for row in v])

    gradient = flat.detach()
    del flat
    try:
        yield hvp, gradient
    finally:
        state.clear()


def power_iteration(hvp: HVP, space: ParamSpace, generator: torch.Generator, shift: float = 0.0,
                    iterations: int = 20, tol: float = 1e-3) -> Eigen:
    """The eigenvalue of largest magnitude of ``H - shift I``, plus ``shift``.

    Stops when the estimate changes by less than ``tol`` relative to its size, or after ``iterations``
    products.
    """
    v = space.gaussian_unit(generator)
    value, done, converged = None, 0, False
    for done in range(1, iterations + 1):  # noqa: B007 (the count is reported)
        hv = hvp(v)
        if shift:
            hv = hv - shift * v
        new = float(torch.dot(v, hv))
        norm = hv.norm()
        if not torch.isfinite(norm):
            raise FloatingPointError("non-finite Hessian-vector product")
        if norm == 0:  # v lies in the null space: H - shift I is zero along it
            value, converged = new, True
            break
        v = hv / norm
        # relative to the eigenvalue of H itself, not of H - shift I (where the shift would hide the change)
        if value is not None and abs(new - value) <= tol * max(abs(value + shift), 1e-12):
            value, converged = new, True
            break
        value = new
    return Eigen(value + shift, done, converged, v)


def extreme_eigenvalues(hvp: HVP, space: ParamSpace, generator: torch.Generator, iterations: int = 20,
                        tol: float = 1e-3) -> tuple[Eigen, Eigen]:
    """``(largest, smallest)`` eigenvalues of the Hessian, by power iteration and shifted power iteration."""
    first = power_iteration(hvp, space, generator, 0.0, iterations, tol)
    other = power_iteration(hvp, space, generator, first.value, iterations, tol)
    return (first, other) if first.value >= 0 else (other, first)


def hutchinson_trace(hvp: HVP, space: ParamSpace, generator: torch.Generator, samples: int = 50,
                     batch: int = 8) -> Trace:
    """Hutchinson's estimate of the trace, ``mean(v^T H v)`` over ``samples`` Rademacher vectors,
    with its standard error; ``batch`` vectors go through each backward pass."""
    values = []
    for start in range(0, samples, batch):
        v = space.rademacher(min(batch, samples - start), generator)
        values.append((v * hvp(v)).sum(dim=1))
    quadratic = torch.cat(values).double()
    se = float(quadratic.std() / math.sqrt(samples)) if samples > 1 else math.nan
    return Trace(float(quadratic.mean()), se, samples)
