"""Many runs, one pass: train runs of one shape stacked (issue 16).

    outcomes = train_stack([run.config for run in runs], [folder_of(run) for run in runs])

A loss comparison is dozens of small runs of one small model. One after another,
each pays torch's per-operation cost on tiny matrices; stacked, the weights of M
runs are one batch of parameters (each linear layer's weight an (M, in, out)
tensor) and one batched forward and backward (``torch.baddbmm``) serves them all.

Everything that makes a run itself stays its own, so a member gives the numbers
it gives trained alone, within float32 round-off (the batched matmul sums in
another order):

- it is built by ``trainer.setup`` after its own seeding, exactly as
  ``train_run`` builds it, and the stack copies its initial weights;
- it is shuffled by its own generator, and reads its own split of the data;
- its own loss module is called on its slice of the stacked output, so
  hyperparameters, miners, buffers and class centres stay its own (a loss's
  learnable weights are stacked too and reach it through ``functional_call``);
- torch's single-tensor SGD, Adam and AdamW are written out below on the stacked
  tensors, with each member's learning rate (from its own torch scheduler),
  weight decay and momentum; its gradient norm is clipped on its own;
- its val metrics come from the single run's code: its weights are copied into
  its own module, which ``evaluate`` and ``compute_metrics`` read;
- early stopping, divergence, pruning and failures end that member alone: it
  leaves the stack and the others go on.

Which runs stack with which: ``stack_rules`` (no torch, for ``--dry-run``);
the engine imports torch where it starts.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from losszoo.training.stack_rules import STACKED_MODELS, stack_key, stack_problem  # noqa: F401  (public here)

#: on_epoch(i, epoch, epochs, train_loss, metric, value): member ``i`` of the configs, then trainer.OnEpoch's arguments.
StackOnEpoch = Callable[[int, int, int, float, str, "float | None"], None]
#: prune(i, epoch, val metrics) -> stop member ``i`` now?
StackPrune = Callable[[int, int, dict[str, float]], bool]
#: on_finish(i, outcome): member ``i`` is done (what train_run returns, or the exception it would raise).
StackOnFinish = Callable[[int, "dict[str, Any] | BaseException"], None]

def stack_size_limit(configs: list[dict[str, Any]], device: str = "cpu", budget_bytes: int | None = None) -> int:
    """How many of ``configs`` (runs of one key) fit ``budget_bytes`` in one stack, at least 1; the default
    budget is half the free memory of ``device`` (MemAvailable, or CUDA's free memory)."""
    import torch

    if budget_bytes is None:
        budget_bytes = _free_bytes(torch.device(device)) // 2
    return max(1, min(len(configs), budget_bytes // member_bytes(configs[0])))


def member_bytes(config: dict[str, Any]) -> int:
    """What one member of a stack of ``config``'s key holds, estimated: its stacked weights, gradients and
    optimizer state, its own module with a copy of its best epoch and a checkpoint's bytes, its split of the
    data (held by its run, its training samples again by the stack) and its activations of one batch."""
    import torch

    from losszoo.training.trainer import build, load_run_data

    data = load_run_data(config)
    model, loss = build(config, data, torch.device("cpu"))
    weights = sum(p.numel() for p in [*model.parameters(), *loss.parameters()])
    states = 2 if config["train"]["optimizer"]["name"] != "sgd" else 1
    widths = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    sample = data.train.x[0].numel() + data.train.y[0].numel()
    samples = 2 * len(data.train) + len(data.val) + len(data.test)
    activations = 3 * config["train"]["batch_size"] * (data.train.x[0].numel() + sum(widths))
    return 4 * ((2 + states + 3) * weights + samples * sample + activations)


def _free_bytes(device: Any) -> int:
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with open("/proc/meminfo") as meminfo:  # Linux; elsewhere assume 4 GiB
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 4 << 30


# --- the stack: weights, forward, optimizer ------------------------------------------------------


def _layers(model: Any) -> list[tuple[str, Any]] | str:
    """The model's layers in forward order as (name, module), or why they do not stack."""
    from torch import nn

    from losszoo.models.nets import Net

    if not isinstance(model, Net) or type(model).forward is not Net.forward or \
            type(model).features is not Net.features:
        return f"not stacked: model {type(model).__name__} is not a plain Net (body, neck, head)"
    body = model.body.named_children() if isinstance(model.body, nn.Sequential) else [("", model.body)]
    layers = [(f"body.{name}" if name else "body", module) for name, module in body]
    layers += [("neck", model.neck)] if model.neck is not None else []
    layers += [("head", model.head)]
    elementwise = (nn.ReLU, nn.GELU, nn.Tanh, nn.SiLU, nn.Identity)  # the same function on every member's rows
    for _, module in layers:
        flat = isinstance(module, nn.Flatten) and (module.start_dim, module.end_dim) == (1, -1)
        if not (flat or isinstance(module, nn.Linear) or type(module) in elementwise):
            return f"not stacked: the model has a {type(module).__name__} layer"
    return layers


def _column(values: list[float], like: Any) -> Any:
    """One number per member, broadcasting over ``like``; a plain float when all are equal (always for a chunk of
    one member), so the update is torch's own scalar operation, bit for bit."""
    import torch

    if all(v == values[0] for v in values):
        return float(values[0])
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, *[1] * (like.ndim - 1))


def _plus_scaled(y: Any, x: Any, a: Any) -> Any:
    """y + a x (``a`` a float or a column)."""
    import torch

    return y.add(x, alpha=a) if isinstance(a, float) else torch.addcmul(y, x, a)


class _Stack:
    """The members' weights as one batch of parameters, their training data, and the optimizer state.

    Parameters are in the single run's order (the model's, then the loss's trainable ones), each stacked along
    a new first axis: member j's weights are row j.
    """

    def __init__(self, runs: list[Any], layers: list[tuple[str, Any]]):
        import torch
        from torch import nn

        first = runs[0]
        self.layers = layers
        linear = {f"model.{name}.weight" for name, module in layers if isinstance(module, nn.Linear)}
        self.model_names = [name for name, _ in first.model.named_parameters()]
        self.loss_names = [name for name, p in first.loss.named_parameters() if p.requires_grad]
        # A linear layer's weight is stacked transposed, (M, in, out): baddbmm reads it as it lies, and its
        # gradient comes back in that layout (a weight stacked as (M, out, in) gets a transposed copy per step).
        self.transposed = [name in linear for name in self._names()]
        self.params = [torch.stack([_oriented(_parameter(run, name).detach(), turn) for run in runs]).requires_grad_()
                       for name, turn in zip(self._names(), self.transposed, strict=True)]
        self.x = torch.stack([run.data.train.x for run in runs]).to(first.device)
        self.y = torch.stack([run.data.train.y for run in runs]).to(first.device)
        self.optimizer = first.config["train"]["optimizer"]["name"]
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def _names(self) -> list[str]:
        return [f"model.{n}" for n in self.model_names] + [f"loss.{n}" for n in self.loss_names]

    def keep(self, rows: list[int]) -> None:
        """Only the members at ``rows`` go on training."""
        self.params = [p.detach()[rows].requires_grad_() for p in self.params]
        self.x, self.y = self.x[rows], self.y[rows]
        self.state = [{k: v[rows] if k != "step" else v for k, v in state.items()} for state in self.state]

    def _with_gradients(self) -> list[tuple[Any, dict[str, Any]]]:
        """(parameter, its optimizer state) for those the step reached; torch's optimizers skip the others."""
        return [(p, state) for p, state in zip(self.params, self.state, strict=True) if p.grad is not None]

    def forward(self, x: Any) -> Any:
        """The model of every member on its own batch: x (M, B, ...) -> (M, B, out)."""
        import torch
        from torch import nn

        weights = dict(zip(self.model_names, self.params[:len(self.model_names)], strict=True))
        for name, module in self.layers:
            if isinstance(module, nn.Linear):
                weight, bias = weights[f"{name}.weight"], weights.get(f"{name}.bias")
                x = torch.bmm(x, weight) if bias is None else torch.baddbmm(bias.unsqueeze(1), x, weight)
            elif isinstance(module, nn.Flatten):
                x = x.flatten(2)
            else:
                x = module(x)
        return x

    def loss(self, j: int, run: Any, output: Any, target: Any) -> Any:
        """Member j's own loss module on its slice; its learnable weights (if any) are row j of the stack."""
        if not self.loss_names:
            return run.loss(output, target)
        from torch.func import functional_call

        rows = {name: p[j] for name, p in zip(self.loss_names, self.params[len(self.model_names):], strict=True)}
        return functional_call(run.loss, rows, (output, target))

    def copy_into(self, j: int, run: Any) -> None:
        """Member j's current weights into its own modules, which evaluation and checkpoints read."""
        import torch

        with torch.no_grad():
            for name, p, turn in zip(self._names(), self.params, self.transposed, strict=True):
                _parameter(run, name).copy_(_oriented(p[j], turn))

    def clip(self, max_norm: float) -> None:
        """``clip_grad_norm_`` per member: each member's gradients scaled by its own total norm."""
        import torch

        with torch.no_grad():
            grads = [p.grad for p, _ in self._with_gradients()]
            norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads], 1)
            coef = torch.clamp(max_norm / (torch.linalg.vector_norm(norms, dim=1) + 1e-6), max=1.0)
            for g in grads:
                g.mul_(coef.view(-1, *[1] * (g.ndim - 1)))

    def step(self, groups: list[dict[str, Any]]) -> None:
        """One optimizer step; ``groups`` are the members' own torch optimizers' param_groups[0]: their lr
        (set by their schedulers), weight decay, momentum, betas and eps."""
        import torch

        with torch.no_grad():
            if self.optimizer == "sgd":
                self._sgd(groups)
            else:
                self._adam(groups)

    def _sgd(self, groups: list[dict[str, Any]]) -> None:
        """torch.optim.SGD's single-tensor step (dampening 0, no nesterov)."""
        import torch

        lr, decay, momentum = ([g[k] for g in groups] for k in ("lr", "weight_decay", "momentum"))
        for param, state in self._with_gradients():
            first = "momentum_buffer" not in state
            if any(momentum) and first:
                state["momentum_buffer"] = torch.empty_like(param)
            for rows in _chunks(param):
                p, grad = param[rows], param.grad[rows]
                if any(decay[rows]):
                    grad = _plus_scaled(grad, p, _column(decay[rows], p))
                if any(momentum):
                    buffer = state["momentum_buffer"][rows]
                    if first:
                        buffer.copy_(grad)
                    else:  # a member with momentum 0 gets buffer * 0 + grad: its gradient, as without a buffer
                        buffer.mul_(_column(momentum[rows], p)).add_(grad)
                    grad = buffer
                step = _column([-v for v in lr[rows]], p)
                if isinstance(step, float):
                    p.add_(grad, alpha=step)
                else:
                    p.addcmul_(grad, step)

    def _adam(self, groups: list[dict[str, Any]]) -> None:
        """torch.optim.Adam's and AdamW's single-tensor step (no amsgrad), every active member at the same step."""
        import torch

        (beta1, beta2), eps = groups[0]["betas"], groups[0]["eps"]
        lr, decay = [g["lr"] for g in groups], [g["weight_decay"] for g in groups]
        shrink = [1 - r * d for r, d in zip(lr, decay, strict=True)]  # AdamW's decoupled decay
        for param, state in self._with_gradients():
            if not state:
                state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(param), torch.zeros_like(param)
                state["step"] = 0  # a Python number here (a tensor in torch; it reads it back as a float)
            state["step"] += 1
            bias_correction1 = 1 - beta1 ** float(state["step"])
            bias_correction2_sqrt = (1 - beta2 ** float(state["step"])) ** 0.5
            step_size = [-(r / bias_correction1) for r in lr]
            for rows in _chunks(param):
                p, grad, exp_avg, exp_avg_sq = param[rows], param.grad[rows], state["exp_avg"][rows], \
                    state["exp_avg_sq"][rows]
                if any(decay[rows]) and self.optimizer == "adamw":
                    p.mul_(_column(shrink[rows], p))
                elif any(decay[rows]):
                    grad = _plus_scaled(grad, p, _column(decay[rows], p))
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                step = _column(step_size[rows], p)
                if isinstance(step, float):
                    p.addcdiv_(exp_avg, denom, value=step)
                else:  # addcdiv_ computes value * exp_avg / denom; so does this, with a value per member
                    p.add_(exp_avg.mul(step).div_(denom))


#: Elements per optimizer operation. The update is a handful of passes over each tensor: over chunks of
#: members that stay in a core's cache (2 MiB of L2 here) they run 2.5x faster than over a whole stack.
CHUNK = 1 << 16


def _chunks(param: Any) -> list[slice]:
    """Slices of members along the stack's first axis, about CHUNK elements each."""
    per = max(1, CHUNK // max(1, param.numel() // len(param)))
    return [slice(start, start + per) for start in range(0, len(param), per)]


def _oriented(weight: Any, transposed: bool) -> Any:
    return weight.T if transposed else weight


def _parameter(run: Any, name: str) -> Any:
    """``model.body.1.weight`` or ``loss.weight`` of a run, as the Parameter object."""
    owner, _, rest = name.partition(".")
    return (run.model if owner == "model" else run.loss).get_parameter(rest)


# --- training the members together ---------------------------------------------------------------


@dataclass
class _Member:
    """One run of a stack: its place among the configs, its set-up run, what its fit has left so far."""

    index: int
    config: dict[str, Any]
    folder: Path
    run: Any = None  # trainer.Run, once set up
    fit: Any = None  # trainer.Fit
    log: IO[str] | None = None
    outcome: dict[str, Any] | BaseException | None = None  # what train_run returns, or the exception it raises


def train_stack(configs: list[dict[str, Any]], folders: list[Path], on_epoch: StackOnEpoch | None = None,
                prune: StackPrune | None = None, on_finish: StackOnFinish | None = None
                ) -> list[dict[str, Any] | BaseException]:
    """Train the runs together and write each folder as ``train_run`` would; return, for each config, what
    ``train_run`` returns, or the exception it would have raised (record that run failed, as ``run_one`` does).

    Members of different training-set sizes or weight shapes train in separate stacks, one after another; a
    run with a ``stack_problem`` trains alone, by ``train_run``'s own steps. ``on_finish(i, outcome)`` hears
    of each member as soon as it is done. KeyboardInterrupt goes through.
    """
    import torch

    from losszoo.training import trainer

    threads = torch.get_num_threads()
    members = [_Member(i, config, Path(folder)) for i, (config, folder) in enumerate(zip(configs, folders,
                                                                                          strict=True))]
    try:
        for member in members:
            if stack_problem(member.config) is None:
                try:
                    member.run, member.fit = trainer.setup(member.config, member.folder), trainer.Fit()
                except (Exception, SystemExit) as error:  # the setup train_run would have raised in
                    _done(member, error, on_finish)
        for group, layers in _groups([m for m in members if m.outcome is None]):
            torch.set_num_threads(group[0].config["train"].get("threads", 1))
            if isinstance(layers, str):
                _train_alone(group[0], on_epoch, prune, on_finish)
                continue
            for part in _fitting(group):
                _train_together(part, layers, on_epoch, prune, on_finish)
    except BaseException as error:  # a Ctrl-C, or an error no member owns: no tracker is left RUNNING
        from losszoo.training import interrupts

        for member in members:
            if member.run is not None and member.run.trackers is not None:  # nothing after a member's finish
                member.run.trackers.abort(isinstance(error, KeyboardInterrupt) and interrupts.received())
        raise
    finally:
        torch.set_num_threads(threads)
    return [m.outcome for m in members]


def _fitting(group: list[_Member]) -> list[list[_Member]]:
    """``train.stack: auto`` stacks split to fit half the free memory of their device (``stack_size_limit``);
    an explicit ``train.stack: N`` is the user's to size."""
    if group[0].config["train"].get("stack", "auto") != "auto":
        return [group]
    size = stack_size_limit([m.config for m in group], str(group[0].run.device))
    return [group[start:start + size] for start in range(0, len(group), size)]


def _groups(members: list[_Member]) -> list[tuple[list[_Member], Any]]:
    """Members that share a stack, with the model's layers; a member that cannot, alone with the reason."""
    groups: dict[tuple, tuple[list[_Member], Any]] = {}
    for member in members:
        layers = stack_problem(member.config) or _layers(member.run.model)
        key = _signature(member.run) if not isinstance(layers, str) else ("alone", member.index)
        groups.setdefault(key, ([], layers))[0].append(member)
    return list(groups.values())


def _signature(run: Any) -> tuple:
    """What members of one stack must share: the settings of one stack, the number of samples in an epoch,
    and the shapes of every stacked tensor."""
    import torch

    from losszoo.data.sampler import m_per_class_order

    data, train = run.data.train, run.config["train"]
    order = len(data)
    if run.loss_entry.needs_pairs:  # its length follows from the class counts, whatever the draw
        order = len(m_per_class_order(data.y, train["m_per_class"], torch.Generator().manual_seed(0)))
    weights = [(n, tuple(p.shape)) for n, p in run.model.named_parameters()]
    weights += [(n, tuple(p.shape)) for n, p in run.loss.named_parameters() if p.requires_grad]
    return (stack_key(run.config), len(data), order, str(run.device), tuple(weights),
            tuple(data.x.shape[1:]), data.x.dtype, tuple(data.y.shape[1:]), data.y.dtype)


def _train_alone(member: _Member, on_epoch: StackOnEpoch | None, prune: StackPrune | None,
                 on_finish: StackOnFinish | None) -> None:
    """``train_run``'s steps, set-up included: seeded afresh, a model with dropout draws what it would alone."""
    from losszoo.training.trainer import finish, fit, setup, trackers_closed

    i = member.index
    try:
        run = setup(member.config, member.folder)
        with trackers_closed(run):
            outcome = finish(run, fit(run, on_epoch and (lambda *a: on_epoch(i, *a)),
                                      prune and (lambda epoch, val: prune(i, epoch, val))))
    except (Exception, SystemExit) as error:  # a plugin's sys.exit fails this run only, as in runner._train_one
        outcome = error
    _done(member, outcome, on_finish)


def _train_together(members: list[_Member], layers: list[tuple[str, Any]], on_epoch: StackOnEpoch | None,
                    prune: StackPrune | None, on_finish: StackOnFinish | None) -> None:
    """``trainer.fit`` for a stack: lr -> shuffle -> forward/backward -> clip -> step, then each member's
    end of epoch (``_end_epoch``); a member that ends leaves the stack, and ``trainer.finish`` writes it."""
    import torch

    from losszoo.training.trainer import batch_bounds, epoch_order

    first = members[0].run
    train = first.config["train"]
    epochs = train["epochs"]
    n = 0  # samples in an epoch (a pair loss's order has its own length)
    stack = _Stack([m.run for m in members], layers)
    for member in members:
        member.run.folder.mkdir(parents=True, exist_ok=True)
        member.log = (member.run.folder / "metrics.jsonl").open("w")
    try:
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            groups = [m.run.optimizer.param_groups[0] for m in members]  # each member's lr, set by its scheduler
            lrs = [group["lr"] for group in groups]
            orders = torch.stack([epoch_order(m.run) for m in members])
            n = orders.shape[1]
            rows = torch.arange(len(members), device=first.device).unsqueeze(1)
            totals = torch.zeros(len(members), device=first.device)
            failed: dict[int, BaseException] = {}
            for start, stop in batch_bounds(orders.shape[1], train["batch_size"]):
                index = orders[:, start:stop]
                # unbind, not output[j]: its backward stacks the M gradients once (M selects would each
                # fill a zero tensor of the whole output)
                outputs = stack.forward(stack.x[rows, index]).unbind(0)
                value = _losses(stack, members, outputs, stack.y[rows, index], failed, epoch == 1 and start == 0)
                if value.requires_grad:
                    for p in stack.params:
                        p.grad = None
                    value.sum().backward()  # d(sum)/d(member's loss) = 1: each member gets its own gradient
                    if train["grad_clip"]:
                        stack.clip(train["grad_clip"])
                    stack.step(groups)
                totals += value.detach().float() * index.shape[1]
            with warnings.catch_warnings():  # the members' own optimizers never step: the stack steps for them
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
                for member in members:
                    if member.run.scheduler is not None:
                        member.run.scheduler.step()
            train_losses = (totals / orders.shape[1]).tolist()  # one sync per epoch, as in fit

            ended = []
            for j, member in enumerate(members):
                member.fit.epochs_run = epoch
                if j not in failed and math.isfinite(train_losses[j]):
                    stack.copy_into(j, member.run)  # evaluation reads the member's own modules
                    try:
                        if _end_epoch(member, epoch, lrs[j], train_losses[j], on_epoch, prune):
                            ended.append(j)
                    except (Exception, SystemExit) as error:  # a metric plugin's sys.exit too
                        failed[j] = error
                        ended.append(j)
                elif j not in failed:
                    member.fit.status, member.fit.error = "diverged", f"non-finite train loss at epoch {epoch}"
                    ended.append(j)
                else:
                    ended.append(j)
            share = (time.perf_counter() - started) / len(members)  # the epoch's time, shared by its members
            for member in members:
                member.fit.seconds += share
            for j in ended:
                _close(members[j], stack, j, n, failed.get(j), on_finish)
            if ended:
                kept = [j for j in range(len(members)) if j not in ended]
                stack.keep(kept)
                members = [members[j] for j in kept]
            if not members:
                return
        for j, member in enumerate(members):
            _close(member, stack, j, n, None, on_finish)
    finally:
        for member in members:
            member.log.close()


def _losses(stack: _Stack, members: list[_Member], outputs: tuple, targets: Any, failed: dict[int, BaseException],
            first_step: bool) -> Any:
    """Each member's own loss on its own batch, stacked (M,). A member whose loss raises has failed, as its
    single run would have (a plugin's sys.exit too); it adds nothing more this epoch, and the others go on."""
    import torch

    from losszoo.training.trainer import check_first_value

    values = []
    for j, member in enumerate(members):
        value = outputs[j].new_zeros(())
        if j not in failed:
            try:
                value = stack.loss(j, member.run, member.run.kind.loss_input(outputs[j]), targets[j])
                if first_step:
                    check_first_value(value, member.run.loss_entry.name)
            except (Exception, SystemExit) as error:
                failed[j], value = error, outputs[j].new_zeros(())
        values.append(value.float())  # a plugin's float64 loss stacks with the rest (a no-op on float32)
    return torch.stack(values)


def _end_epoch(member: _Member, epoch: int, lr: float, train_loss: float, on_epoch: StackOnEpoch | None,
               prune: StackPrune | None) -> bool:
    """The end of the member's epoch, as a single run ends it (``trainer.end_epoch``), its weights in its modules."""
    from losszoo.training.trainer import end_epoch

    i = member.index
    return end_epoch(member.run, member.fit, member.log, epoch, lr, train_loss,
                     on_epoch and (lambda *a: on_epoch(i, *a)), prune and (lambda e, val: prune(i, e, val)))


def _close(member: _Member, stack: _Stack, j: int, n: int, error: BaseException | None,
           on_finish: StackOnFinish | None) -> None:
    """The member is done: its last weights into its modules, then ``trainer.finish`` as after a single fit."""
    from losszoo.training.trainer import finish

    member.log.close()
    outcome: dict[str, Any] | BaseException | None = error
    if error is None:
        stack.copy_into(j, member.run)  # its last weights: last.pt
        member.fit.samples = n * member.fit.epochs_run
        try:
            outcome = finish(member.run, member.fit)
        except (Exception, SystemExit) as failure:
            outcome = failure
    _done(member, outcome, on_finish)


def _done(member: _Member, outcome: dict[str, Any] | BaseException, on_finish: StackOnFinish | None) -> None:
    member.outcome = outcome
    if isinstance(outcome, BaseException) and member.run is not None and member.run.trackers is not None:
        member.run.trackers.abort(interrupted=False)
    if on_finish is not None:
        on_finish(member.index, outcome)
