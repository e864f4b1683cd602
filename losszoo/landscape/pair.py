"""Two runs compared along paths: the straight line, a trained Bezier curve, the line after alignment.

    losszoo landscape --between RUN_A RUN_B [--curve bezier] [--curve-epochs N] [--align]

- the line: ``between.interpolate``, always;
- ``--curve bezier``: the middle control point trained (``curve.py``), then the curve measured at the
  same 21 points as the line, so the two barriers read against each other (Garipov et al. 2018 find
  the curve's near zero where the line's is high);
- ``--align``: B's hidden units permuted to match A's by weight matching (``align.py``), then the
  line from A to the permuted B (Ainsworth et al. 2023: the barrier drops once the permutation
  symmetry is taken out). The curve, when asked for too, joins A and B as trained.

Files in run A's folder (``<B>``: the name of B's folder): ``between-<B>.json`` (the line, as
before), ``curve-<B>.json``, ``aligned-<B>.json`` and one plot of every path, ``between-<B>.png``.
Both runs' result.json get the barriers under "landscape", with the settings they were measured with.
"""

from __future__ import annotations

from typing import Any

import torch

from losszoo.landscape.between import PATH_POINTS, check_compatible, evaluate_path, interpolate
from losszoo.landscape.runs import Run

#: result.json "landscape" keys per path: (barrier, loss barrier).
SUMMARY = {"line": ("barrier", "loss_barrier"), "curve": ("curve_barrier", "curve_loss_barrier"),
           "aligned": ("aligned_barrier", "aligned_loss_barrier")}


def check_pair(a: Run, b: Run, request) -> None:
    """Everything that would stop the pair, before any work: the same model, dataset and loss; a
    permutation spec for ``--align``."""
    check_compatible(a, b, "--curve" if request.curve else "--between")
    if request.align:
        from losszoo.landscape.align import permutation_spec

        permutation_spec(a.model)


def _align(a: Run, b: Run) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """B's model state with its hidden units permuted to match A's, and what the matching did."""
    from losszoo.landscape.align import permutation_spec, permute, weight_matching

    spec = permutation_spec(a.model)
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    perms, passes = weight_matching(spec, state_a, state_b)
    moved = {p: int((perm != torch.arange(len(perm))).sum()) for p, perm in perms.items()}
    report = {"method": "weight matching (Ainsworth et al. 2023)", "passes": passes, "units": spec.sizes,
              "units_moved": moved, "permutations": {p: perm.tolist() for p, perm in perms.items()}}
    return permute(spec, perms, state_b), report


def measure_pair(a: Run, b: Run, request, outcome, progress) -> None:
    """The paths the request asks for, written to run A's folder and summarized in both result.jsons."""
    from losszoo.landscape.measure import merge_summary
    from losszoo.landscape.plots import plot_paths
    from losszoo.training.store import write_json

    name = f"{a.run_id} -> {b.run_id}"
    ends = {"run_a": a.run_id, "run_b": b.run_id, "folder_a": str(a.folder), "folder_b": str(b.folder)}
    paths: dict[str, dict[str, Any]] = {}
    with progress.status(f"the line {name}") as update:
        paths["line"] = interpolate(a, b, on_point=lambda i: update(f"the line {name}: point {i}/{PATH_POINTS}"))
    write_json(a.folder / f"between-{b.file_id}.json", paths["line"])

    if request.align:
        with progress.status(f"weight matching {name}") as update:
            aligned, outcome.alignment = _align(a, b)
            paths["aligned"] = interpolate(a, b, model_b=aligned, on_point=lambda i: update(
                f"the line {a.run_id} -> {b.run_id} aligned: point {i}/{PATH_POINTS}")) | {"path": "aligned line"}
        write_json(a.folder / f"aligned-{b.file_id}.json", {**paths["aligned"], "alignment": outcome.alignment})

    if request.curve:
        from losszoo.landscape.curve import train_bezier

        with progress.status(f"training the {request.curve} curve {name}") as update:
            training = train_bezier(a, b, request.curve_epochs, on_step=lambda i, n, value: update(
                f"training the {request.curve} curve {name}: step {i}/{n}, loss {value:.4g}"))
            update(f"the curve {name}")
            paths["curve"] = {**ends, "path": request.curve, **evaluate_path(a, training.curve)}
        outcome.curve_training = {"curve": request.curve, "epochs": training.epochs, "steps": training.steps,
                                  "seconds": round(training.seconds, 3), "epoch_loss": training.losses,
                                  "optimizer": a.config["train"]["optimizer"]}
        write_json(a.folder / f"curve-{b.file_id}.json", {**paths["curve"], "training": outcome.curve_training})

    plot_paths(paths, a.folder / f"between-{b.file_id}.png", name)
    settings = {"probe": len(a.probe[1]), "points": PATH_POINTS, "weights": a.weights,
                "curve": request.curve, "curve_epochs": outcome.curve_training["epochs"] if request.curve else None,
                "align": "weight_matching" if request.align else None}
    for run, other in ((a, b), (b, a)):
        values: dict[str, Any] = {"barrier_with": other.run_id, "barrier_settings": settings}
        for kind, (barrier_key, loss_key) in SUMMARY.items():  # a path not measured now: None, not a stale value
            result = paths.get(kind, {})
            values |= {barrier_key: result.get("barrier"), loss_key: result.get("loss_barrier")}
        merge_summary(run.folder, values, a, b)
    outcome.paths = paths
    progress.note(f"paths -> {a.folder}/between-{b.file_id}.json"
                  + ("".join(f", {k}-{b.file_id}.json" for k in ("curve", "aligned") if k in paths))
                  + f" and between-{b.file_id}.png")
