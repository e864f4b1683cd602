"""Paths between two trained runs -- the straight line, or any curve -- and the barrier on them.

    losszoo landscape --between RUN_A RUN_B [--curve bezier] [--align]

A path is a function ``t -> (model state, loss state)`` for ``t`` in [0, 1],
from run A at 0 to run B at 1. The straight line is ``(1 - t) w_A + t w_B`` over
every floating-point entry of the model's and the loss's state (learnable class
centres move along with the network); a trained Bezier curve is another path
(``curve.py``). At each of 21 evenly spaced ``t`` the BatchNorm running
statistics are re-estimated on the training split (a fresh cumulative average
over batches of the run's batch size in train mode,
``torch.optim.swa_utils.update_bn``), since averaged weights with averaged
statistics describe neither network. The endpoints get the same treatment, so
every point is measured alike. Loss and accuracy are then measured in eval mode
on the probe batch of training samples and on the same number of test samples.

Barrier height (Frankle, Dziugaite, Roy and Carbin, Linear Mode Connectivity
and the Lottery Ticket Hypothesis, ICML 2020; in the form of Entezari et al.,
ICLR 2022, and Ainsworth et al., Git Re-Basin, ICLR 2023): the largest rise of
a value along the path above the straight interpolation of its endpoint values,

    barrier = max_t [ E(t) - ((1 - t) E(0) + t E(1)) ]

on the test error; it is >= 0 (t = 0 gives 0), and near 0 means the two minima
are connected by the path. Where E(0) = E(1) it is Frankle's
``max_t E(t) - (E(0) + E(1)) / 2``. The same quantity is reported for the
training error and for the training loss.

Both runs must share their model, dataset and loss configuration (seeds and
training settings may differ). The data, probe and loss are run A's: with
different seeds the splits differ, so some of A's test samples were B's
training samples.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from losszoo.errors import LosszooError
from losszoo.landscape.runs import Run, pick

State = dict[str, torch.Tensor]
#: ``path(t)`` -> (model state, loss state) at ``t`` in [0, 1].
Path = Callable[[float], tuple[State, State]]

#: Points evaluated on every path, endpoints included.
PATH_POINTS = 21


def check_compatible(a: Run, b: Run, what: str = "--between") -> None:
    for key in ("model", "dataset", "loss"):
        if a.config[key] != b.config[key]:
            raise LosszooError(f"{what} needs runs with the same {key}: {a.run_id} has {a.config[key]}, "
                               f"{b.run_id} has {b.config[key]}")


def mix(state_a: State, state_b: State, t: float) -> State:
    """``(1 - t) a + t b`` on floating-point entries; the rest (batch counters) from ``a``."""
    return {k: torch.lerp(v, state_b[k], t) if v.is_floating_point() else v for k, v in state_a.items()}


def line(model_a: State, model_b: State, loss_a: State, loss_b: State) -> Path:
    """The straight line between two states."""
    return lambda t: (mix(model_a, model_b, t), mix(loss_a, loss_b, t))


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules())


def barrier(values: Sequence[float], ts: Sequence[float] | None = None) -> float:
    """``max_t v(t) - ((1 - t) v(0) + t v(1))``; ``ts`` default to evenly spaced points of [0, 1]."""
    if ts is None:
        ts = [i / (len(values) - 1) for i in range(len(values))] if len(values) > 1 else [0.0]
    return max(v - ((1 - t) * values[0] + t * values[-1]) for v, t in zip(values, ts, strict=True))


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch, as the trainer batches: a last batch of one sample joins the one
    before it, since batch norm in train mode cannot normalize a single sample."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(start, starts[i + 1] if i + 1 < len(starts) else n) for i, start in enumerate(starts)]


def training_batches(run: Run) -> list[torch.Tensor]:
    """The run's training inputs in batches of its batch size (a fixed shuffle): what the batch-norm
    statistics are re-estimated on."""
    order = torch.randperm(len(run.data.train), generator=torch.Generator().manual_seed(0))
    x = run.data.train.x[order]
    return [x[start:stop] for start, stop in batch_bounds(len(x), run.config["train"]["batch_size"])]


def evaluate_path(a: Run, path: Path, points: int = PATH_POINTS,
                  on_point: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Loss and accuracy at ``points`` evenly spaced ``t`` of ``path``, with run A's data, on copies of its
    model and loss (the run itself is not changed); the barriers."""
    model, loss = copy.deepcopy(a.model), copy.deepcopy(a.loss)
    batches = training_batches(a)
    test = pick(a.data.test, len(a.probe[1]), a.device)
    on_train, on_test = a.forward_on(*a.probe, model, loss), a.forward_on(*test, model, loss)
    batch_norm = has_batch_norm(model)
    ts = torch.linspace(0, 1, points).tolist()
    rows: dict[str, list] = {"t": ts, "train_loss": [], "train_accuracy": [], "test_loss": [], "test_accuracy": []}
    for i, t in enumerate(ts):
        model_state, loss_state = path(t)
        model.load_state_dict(model_state)
        loss.load_state_dict(loss_state)
        if batch_norm:
            torch.optim.swa_utils.update_bn(batches, model, a.device)
        model.eval()
        loss.eval()
        with torch.no_grad():
            for split, forward in (("train", on_train), ("test", on_test)):
                value, accuracy = forward()
                rows[f"{split}_loss"].append(float(value))
                rows[f"{split}_accuracy"].append(None if accuracy is None else float(accuracy))
        if on_point is not None:
            on_point(i + 1)
    out: dict[str, Any] = {"points": points, "batch_norm_reestimated": batch_norm, "samples": len(a.probe[1]),
                           **rows, "loss_barrier": barrier(rows["train_loss"], ts)}
    if None not in rows["test_accuracy"]:
        out["barrier"] = barrier([1 - acc for acc in rows["test_accuracy"]], ts)
        out["train_barrier"] = barrier([1 - acc for acc in rows["train_accuracy"]], ts)
    else:  # no accuracy to speak of (regression): the barrier is the test loss's
        out["barrier"] = barrier(rows["test_loss"], ts)
    return out


def interpolate(a: Run, b: Run, points: int = PATH_POINTS, on_point: Callable[[int], None] | None = None,
                model_b: State | None = None) -> dict[str, Any]:
    """Loss and accuracy along ``(1 - t) w_A + t w_B``; the barrier heights. Neither run is changed.
    ``model_b`` replaces B's model state (B with its hidden units permuted, say)."""
    check_compatible(a, b)
    path = line(a.model.state_dict(), model_b or b.model.state_dict(), a.loss.state_dict(), b.loss.state_dict())
    return {"run_a": a.run_id, "run_b": b.run_id, "folder_a": str(a.folder), "folder_b": str(b.folder),
            "path": "line", **evaluate_path(a, path, points, on_point)}
