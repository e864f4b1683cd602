"""The straight line between two trained runs, and the barrier on it.

    losszoo landscape --between RUN_A RUN_B

At each of 21 evenly spaced ``t`` in [0, 1] the weights are
``(1 - t) w_A + t w_B`` -- every floating-point entry of the model's and the
loss's state (learnable class centres move along with the network) -- and the
BatchNorm running statistics are re-estimated on the training split (a fresh
cumulative average over batches of the run's batch size in train mode,
``torch.optim.swa_utils.update_bn``), since averaged weights with averaged
statistics describe neither network. The endpoints get the same treatment, so
every point is measured alike. Loss and accuracy are then measured in eval mode
on the probe batch of training samples and on the same number of test samples.

Barrier height, as Frankle, Dziugaite, Roy and Carbin define it (Linear Mode
Connectivity and the Lottery Ticket Hypothesis, ICML 2020, section 2): the
largest increase of the error along the path over the mean of the endpoint
errors, ``max_t E(t) - (E(0) + E(1)) / 2``, on the test samples; it is >= 0, and
near 0 means the two minima are linearly connected. The same quantity is
reported for the training error and for the training loss.

Both runs must share their model, dataset and loss configuration (seeds and
training settings may differ). The data, probe and loss are run A's: with
different seeds the splits differ, so some of A's test samples were B's
training samples.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from losszoo.errors import LosszooError
from losszoo.landscape.runs import Run, pick


def check_compatible(a: Run, b: Run) -> None:
    for key in ("model", "dataset", "loss"):
        if a.config[key] != b.config[key]:
            raise LosszooError(f"--between needs runs with the same {key}: {a.run_id} has {a.config[key]}, "
                               f"{b.run_id} has {b.config[key]}")


def _mix(state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor], t: float) -> dict[str, torch.Tensor]:
    return {k: torch.lerp(v, state_b[k], t) if v.is_floating_point() else v for k, v in state_a.items()}


def _has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules())


def barrier(values: list[float]) -> float:
    """Frankle et al.'s barrier height: ``max_t v(t) - (v(0) + v(1)) / 2``."""
    return max(values) - (values[0] + values[-1]) / 2


def interpolate(a: Run, b: Run, points: int = 21, on_point: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Loss and accuracy along ``(1 - t) w_A + t w_B``; the barrier heights. Neither run is changed."""
    check_compatible(a, b)
    model, loss = copy.deepcopy(a.model), copy.deepcopy(a.loss)
    model_a, model_b = a.model.state_dict(), b.model.state_dict()
    loss_a, loss_b = a.loss.state_dict(), b.loss.state_dict()
    train_x = a.data.train.x[torch.randperm(len(a.data.train), generator=torch.Generator().manual_seed(0))]
    batches = list(train_x.split(a.config["train"]["batch_size"]))
    test = pick(a.data.test, len(a.probe[1]), a.device)
    on_train, on_test = a.forward_on(*a.probe, model, loss), a.forward_on(*test, model, loss)
    batch_norm = _has_batch_norm(model)
    ts = torch.linspace(0, 1, points).tolist()
    rows = {"t": ts, "train_loss": [], "train_accuracy": [], "test_loss": [], "test_accuracy": []}
    for i, t in enumerate(ts):
        model.load_state_dict(_mix(model_a, model_b, t))
        loss.load_state_dict(_mix(loss_a, loss_b, t))
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
    out: dict[str, Any] = {
        "run_a": a.run_id, "run_b": b.run_id, "folder_a": str(a.folder), "folder_b": str(b.folder),
        "points": points, "batch_norm_reestimated": batch_norm, "samples": len(a.probe[1]), **rows,
        "loss_barrier": barrier(rows["train_loss"]),
    }
    if None not in rows["test_accuracy"]:
        out["barrier"] = barrier([1 - acc for acc in rows["test_accuracy"]])
        out["train_barrier"] = barrier([1 - acc for acc in rows["train_accuracy"]])
    else:  # no accuracy to speak of (regression): the barrier is the test loss's
        out["barrier"] = barrier(rows["test_loss"])
    return out
