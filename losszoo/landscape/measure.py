"""Measure a minimum: plan the sizes from a time budget, run every measurement, write the results.

    losszoo landscape RUN... [--budget 60] [--probe 1024]

One run's measurement, in order, all on the same probe batch in eval mode:

1. loss and accuracy at the trained weights;
2. the largest and smallest Hessian eigenvalues (power iteration, <= 20
   products each, tol 1e-3) and Hutchinson's trace, from one cached gradient
   graph that is freed right after;
3. the flatness radius over 5 filter-normalized directions (rise 0.1, to 1%);
4. SAM sharpness at rho = 0.05;
5. 1-D profiles along the first two of those directions over [-1, 1], and,
   when the budget allows, the 2-D surface they span;
6. with ``--top-k K``: the K largest eigenvalues (Lanczos) and the spectral
   density by stochastic Lanczos quadrature, with its negative share
   (``spectrum.py``), from the same gradient graph.

Every run is measured with the same seeds, so the same directions are drawn
for runs of the same architecture. The sizes (trace samples, profile and grid
points) come from a :class:`Plan` chosen once for all runs of a command, from
the slowest run's timed forward pass and Hessian-vector product, so runs
measured together are measured alike.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from losszoo.errors import LosszooError
from losszoo.landscape import is_saddle
from losszoo.landscape.flatness import flatness_radius, sam_sharpness
from losszoo.landscape.hessian import extreme_eigenvalues, hessian_products, hutchinson_trace
from losszoo.landscape.runs import PROBE_SEED, BadRun, Run
from losszoo.landscape.spectrum import spectral_density, top_eigenvalues
from losszoo.landscape.surface import Surface, plane, profile
from losszoo.training.store import read_result, write_json

#: Seeds of the random draws, apart so that changing one size never changes another draw.
DIRECTION_SEED, EIGEN_SEED, TRACE_SEED, SPECTRUM_SEED = 0, 1, 2, 3

#: The summary merged into result.json under "landscape" (what `losszoo compare --metric landscape.X` reads);
#: with --top-k also "negative_share".
SUMMARY_KEYS = ("loss", "accuracy", "lambda_max", "lambda_min", "trace", "trace_se", "radius", "sam")

#: Stochastic Lanczos quadrature sizes, (probes, steps), smallest first: the plan takes the largest that fits.
SPECTRUM_SIZES = ((3, 30), (5, 40), (5, 60), (8, 80), (10, 90))

OnStep = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """The sizes of one measurement."""

    iterations: int = 20  # power iteration, per eigenvalue
    tol: float = 1e-3
    trace_samples: int = 30
    directions: int = 5  # flatness radius
    rise: float = 0.1
    radius_tol: float = 1e-2  # relative precision of each direction's radius
    rho: float = 0.05
    profile_points: int = 41
    plane_points: int = 0  # 0: no 2-D surface
    batched_hvp: bool = False  # trace products in vectorized batches (where timing said it is faster)
    top_k: int = 0  # 0: no spectrum
    spectrum_probes: int = 0  # stochastic Lanczos quadrature: random start vectors
    lanczos_steps: int = 0  # ... and Lanczos steps from each

    def describe(self) -> str:
        plane_text = f"2-D {self.plane_points}x{self.plane_points}" if self.plane_points else "no 2-D surface"
        spectrum = (f"; top {self.top_k} eigenvalues (Lanczos), density from {self.spectrum_probes} probes x "
                    f"{self.lanczos_steps} Lanczos steps") if self.top_k else ""
        return (f"power iteration <= {self.iterations} products; trace from {self.trace_samples} Rademacher "
                f"probes; radius over {self.directions} directions "
                f"(rise {self.rise:g}); SAM rho {self.rho:g}; 1-D {self.profile_points} points; {plane_text}"
                + spectrum)

    def settings(self, probe: int, weights: str) -> dict[str, Any]:
        """What the summary's figures depend on, for result.json's ``landscape.settings``: figures
        measured with different settings are not comparable (profile and grid sizes are not here: no
        summary figure depends on them)."""
        out = {"probe": probe, "probe_seed": PROBE_SEED, "weights": weights, "power_iterations": self.iterations,
               "power_tol": self.tol, "hutchinson_samples": self.trace_samples,
               "radius_directions": self.directions, "radius_rise": self.rise, "radius_tol": self.radius_tol,
               "sam_rho": self.rho}
        if self.top_k:
            out |= {"top_k": self.top_k, "slq_probes": self.spectrum_probes, "lanczos_steps": self.lanczos_steps}
        return out


@dataclass(frozen=True)
class Timing:
    forward: float  # seconds per loss evaluation on the probe batch
    hvp: float  # seconds per Hessian-vector product, the faster way
    batched: bool = False  # whether a vectorized batch of products beat one backward pass per vector
    single: float | None = None  # seconds per product one at a time (power iteration, Lanczos); None: hvp

    @property
    def sequential(self) -> float:
        return self.hvp if self.single is None else self.single


def time_surface(surface: Surface) -> Timing:
    """Time a forward pass (median of 3, after a warm-up) and a Hessian-vector product, alone (the
    faster of 2) and in a vectorized batch of 2 (which wins depends on the device and the operations)."""
    space = surface.space
    forwards = []
    with space.kept() as w:
        surface.evaluate(w)  # as the slices do: write the parameters, then evaluate
        for _ in range(3):
            start = time.perf_counter()
            surface.evaluate(w)
            forwards.append(time.perf_counter() - start)
    vectors = space.rademacher(3, torch.Generator().manual_seed(TRACE_SEED))
    with space.kept(), hessian_products(surface.loss, space) as (hvp, _):
        hvp(vectors[0])  # warm-up
        singles = []
        for _ in range(2):  # the faster of two: a busy machine only ever makes a product slower
            start = time.perf_counter()
            hvp(vectors[0])
            singles.append(time.perf_counter() - start)
        single = min(singles)
        start = time.perf_counter()
        hvp(vectors[1:])
        batched = (time.perf_counter() - start) / 2
    return Timing(statistics.median(forwards), min(single, batched), batched < single, single)


def _odd(n: float) -> int:
    n = int(n)
    return n if n % 2 else n - 1


#: Loss evaluations one radius direction takes, about: doubling from 1/64, then bisection to 1%.
RADIUS_EVALUATIONS = 15


def top_k_products(k: int) -> int:
    """Hessian-vector products the top-k Lanczos takes, about: three fillings of its ncv vectors."""
    return 3 * max(2 * k + 1, 20) if k else 0


def estimated_seconds(plan: Plan, timing: Timing) -> float:
    """What ``plan`` costs with ``timing``, the eigenvalues at their iteration cap."""
    # one at a time: the power iterations, Lanczos, building the graph and the SAM gradient (+2)
    sequential = 2 * plan.iterations + 2 + top_k_products(plan.top_k) + plan.spectrum_probes * plan.lanczos_steps
    evaluations = (8 + plan.directions * RADIUS_EVALUATIONS + 2 * plan.profile_points + plan.plane_points ** 2)
    return sequential * timing.sequential + plan.trace_samples * timing.hvp + evaluations * timing.forward


def _spectrum_size(products: float) -> tuple[int, int]:
    """The largest (probes, steps) of :data:`SPECTRUM_SIZES` within ``products``, the smallest at least."""
    fits = [size for size in SPECTRUM_SIZES if size[0] * size[1] <= products]
    return fits[-1] if fits else SPECTRUM_SIZES[0]


def plan_for(timing: Timing, budget: float, top_k: int = 0) -> Plan:
    """Sizes that fit ``budget`` seconds (less a 15% margin) for one run with these timings.

    The core comes first: both eigenvalues at 20 iterations, 10 trace samples, the radius over 5
    directions, SAM, 21-point profiles, and with ``top_k`` the top-k Lanczos and the smallest spectral
    density (3 probes x 30 steps). What is left goes a quarter to more trace samples (up to 100), a
    quarter to a finer density (with ``top_k``; up to 10 probes x 90 steps), a sixth to finer profiles
    (up to 101 points) and the rest to the 2-D surface (9x9 up to 51x51, or none). When even the core
    does not fit, fewer power iterations (down to 8), trace samples (down to 5) and profile points
    (down to 11) are used, and the budget is overrun only below that.
    """
    if top_k < 0:
        raise LosszooError(f"--top-k must be >= 1, got {top_k}")
    target = 0.85 * budget
    spectrum = {"top_k": top_k, "spectrum_probes": SPECTRUM_SIZES[0][0] if top_k else 0,
                "lanczos_steps": SPECTRUM_SIZES[0][1] if top_k else 0}
    core = Plan(trace_samples=10, profile_points=21, batched_hvp=timing.batched, **spectrum)
    left = target - estimated_seconds(core, timing)
    if left <= 0:
        smallest = Plan(iterations=8, trace_samples=5, profile_points=11, batched_hvp=timing.batched, **spectrum)
        spare = target - estimated_seconds(smallest, timing)
        iterations = int(min(20, 8 + max(0.0, spare) / (2 * timing.sequential)))
        return Plan(iterations=iterations, trace_samples=5, profile_points=11, batched_hvp=timing.batched,
                    **spectrum)
    f, h = timing.forward, timing.hvp
    trace = int(min(100, 10 + 0.25 * left / h))
    if top_k:
        probes, steps = _spectrum_size(spectrum["spectrum_probes"] * spectrum["lanczos_steps"]
                                       + 0.25 * left / timing.sequential)
        spectrum |= {"spectrum_probes": probes, "lanczos_steps": steps}
    points = _odd(min(101, 21 + (left / 6) / (2 * f)))
    rest = target - estimated_seconds(Plan(trace_samples=trace, profile_points=points, **spectrum), timing)
    grid = _odd(min(51, math.sqrt(max(0.0, rest) / f)))
    return Plan(trace_samples=trace, profile_points=points, plane_points=grid if grid >= 9 else 0,
                batched_hvp=timing.batched, **spectrum)


def measure_surface(surface: Surface, plan: Plan, on_step: OnStep | None = None) -> dict[str, Any]:
    """Every measurement of ``surface``; the parameters hold the same values afterwards."""
    space = surface.space
    step = on_step or (lambda _: None)
    seconds: dict[str, float] = {}
    generator = torch.Generator().manual_seed(DIRECTION_SEED)
    directions = [space.random_direction(generator) for _ in range(max(plan.directions, 2))]
    with space.kept():
        started = time.perf_counter()
        loss, accuracy = surface.evaluate()

        step("Hessian eigenvalues")
        clock = time.perf_counter()
        with hessian_products(surface.loss, space, plan.batched_hvp) as (hvp, _):
            top, bottom = extreme_eigenvalues(hvp, space, torch.Generator().manual_seed(EIGEN_SEED),
                                              plan.iterations, plan.tol)
            seconds["eigenvalues"] = time.perf_counter() - clock
            step("Hessian trace")
            clock = time.perf_counter()
            trace = hutchinson_trace(hvp, space, torch.Generator().manual_seed(TRACE_SEED), plan.trace_samples)
            seconds["trace"] = time.perf_counter() - clock
            spectrum = _spectrum(hvp, space, plan, top.value, step, seconds) if plan.top_k else None

        step("flatness radius")
        clock = time.perf_counter()
        radius = flatness_radius(surface, directions[:plan.directions], plan.rise, tol=plan.radius_tol)
        seconds["radius"] = time.perf_counter() - clock

        step("SAM sharpness")
        clock = time.perf_counter()
        sam = sam_sharpness(surface, plan.rho)
        seconds["sam"] = time.perf_counter() - clock

        step("1-D profiles")
        clock = time.perf_counter()
        profiles = [profile(surface, d, plan.profile_points) for d in directions[:2]]
        seconds["profiles"] = time.perf_counter() - clock

        surface_2d = None
        if plan.plane_points:
            step(f"2-D surface {plan.plane_points}x{plan.plane_points}")
            clock = time.perf_counter()
            surface_2d = plane(surface, directions[0], directions[1], plan.plane_points)
            seconds["plane"] = time.perf_counter() - clock
        seconds["total"] = time.perf_counter() - started

    summary = {
        "loss": loss, "accuracy": accuracy, "lambda_max": top.value, "lambda_min": bottom.value,
        "trace": trace.mean, "trace_se": trace.se, "radius": radius.radius, "sam": sam,
    }
    if spectrum is not None:
        summary["negative_share"] = spectrum["density"]["negative_share"]
    return {
        "summary": summary,
        "saddle": is_saddle(bottom.value, top.value),
        "spectrum": spectrum,
        "parameters": space.dim,
        "filters": space.n_filters,
        "eigenvalues": {
            "max": {"value": top.value, "iterations": top.iterations, "converged": top.converged},
            "min": {"value": bottom.value, "iterations": bottom.iterations, "converged": bottom.converged},
        },
        "trace": asdict(trace),
        "radius": {"mean": radius.radius, "per_direction": radius.per_direction, "capped": radius.capped,
                   "rise": plan.rise, "evaluations": radius.evaluations},
        "sam": {"value": sam, "rho": plan.rho},
        "profiles": [asdict(p) for p in profiles],
        "plane": asdict(surface_2d) if surface_2d is not None else None,
        "plan": asdict(plan),
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
    }


def _spectrum(hvp, space, plan: Plan, lambda_max: float, step: OnStep, seconds: dict[str, float]) -> dict[str, Any]:
    """The top-k eigenvalues and the spectral density, for landscape.json."""
    step(f"top {plan.top_k} eigenvalues")
    clock = time.perf_counter()
    top_k = top_eigenvalues(hvp, space, plan.top_k, torch.Generator().manual_seed(SPECTRUM_SEED))
    seconds["top_k"] = time.perf_counter() - clock
    step("spectral density")
    clock = time.perf_counter()
    # the threshold of "negative" is relative to the largest eigenvalue, the best estimate of it
    density = spectral_density(hvp, space, torch.Generator().manual_seed(SPECTRUM_SEED), plan.spectrum_probes,
                               plan.lanczos_steps, max(lambda_max, top_k.values[0] if top_k.values else lambda_max))
    seconds["density"] = time.perf_counter() - clock
    return {"top_k": asdict(top_k), "density": asdict(density)}


def measure_run(run: Run, plan: Plan, on_step: OnStep | None = None) -> dict[str, Any]:
    """Measure a rebuilt run; the result is what ``landscape.json`` holds."""
    measured = measure_surface(run.surface(), plan, on_step)
    return {
        "run_id": run.run_id,
        "experiment": run.result.get("experiment"),
        "label": run.result.get("label"),
        "model": run.config["model"],
        "weights": run.weights,
        "settings": plan.settings(len(run.probe[1]), run.weights),
        "probe": {"split": "train", "samples": len(run.probe[1]), "seed": PROBE_SEED, "mode": "eval"},
        "hessian_over": "model parameters (loss parameters held fixed)",
        **measured,
        "device": str(run.device),
        "versions": {"torch": torch.__version__},
    }


def write_measurement(run: Run, measured: dict[str, Any], plots: bool = True, title: str | None = None) -> list[str]:
    """``landscape.json`` and the PNGs (titled ``title``) in the run folder; the summary merged into
    ``result.json``. Returns the names of the files written."""
    folder = run.folder
    merge_summary(folder, summary_entry(measured), run)  # first: a BadRun when the run was trained again
    write_json(folder / "landscape.json", measured)
    written = ["landscape.json", "result.json"]
    if plots:
        from losszoo.landscape.plots import plot_plane, plot_profiles

        title = title or f"{run.run_id} {run.config['model']['name']} {run.result.get('label')}"
        title = f"{run.result.get('experiment')}/{title}"
        plot_profiles([measured], [title], folder / "landscape-1d.png")
        written.append("landscape-1d.png")
        if measured["plane"] is not None:
            plot_plane([measured], [title], folder / "landscape-2d.png")
            written.append("landscape-2d.png")
    return written


def summary_entry(measured: dict[str, Any]) -> dict[str, Any]:
    """What result.json's "landscape" gets from a measurement: the summary figures and the settings they
    were measured with (a figure from another --weights or --top-k run is replaced, not left beside)."""
    entry = {key: measured["summary"][key] for key in SUMMARY_KEYS}
    entry["negative_share"] = measured["summary"].get("negative_share")
    entry["settings"] = measured["settings"]
    return entry


def merge_summary(folder: Path, values: dict[str, Any], *measured: Run) -> None:
    """Merge ``values`` into result.json's "landscape" entry, keeping every other key; atomic, under the run's
    claim, so that neither a `train --force` of the run nor another `landscape` rewrites it in between. Refused
    when a run the values were ``measured`` on was trained again since it was loaded (the figures are of weights
    it no longer has)."""
    from losszoo.training.claims import ClaimError, claim_holder, try_claim

    try:
        claim = try_claim(folder)
    except ClaimError as error:
        raise BadRun(folder, f"{error}; its figures were not stored") from None
    if claim is None:
        raise BadRun(folder, f"is held by {claim_holder(folder)} (training again?); its figures were "
                                   "not stored: measure it when that is done")
    with claim:
        result = read_result(folder)
        if result is None or result.get("status") != "completed" or any(r.trained_again() for r in measured):
            raise BadRun(folder, "was trained again while it was measured (or no longer holds a completed "
                                 "result); its figures were not stored")
        result["landscape"] = {**(result.get("landscape") or {}), **values}
        write_json(folder / "result.json", result)
