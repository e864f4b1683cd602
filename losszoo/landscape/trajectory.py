"""The path a run took through weight space: its saved checkpoints, measured and drawn on the loss surface.

    losszoo landscape RUN --trajectory

A run trained with ``train.save_every: K`` keeps ``checkpoints/epoch-0005.pt``
every K epochs and ``last.pt`` at the end. Each saved point is rebuilt and
measured on the run's probe batch, as ``losszoo landscape`` measures a run:
the loss and accuracy, lambda_max and lambda_min (power iteration), and the
spectrum's negative share (stochastic Lanczos quadrature, ``spectrum.py``).

The picture is Li, Xu, Taylor, Studer and Goldstein's (Visualizing the Loss
Landscape of Neural Nets, NeurIPS 2018, section 7): with ``theta_n`` the final
weights (last.pt, else the latest checkpoint) and ``M`` the matrix whose rows
are ``theta_i - theta_n`` over the saved points, the two principal directions
``d1, d2`` of ``M`` (PCA: the top right singular vectors of ``M`` with its column
means removed, as Li et al. with scikit-learn) span a plane through
``theta_n``. Each point is drawn at ``((theta_i - theta_n) . d1, (theta_i - theta_n) . d2)``
over the loss ``L(theta_n + x d1 + y d2)`` (batch-norm statistics of the final
weights, eval mode); the share of ``M``'s variance the two directions explain
is reported, since a path far from the plane is drawn shorter than it is.
Random directions would show almost none of the path: in high dimensions they
are nearly orthogonal to it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from losszoo.errors import LosszooError
from losszoo.landscape import is_saddle
from losszoo.landscape.hessian import extreme_eigenvalues, hessian_products
from losszoo.landscape.measure import EIGEN_SEED, SPECTRUM_SEED, SPECTRUM_SIZES, Timing, _odd
from losszoo.landscape.runs import CHECKPOINTS, WEIGHTS, Run, load_state, read_checkpoint, saved_checkpoints
from losszoo.landscape.spectrum import spectral_density
from losszoo.landscape.surface import Surface, plane

#: How far the surface reaches beyond the farthest point of the path.
MARGIN = 1.25


@dataclass(frozen=True)
class TrajectoryPlan:
    iterations: int = 20
    spectrum_probes: int = 3
    lanczos_steps: int = 30
    plane_points: int = 21

    def describe(self) -> str:
        return (f"per point: power iteration <= {self.iterations} products, density from {self.spectrum_probes} "
                f"probes x {self.lanczos_steps} Lanczos steps; surface {self.plane_points}x{self.plane_points}")


def trajectory_plan(timing: Timing, budget: float, points: int) -> TrajectoryPlan:
    """Sizes that fit ``budget`` seconds (less 15%) for ``points`` saved points: first 20 power iterations
    and the smallest density per point with a 9x9 surface; then half of what is left to a finer density,
    the rest to the surface (up to 41x41)."""
    target = 0.85 * budget
    probes, steps = SPECTRUM_SIZES[0]

    def per_point(p: int, s: int) -> float:
        return (2 * 20 + 1 + p * s) * timing.sequential + 2 * timing.forward

    left = target - points * per_point(probes, steps) - 81 * timing.forward
    if left > 0:
        fits = [size for size in SPECTRUM_SIZES if points * per_point(*size) <= points * per_point(probes, steps)
                + left / 2]
        probes, steps = fits[-1]
    rest = target - points * per_point(probes, steps)
    grid = _odd(min(41, max(9, math.sqrt(max(0.0, rest) / timing.forward))))
    return TrajectoryPlan(20, probes, steps, grid)


def trajectory_points(run: Run) -> list[tuple[str, int | None, Path]]:
    """``(name, epoch, file)`` of the saved points in training order, the final weights last: last.pt,
    or else the latest checkpoint. A LosszooError when there are too few to span a plane."""
    saved = saved_checkpoints(run.folder)
    if not saved:
        raise LosszooError(f"run {run.folder} has no saved checkpoints ({CHECKPOINTS}/epoch-*.pt): --trajectory "
                           "needs a run trained with train.save_every set")
    points: list[tuple[str, int | None, Path]] = [(f"epoch {e}", e, p) for e, p in saved]
    last = run.folder / WEIGHTS["last"]
    if last.is_file():
        points.append(("last", None, last))
    if len(points) < 3:
        raise LosszooError(f"run {run.folder} has {len(points)} saved point(s); --trajectory needs at least 3 "
                           "(checkpoints every K epochs and last.pt) to span a plane")
    return points


def principal_directions(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """PCA of ``vectors - vectors[-1]``: the two directions (unit rows), each point's coordinates
    ``(theta_i - theta_n) . d``, and the share of variance each direction explains."""
    differences = (vectors - vectors[-1]).double()
    centred = differences - differences.mean(0)
    _, singular, right = torch.linalg.svd(centred, full_matrices=False)
    if len(singular) < 2 or singular[1] <= 1e-12 * max(1.0, float(singular[0])):
        raise LosszooError("the saved points lie on a line (or on one point): no plane to draw them on")
    directions = right[:2]
    variance = singular.square()
    return directions, differences @ directions.T, (variance[:2] / variance.sum()).tolist()


def _measure_point(surface: Surface, plan: TrajectoryPlan) -> dict[str, Any]:
    space = surface.space
    loss, accuracy = surface.evaluate()
    with space.kept(), hessian_products(surface.loss, space) as (hvp, _):
        top, bottom = extreme_eigenvalues(hvp, space, torch.Generator().manual_seed(EIGEN_SEED), plan.iterations)
        density = spectral_density(hvp, space, torch.Generator().manual_seed(SPECTRUM_SEED), plan.spectrum_probes,
                                   plan.lanczos_steps, top.value)
    return {"loss": loss, "accuracy": accuracy, "lambda_max": top.value, "lambda_min": bottom.value,
            "negative_share": density.negative_share, "saddle": is_saddle(bottom.value, top.value)}


def measure_trajectory(run: Run, plan: TrajectoryPlan,
                       on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every saved point measured, the path in its principal plane, and the loss surface under it. The run
    and its files are not changed (copies of model and loss are loaded with each checkpoint)."""
    step = on_step or (lambda _: None)
    points = trajectory_points(run)
    model, loss = copy.deepcopy(run.model), copy.deepcopy(run.loss)
    surface = Surface([p for p in model.parameters() if p.requires_grad], run.forward_on(*run.probe, model, loss))
    started, rows, vectors = time.perf_counter(), [], []
    for i, (name, epoch, path) in enumerate(points, 1):
        step(f"point {i}/{len(points)}: {name}")
        load_state(model, loss, read_checkpoint(path, run.device), path)
        model.eval()
        loss.eval()
        rows.append({"name": name, "epoch": epoch, "file": str(path.relative_to(run.folder)),
                     **_measure_point(surface, plan)})
        vectors.append(surface.space.get())
    directions, coordinates, explained = principal_directions(torch.stack(vectors))
    for row, (x, y) in zip(rows, coordinates.tolist(), strict=True):
        row["x"], row["y"] = x, y
    step(f"surface {plan.plane_points}x{plan.plane_points}")
    extent = MARGIN * float(coordinates.abs().max())
    d1, d2 = (d.to(surface.space.device, surface.space.dtype) for d in directions)
    grid = plane(surface, d1, d2, plan.plane_points, extent)  # the model holds the final weights
    return {
        "run_id": run.run_id, "points": rows, "explained_variance": explained, "extent": extent,
        "plane": asdict(grid), "plan": asdict(plan), "probe": len(run.probe[1]),
        "seconds": round(time.perf_counter() - started, 3),
    }
