"""A low-loss curve between two minima: the quadratic Bezier curve of Garipov et al.

Garipov, Izmailov, Podoprikhin, Vetrov and Wilson, Loss Surfaces, Mode
Connectivity, and Fast Ensembling of DNNs, NeurIPS 2018 (and Draxler et al.,
Essentially No Barriers in Neural Network Energy Landscape, ICML 2018, who find
such paths another way). Between the trained weights ``A`` and ``B`` of two runs,

    phi_theta(t) = (1 - t)^2 A + 2 t (1 - t) theta + t^2 B,    t in [0, 1]

with the middle control point ``theta`` trained to minimize the expected
training loss along the curve, ``E_{t ~ U(0, 1)} L(phi_theta(t))``: each step
draws one ``t`` and one training batch and takes a gradient step on ``theta``
alone. ``theta`` starts at the midpoint ``(A + B) / 2``, where the curve is the
straight line.

Here the curve covers every trained parameter of the model and of the loss
(learnable class centres included), the loss is the run's own training loss,
and ``theta`` is trained as run A was trained: its optimizer (family, learning
rate, momentum, weight decay), scheduler, batch size, gradient clipping and
sampler, in train mode (batch norm on batch statistics, dropout on), for as many
epochs as run A unless told otherwise. Batch-norm running statistics are not
part of the curve; ``between.evaluate_path`` re-estimates them at every point
it measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from losszoo.landscape.between import State, batch_bounds, check_compatible, mix
from losszoo.landscape.runs import Run
from losszoo.registry import LOSSES
from losszoo.training.trainer import make_optimizer, make_scheduler

CURVES = ("bezier",)
CURVE_SEED = 0

#: Progress: (step, steps, running mean of the training loss).
OnStep = Callable[[int, int, float], None]


def trained_keys(module: nn.Module) -> list[str]:
    return [name for name, p in module.named_parameters() if p.requires_grad]


class BezierCurve:
    """``phi(t) = (1 - t)^2 A + 2 t (1 - t) theta + t^2 B`` over the trained parameters of model and loss.

    ``theta`` (one tensor per parameter, trainable) starts at the midpoint. Buffers (batch-norm running
    statistics) follow the straight line; they are re-estimated wherever the curve is measured.
    """

    def __init__(self, model_a: State, model_b: State, loss_a: State, loss_b: State, model_keys: list[str],
                 loss_keys: list[str]):
        self.ends = (model_a, model_b, loss_a, loss_b)
        self.model_keys, self.loss_keys = model_keys, loss_keys
        self.theta = {f"model.{k}": nn.Parameter((model_a[k] + model_b[k]) / 2) for k in model_keys} | {
            f"loss.{k}": nn.Parameter((loss_a[k] + loss_b[k]) / 2) for k in loss_keys}

    def parameters_at(self, t: float) -> tuple[State, State]:
        """The trained parameters at ``t``, differentiable in ``theta``."""
        model_a, model_b, loss_a, loss_b = self.ends
        c0, c1, c2 = (1 - t) ** 2, 2 * t * (1 - t), t ** 2
        model = {k: c0 * model_a[k] + c1 * self.theta[f"model.{k}"] + c2 * model_b[k] for k in self.model_keys}
        loss = {k: c0 * loss_a[k] + c1 * self.theta[f"loss.{k}"] + c2 * loss_b[k] for k in self.loss_keys}
        return model, loss

    def __call__(self, t: float) -> tuple[State, State]:
        """Full states at ``t`` (a :data:`between.Path`): the curve's parameters, buffers on the line."""
        model_a, model_b, loss_a, loss_b = self.ends
        with torch.no_grad():
            model, loss = self.parameters_at(t)
        return mix(model_a, model_b, t) | {k: v.detach().clone() for k, v in model.items()}, \
            mix(loss_a, loss_b, t) | {k: v.detach().clone() for k, v in loss.items()}


@dataclass
class CurveTraining:
    curve: BezierCurve
    epochs: int
    steps: int
    seconds: float
    losses: list[float]  # mean training loss per epoch


def _batch_orders(run: Run, generator: torch.Generator) -> torch.Tensor:
    """One epoch's order of training samples, drawn as the trainer draws it."""
    labels = run.data.train.y
    if LOSSES.get(run.config["loss"]["name"]).needs_pairs:
        from losszoo.data.sampler import m_per_class_order

        return m_per_class_order(labels, run.config["train"]["m_per_class"], generator)
    return torch.randperm(len(labels), generator=generator)


def train_bezier(a: Run, b: Run, epochs: int | None = None, model_b: State | None = None,
                 on_step: OnStep | None = None) -> CurveTraining:
    """Train the middle control point of the Bezier curve from run A to run B, as run A was trained.
    Neither run is changed. ``model_b`` replaces B's model state (B permuted to match A, say)."""
    import time

    check_compatible(a, b, "--curve")
    cfg = a.config["train"]
    epochs = cfg["epochs"] if epochs is None else epochs
    model_keys, loss_keys = trained_keys(a.model), trained_keys(a.loss)
    curve = BezierCurve({k: v.detach() for k, v in a.model.state_dict().items()},
                        {k: v.detach() for k, v in (model_b or b.model.state_dict()).items()},
                        {k: v.detach() for k, v in a.loss.state_dict().items()},
                        {k: v.detach() for k, v in b.loss.state_dict().items()}, model_keys, loss_keys)
    theta = list(curve.theta.values())
    optimizer = make_optimizer(theta, cfg["optimizer"])
    scheduler = make_scheduler(optimizer, cfg["scheduler"], epochs)
    # buffers in train mode are written by batch norm; they are throwaway copies, not the runs'
    model_buffers = {k: v.clone() for k, v in a.model.named_buffers()}
    loss_buffers = {k: v.clone() for k, v in a.loss.named_buffers()}
    generator = torch.Generator().manual_seed(CURVE_SEED)
    x, y = a.data.train.x.to(a.device), a.data.train.y.to(a.device)
    loss_input, batch_size = LOSSES.get(a.config["loss"]["name"]).input, cfg["batch_size"]
    was_training = a.model.training, a.loss.training
    a.model.train()
    a.loss.train()
    started, step, losses = time.perf_counter(), 0, []
    steps = epochs * len(batch_bounds(len(y), batch_size))  # for progress (a pair sampler's epochs may differ)
    try:
        for _ in range(epochs):
            order, total = _batch_orders(a, generator).to(a.device), 0.0
            for start, stop in batch_bounds(len(order), batch_size):
                index = order[start:stop]
                t = float(torch.rand((), generator=generator))
                model_params, loss_params = curve.parameters_at(t)
                output = functional_call(a.model, {**model_buffers, **model_params}, (x[index],))
                if loss_input == "values":
                    output = output.squeeze(-1)
                value = functional_call(a.loss, {**loss_buffers, **loss_params}, (output, y[index]))
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                if cfg["grad_clip"]:
                    nn.utils.clip_grad_norm_(theta, cfg["grad_clip"])
                optimizer.step()
                total += float(value.detach()) * len(index)
                step += 1
                if on_step is not None:
                    on_step(step, steps, float(value.detach()))
            losses.append(total / len(order))
            if scheduler is not None:
                scheduler.step()
    finally:
        a.model.train(was_training[0])
        a.loss.train(was_training[1])
    for p in theta:
        p.requires_grad_(False)
    return CurveTraining(curve, epochs, step, time.perf_counter() - started, losses)
