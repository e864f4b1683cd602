"""Train one run, top to bottom: set up, fit, finish.

    losszoo train recipes/digits-margin.yaml     # calls train_run once per run

The data sits in memory as tensors and is batched by slicing a permutation:
no DataLoader, no per-sample Python. ``fit`` is one loop, in the order things
happen: lr -> shuffle -> forward/backward -> clip -> step, then the val
evaluation that picks the reported epoch, a metrics.jsonl line, early
stopping. A tuning trial is the same run that stops before the test split.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from losszoo.data.sampler import m_per_class_order
from losszoo.data.splits import Data, load_data
from losszoo.errors import RunError
from losszoo.factory import create_loss
from losszoo.inputs import INPUT_KINDS, InputKind
from losszoo.losses._common import labels_checked, labels_in_range
from losszoo.registry import LOSSES, METRICS, MODELS, LossEntry
from losszoo.training.evaluate import Evaluation, compute_metrics, evaluate  # noqa: F401  (Evaluation re-exported)
from losszoo.training.store import write_atomic

#: Progress callback: (epoch, epochs, train_loss, selection metric name, its val value).
OnEpoch = Callable[[int, int, float, str, float | None], None]
#: Asked after each epoch of a tuning trial: (epoch, its val metrics) -> stop it now (pruned)?
Prune = Callable[[int, dict[str, float]], bool]


class Diverged(Exception):
    """The loss became non-finite; the run is recorded as `diverged`."""


def check_first_value(value: object, name: str) -> None:
    """The first loss value of a run must be a finite scalar with a gradient.

    Anything else is a broken loss, not a divergence: the run is `failed` with
    this message (a user's plugin loss is the usual suspect).
    """
    if not isinstance(value, torch.Tensor):
        raise RunError(f"loss {name!r} returned {type(value).__name__}, not a tensor")
    if value.ndim != 0:
        raise RunError(f"loss {name!r} returned shape {tuple(value.shape)} on the first step, not a scalar")
    if not value.requires_grad:
        raise RunError(f"loss {name!r} returned a value without a gradient on the first step (detached?)")
    if not torch.isfinite(value):
        raise RunError(f"loss {name!r} is {value.item()} on the first step, before any update")


# --- small helpers -------------------------------------------------------------------------------


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def make_optimizer(params: list[nn.Parameter], cfg: dict[str, Any]) -> torch.optim.Optimizer:
    if cfg["name"] == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    optimizer = torch.optim.Adam if cfg["name"] == "adam" else torch.optim.AdamW
    return optimizer(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: dict[str, Any], epochs: int):
    if cfg["name"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if cfg["name"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["step_size"], gamma=cfg["gamma"])
    return None


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each batch of an epoch; a last batch of one sample joins the one before it,
    since batch norm cannot normalise a single sample (and one sample says little anyway)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(start, starts[i + 1] if i + 1 < len(starts) else n) for i, start in enumerate(starts)]


def is_better(value: float, best: float | None, higher_is_better: bool) -> bool:
    if value is None or math.isnan(value):
        return False
    return best is None or (value > best if higher_is_better else value < best)


def head_size(loss_input: str, data: Data, embedding_dim: int) -> int:
    """How many outputs the model's head needs for the loss's input kind."""
    return INPUT_KINDS[loss_input].head_size(data.num_classes, embedding_dim)


def load_run_data(config: dict[str, Any]) -> Data:
    """The run's dataset, split by its seed.

    Regression targets are standardised, except that losses defined only for
    non-negative targets (msle, poisson_nll, mape) get them scaled, not centred.
    """
    params = {k: v for k, v in config["dataset"].items() if k != "name"}
    low = (LOSSES.get(config["loss"]["name"]).target_range or (None, None))[0]
    return load_data(config["dataset"]["name"], params, config["seed"], center_targets=low is None or low < 0)


def retrieves_with_neck(config: dict[str, Any]) -> bool:
    """A loss on class logits whose run reports retrieval metrics gets an ``embedding_dim`` layer before its
    head and retrieves with it, as embedding losses do: every loss of an open-set comparison then retrieves
    with features of the same layer and dimension."""
    loss_input = LOSSES.get(config["loss"]["name"]).input
    return loss_input == "logits" and any(
        m in METRICS and METRICS.get(m).input == "embeddings" for m in config["metrics"])


def build(config: dict[str, Any], data: Data, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """The run's model, its head sized for the loss, and the loss with the data's context."""
    loss_entry = LOSSES.get(config["loss"]["name"])
    model_params = {k: v for k, v in config["model"].items() if k != "name"}
    embedding_dim = model_params.get("embedding_dim", 64)
    model = MODELS.get(config["model"]["name"]).load()(
        in_features=data.in_features,
        image_shape=data.image_shape,
        out_dim=head_size(loss_entry.input, data, embedding_dim),
        **model_params,
    )
    if retrieves_with_neck(config) and hasattr(model, "add_neck"):
        model.add_neck(embedding_dim)
    loss = create_loss(
        loss_entry.name,
        **{k: v for k, v in config["loss"].items() if k != "name"},
        num_classes=data.num_classes,
        embedding_dim=embedding_dim,
        class_counts=data.class_counts,
    )
    return model.to(device), loss.to(device)


def retrieval_layer(config: dict[str, Any], model: nn.Module) -> str | None:
    """Which features the run's retrieval metrics read, in words, for result.json (None without any)."""
    if not any(m in METRICS and METRICS.get(m).input == "embeddings" for m in config["metrics"]):
        return None
    loss_input = LOSSES.get(config["loss"]["name"]).input
    if loss_input == "embeddings":
        return f"embedding ({config['model'].get('embedding_dim', 64)}-d)"
    neck = getattr(model, "neck", None)
    if isinstance(neck, nn.Linear):
        return f"embedding ({neck.out_features}-d)"
    head = getattr(model, "head", None)
    return f"last hidden layer ({head.in_features}-d)" if isinstance(head, nn.Linear) else None


def checkpoint_bytes(model: nn.Module, loss: nn.Module, config: dict[str, Any], epoch: int) -> bytes:
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "loss": loss.state_dict(), "config": config, "epoch": epoch}, buffer)
    return buffer.getvalue()


# --- the run: set up, fit, finish ----------------------------------------------------------------


@dataclass
class Run:
    """Everything a run holds while it trains."""

    config: dict[str, Any]
    folder: Path
    device: torch.device
    data: Data
    loss_entry: LossEntry
    kind: InputKind
    model: nn.Module
    loss: nn.Module
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    select: str | None  # the val metric that picks the reported epoch; None: the last epoch
    higher: bool
    autocast: Callable[[], Any]
    scaler: Any
    trackers: Any = None  # losszoo.training.trackers.Trackers when train.log names some


@dataclass
class Fit:
    """What ``fit`` leaves: the status, the reported epoch and its weights, the last epoch's."""

    status: str = "completed"
    error: str | None = None
    epochs_run: int = 0
    best_epoch: int = 0
    best_value: float | None = None
    best_val: dict[str, float] = field(default_factory=dict)
    best_state: tuple[dict, dict] | None = None
    fitted: dict[str, Any] = field(default_factory=dict)  # parameters chosen on val (a threshold)
    curve: list[dict[str, float]] = field(default_factory=list)  # the val metrics of every epoch
    stale: int = 0  # epochs since the reported one (early stopping)
    seconds: float = 0.0
    samples: int = 0


def _precision(name: str, device: torch.device) -> tuple[Callable[[], Any], Any]:
    """The autocast context of ``train.precision`` and, for fp16 on a GPU, a gradient scaler."""
    if name == "fp32":
        return contextlib.nullcontext, None
    dtype = torch.bfloat16 if name == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if name == "fp16" and device.type == "cuda" else None
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler


def setup(config: dict[str, Any], folder: Path) -> Run:
    train = config["train"]
    generator = seed_everything(config["seed"])
    device = resolve_device(train["device"])
    data = load_run_data(config)
    loss_entry = LOSSES.get(config["loss"]["name"])
    model, loss = build(config, data, device)
    params = [p for p in list(model.parameters()) + list(loss.parameters()) if p.requires_grad]
    optimizer = make_optimizer(params, train["optimizer"])
    select = None if config["select_by"] == "last" else config["select_by"].rpartition(".")[2]
    autocast, scaler = _precision(train.get("precision", "fp32"), device)
    trackers = None
    if train.get("log"):
        from losszoo.training.trackers import Trackers

        trackers = Trackers(train["log"], config, folder)
    return Run(config, folder, device, data, loss_entry, INPUT_KINDS[loss_entry.input], model, loss, params,
               optimizer, make_scheduler(optimizer, train["scheduler"], train["epochs"]), generator, select,
               bool(METRICS.get(select).higher_is_better) if select else True, autocast, scaler, trackers)


def epoch_order(run: Run) -> torch.Tensor:
    """An epoch's order of the training samples, from the run's own generator: a permutation, or m samples
    per class for pair losses (so anchors have positives in the batch; its length follows the class counts)."""
    if run.loss_entry.needs_pairs:
        return m_per_class_order(run.data.train.y, run.config["train"]["m_per_class"], run.generator).to(run.device)
    return torch.randperm(len(run.data.train), generator=run.generator).to(run.device)


def fit(run: Run, on_epoch: OnEpoch | None = None, prune: Prune | None = None) -> Fit:
    """Train epoch by epoch; keep the epoch ``select_by`` picks (the last with ``select_by: last``)."""
    x_train, y_train = run.data.train.x.to(run.device), run.data.train.y.to(run.device)
    outcome = Fit()
    run.folder.mkdir(parents=True, exist_ok=True)
    log = (run.folder / "metrics.jsonl").open("w")
    started = time.perf_counter()
    try:
        with checked_once(run, y_train):
            _epochs(run, x_train, y_train, outcome, log, on_epoch, prune)
    except Diverged as problem:
        outcome.status, outcome.error = "diverged", str(problem)
    finally:
        log.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


def checked_once(run: Run, labels: torch.Tensor) -> contextlib.AbstractContextManager:
    """Class labels all in range are checked here once, not by the loss at every step."""
    if run.loss_entry.target_kind in ("labels", "masks") and run.data.num_classes and labels_in_range(
            labels, run.data.num_classes):
        return labels_checked()
    return contextlib.nullcontext()


def _epochs(run: Run, x_train: torch.Tensor, y_train: torch.Tensor, outcome: Fit, log: Any,
            on_epoch: OnEpoch | None, prune: Prune | None) -> None:
    train = run.config["train"]
    model, loss, optimizer, kind = run.model, run.loss, run.optimizer, run.kind
    for epoch in range(1, train["epochs"] + 1):
        lr = optimizer.param_groups[0]["lr"]
        order = epoch_order(run)
        total = torch.zeros((), device=run.device)
        for start, stop in batch_bounds(len(order), train["batch_size"]):
            index = order[start:stop]
            with run.autocast():
                value = loss(kind.loss_input(model(x_train[index])), y_train[index])
            if epoch == 1 and start == 0:
                check_first_value(value, run.loss_entry.name)
            optimizer.zero_grad(set_to_none=True)
            if run.scaler is None:
                value.backward()
            else:
                run.scaler.scale(value).backward()
                run.scaler.unscale_(optimizer)
            if train["grad_clip"]:
                nn.utils.clip_grad_norm_(run.params, train["grad_clip"])
            if run.scaler is None:
                optimizer.step()
            else:
                run.scaler.step(optimizer)
                run.scaler.update()
            total.add_(value.detach(), alpha=len(index))
        if run.scheduler is not None:
            run.scheduler.step()
        outcome.epochs_run = epoch
        outcome.samples += len(order)
        train_loss = (total / len(order)).item()  # one CPU-GPU sync per epoch, not per step
        if not math.isfinite(train_loss):
            raise Diverged(f"non-finite train loss at epoch {epoch}")
        if end_epoch(run, outcome, log, epoch, lr, train_loss, on_epoch, prune):
            break


def end_epoch(run: Run, outcome: Fit, log: Any, epoch: int, lr: float, train_loss: float,
              on_epoch: OnEpoch | None = None, prune: Prune | None = None) -> bool:
    """What follows an epoch's steps, whether the run trains alone or in a stack: the val metrics, the
    metrics.jsonl line and trackers, the reported epoch's weights, checkpoints, progress; True to stop
    (early stopping, or a pruned trial)."""
    train = run.config["train"]
    fitted: dict[str, Any] = {}
    evaluation = evaluate(run.model, run.loss, run.loss_entry.input, run.data.val, run.data, run.device)
    val = compute_metrics(evaluation, run.config["metrics"], fitted=fitted, fit=True)
    outcome.curve.append(val)
    log.write(json_line({"epoch": epoch, "lr": lr, "train_loss": train_loss, "val": val}))
    log.flush()
    if run.trackers is not None:
        run.trackers.epoch(epoch, train_loss, lr, val)
    current = val.get(run.select) if run.select else None
    if run.select is None or is_better(current, outcome.best_value, run.higher):
        outcome.best_value, outcome.best_epoch, outcome.best_val, outcome.stale = current, epoch, val, 0
        outcome.fitted = fitted
        outcome.best_state = (_state_copy(run.model), _state_copy(run.loss))
    else:
        outcome.stale += 1
    if train.get("save_every") and epoch % train["save_every"] == 0:
        write_atomic(run.folder / "checkpoints" / f"epoch-{epoch:04d}.pt",
                     checkpoint_bytes(run.model, run.loss, run.config, epoch))
    if on_epoch is not None:
        on_epoch(epoch, train["epochs"], train_loss, run.select or "last",
                 current if run.select else val.get(next(iter(val), ""), None))
    if train["patience"] and run.select and outcome.stale >= train["patience"]:
        return True
    if prune is not None and prune(epoch, val):
        outcome.status, outcome.error = "pruned", f"pruned after epoch {epoch}: below the median of earlier trials"
        return True
    return False


def _state_copy(module: nn.Module) -> dict[str, Any]:
    """A copy of ``module``'s weights and buffers (cheaper than deepcopy, which copies each tensor's Python state);
    a plugin module's extra state (``get_extra_state``) may be any object: deep-copied."""
    return {key: value.detach().clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
            for key, value in module.state_dict().items()}


def finish(run: Run, outcome: Fit) -> dict[str, Any]:
    """Test the reported epoch's weights (not a tuning trial's: it stops at val), write the checkpoints,
    and say what the run was."""
    config, model, loss, data = run.config, run.model, run.loss, run.data
    metrics: dict[str, dict[str, float]] = {"val": outcome.best_val}
    gap = None
    if outcome.best_state is not None:
        write_atomic(run.folder / "last.pt", checkpoint_bytes(model, loss, config, outcome.epochs_run))
        model.load_state_dict(outcome.best_state[0])
        loss.load_state_dict(outcome.best_state[1])
        if not config.get("trial"):
            test = evaluate(model, loss, run.loss_entry.input, data.test, data, run.device)
            metrics["test"] = compute_metrics(test, config["metrics"], retrieval_only=data.open_set,
                                              fitted=outcome.fitted)
            train = evaluate(model, loss, run.loss_entry.input, data.train, data, run.device)
            metrics["train"] = compute_metrics(train, config["metrics"], fitted=outcome.fitted)
            gap = _generalization_gap(config, metrics)
            _embedding_picture(run, test)
        write_atomic(run.folder / "checkpoint.pt", checkpoint_bytes(model, loss, config, outcome.best_epoch))
    if run.trackers is not None:
        run.trackers.finish(outcome.status, metrics)
    trial = {"val_curves": {m: [v.get(m) for v in outcome.curve] for m in config["metrics"]}} if config.get(
        "trial") else {}  # what the median rule compares later trials with
    return trial | {
        "status": outcome.status,
        "metrics": metrics,
        "best_epoch": outcome.best_epoch,
        "epochs_run": outcome.epochs_run,
        "train_seconds": round(outcome.seconds, 4),
        "samples_per_second": round(outcome.samples / outcome.seconds) if outcome.seconds > 0 else None,
        "n_parameters": sum(p.numel() for p in model.parameters()) + sum(p.numel() for p in loss.parameters()),
        "generalization_gap": gap,
        "error": outcome.error,
        "provenance": {
            "split_sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            "train_class_counts": data.class_counts,
            "class_names": data.class_names,
            "device": str(run.device),
            "threads": torch.get_num_threads(),
            "precision": config["train"].get("precision", "fp32"),
            "retrieval_layer": retrieval_layer(config, model),
            "fitted_on_val": outcome.fitted,
        },
    }


def _generalization_gap(config: dict[str, Any], metrics: dict[str, dict[str, float]]) -> dict[str, Any] | None:
    """How much worse test is than train on the metric that picks the epoch (the first metric with
    ``select_by: last``): train - test where higher is better, test - train where lower is (nll, rmse), so a
    larger gap is always more overfitting."""
    name = config["select_by"].rpartition(".")[2] if config["select_by"] != "last" else config["metrics"][0]
    train, test = metrics.get("train", {}).get(name), metrics.get("test", {}).get(name)
    if train is None or test is None:
        return None
    if name not in METRICS or METRICS.get(name).higher_is_better:
        return {"metric": name, "value": train - test, "definition": "train - test"}
    return {"metric": name, "value": test - train, "definition": "test - train"}


def _embedding_picture(run: Run, test: Evaluation) -> None:
    embeddings = test.outputs.get("embeddings")
    if run.loss_entry.input == "embeddings" and embeddings is not None and embeddings.shape[1] == 2:
        from losszoo.training.pictures import plot_embeddings

        centres = getattr(run.loss, "weight", None)
        plot_embeddings(embeddings, test.target, centres if isinstance(centres, torch.Tensor) else None,
                        run.folder / "embeddings.png", f"{run.config['label']} - test embeddings")


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"


def train_run(config: dict[str, Any], run_dir: Path, on_epoch: OnEpoch | None = None,
              prune: Prune | None = None) -> dict[str, Any]:
    """Train the run described by a resolved ``config``; write its folder; return its outcome.

    Returns ``{"status", "metrics", "best_epoch", "epochs_run", "train_seconds", ...}``. Raises
    KeyboardInterrupt through (the caller records the run as interrupted).

    Torch uses ``train.threads`` CPU threads during the run (1 by default):
    the small models of a loss comparison run fastest on one thread, and a run
    then gives the same numbers whether it trains alone or beside others.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(config["train"].get("threads", 1))
    try:
        run = setup(config, run_dir)
        with trackers_closed(run):
            return finish(run, fit(run, on_epoch, prune))
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def trackers_closed(run: Run) -> Iterator[None]:
    """A run that raises (an error, a Ctrl-C) still closes its trackers, as FAILED or KILLED."""
    try:
        yield
    except BaseException as error:
        if run.trackers is not None:
            from losszoo.training import interrupts

            run.trackers.abort(isinstance(error, KeyboardInterrupt) and interrupts.received())  # never raises
        raise
