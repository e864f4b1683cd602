"""Train one run, top to bottom.

    losszoo train recipes/digits-margin.yaml     # calls train_run once per run

The data sits in memory as tensors and is batched by slicing a permutation:
no DataLoader, no per-sample Python. One loop, in the order things happen:
lr schedule -> shuffle -> forward/backward -> clip -> step, then the val
evaluation that picks the best epoch, a metrics.jsonl line, early stopping.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from losszoo.data.sampler import m_per_class_order
from losszoo.data.splits import Data, Split, load_data
from losszoo.errors import RunError
from losszoo.factory import create_loss
from losszoo.registry import LOSSES, METRICS, MODELS
from losszoo.training.store import write_atomic

EVAL_ELEMENTS = 2**18  # inputs per evaluation batch: 4096 digits rows, 256 images of 32x32

#: Progress callback: (epoch, epochs, train_loss, selection metric name, its val value).
OnEpoch = Callable[[int, int, float, str, float | None], None]


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


def head_size(loss_input: str, data: Data, embedding_dim: int) -> int:
    """How many outputs the model's head needs for the loss's input kind."""
    return {
        "logits": data.num_classes,
        "pixel_logits": data.num_classes,
        "embeddings": embedding_dim,
        "values": 1,
        "mean_var": 2,
    }[loss_input]


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


def _as_loss_input(output: torch.Tensor, loss_input: str) -> torch.Tensor:
    return output.squeeze(-1) if loss_input == "values" else output


@dataclass
class Evaluation:
    """What a metric may consume, computed once per split."""

    outputs: dict[str, torch.Tensor]
    target: torch.Tensor


@torch.no_grad()
def evaluate(model: nn.Module, loss: nn.Module, loss_input: str, split: Split, data: Data,
             device: torch.device) -> Evaluation:
    """Forward the whole split in large batches and collect every view metrics read."""
    model.eval()
    loss.eval()
    heads, features = [], []
    step = max(1, EVAL_ELEMENTS // max(1, split.x[0].numel()))
    for start in range(0, len(split), step):
        x = split.x[start:start + step].to(device, non_blocking=True)
        if hasattr(model, "features") and hasattr(model, "head"):  # a Net: keep the features for retrieval
            feats = model.features(x)
            features.append(feats)
            heads.append(model.head(feats))
        else:
            heads.append(model(x))
    out = torch.cat(heads)
    target = split.y.to(device)
    outputs: dict[str, torch.Tensor] = {}
    if loss_input in ("logits", "pixel_logits"):
        outputs["pixel_logits" if out.ndim == 4 else "logits"] = out
        if features:
            outputs["embeddings"] = torch.cat(features)
    elif loss_input == "embeddings":
        outputs["embeddings"] = out
        if hasattr(loss, "class_logits"):
            outputs["logits"] = loss.class_logits(out)
    else:  # values and mean_var: metrics read predictions in the data's own units
        out = _as_loss_input(out, loss_input)
        values = loss.predict(out) if hasattr(loss, "predict") else out
        outputs["values"] = values * data.target_std + data.target_mean
        target = target * data.target_std + data.target_mean
    model.train()
    loss.train()
    return Evaluation(outputs, target)


def compute_metrics(evaluation: Evaluation, names: list[str], retrieval_only: bool = False) -> dict[str, float]:
    """Each metric the evaluation can feed; a metric without its input is left out."""
    values: dict[str, float] = {}
    shared: dict[str, dict[str, float]] = {}  # metrics computed together (one retrieval search for three)
    for name in names:
        entry = METRICS.get(name)
        if entry.input not in evaluation.outputs or (retrieval_only and entry.input != "embeddings"):
            continue
        output = evaluation.outputs[entry.input]
        together = entry.computed_with
        if together:
            if together not in shared:
                module, _, function = together.partition(":")
                shared[together] = getattr(importlib.import_module(module), function)(output, evaluation.target)
            values[name] = float(shared[together][name])
        else:
            values[name] = float(entry.load()(output, evaluation.target))
    return values


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


# --- the run -------------------------------------------------------------------------------------


def train_run(config: dict[str, Any], run_dir: Path, on_epoch: OnEpoch | None = None) -> dict[str, Any]:
    """Train the run described by a resolved ``config``; write its folder; return metrics.

    Returns ``{"status", "metrics", "best_epoch", "epochs_run", "train_seconds",
    "samples_per_second", "n_parameters", "error"}``. Raises KeyboardInterrupt
    through (the caller records the run as interrupted).

    Torch uses ``train.threads`` CPU threads during the run (1 by default):
    the small models of a loss comparison run fastest on one thread, and a run
    then gives the same numbers whether it trains alone or beside others.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(config["train"].get("threads", 1))
    try:
        return _train(config, run_dir, on_epoch)
    finally:
        torch.set_num_threads(threads)


def load_run_data(config: dict[str, Any]) -> Data:
    """The run's dataset, split by its seed.

    Regression targets are standardised, except that losses defined only for
    non-negative targets (msle, poisson_nll, mape) get them scaled, not centred.
    """
    params = {k: v for k, v in config["dataset"].items() if k != "name"}
    low = (LOSSES.get(config["loss"]["name"]).target_range or (None, None))[0]
    return load_data(config["dataset"]["name"], params, config["seed"], center_targets=low is None or low < 0)


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
    ).to(device)
    loss = create_loss(
        loss_entry.name,
        **{k: v for k, v in config["loss"].items() if k != "name"},
        num_classes=data.num_classes,
        embedding_dim=embedding_dim,
        class_counts=data.class_counts,
    ).to(device)
    return model, loss


def _train(config: dict[str, Any], run_dir: Path, on_epoch: OnEpoch | None) -> dict[str, Any]:
    train_cfg = config["train"]
    generator = seed_everything(config["seed"])
    device = resolve_device(train_cfg["device"])
    data = load_run_data(config)
    loss_entry = LOSSES.get(config["loss"]["name"])
    model, loss = build(config, data, device)

    params = [p for p in list(model.parameters()) + list(loss.parameters()) if p.requires_grad]
    optimizer = make_optimizer(params, train_cfg["optimizer"])
    epochs, batch_size = train_cfg["epochs"], train_cfg["batch_size"]
    scheduler = make_scheduler(optimizer, train_cfg["scheduler"], epochs)
    metric_names = config["metrics"]
    select = config["select_by"].rpartition(".")[2]
    higher = METRICS.get(select).higher_is_better

    x_train, y_train = data.train.x.to(device), data.train.y.to(device)
    n = len(y_train)
    batches = batch_bounds(n, batch_size)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = (run_dir / "metrics.jsonl").open("w")
    best_value, best_epoch, best_state, best_val, stale = None, 0, None, {}, 0
    epochs_run, status, error = 0, "completed", None
    started = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            lr = optimizer.param_groups[0]["lr"]
            if loss_entry.needs_pairs:  # m samples per class, so anchors have positives in the batch
                order = m_per_class_order(data.train.y, train_cfg["m_per_class"], generator).to(device)
            else:
                order = torch.randperm(n, generator=generator).to(device)
            total = torch.zeros((), device=device)
            for start, stop in batches:
                index = order[start:stop]
                output = _as_loss_input(model(x_train[index]), loss_entry.input)
                value = loss(output, y_train[index])
                if epoch == 1 and start == 0:
                    check_first_value(value, loss_entry.name)
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                if train_cfg["grad_clip"]:
                    nn.utils.clip_grad_norm_(params, train_cfg["grad_clip"])
                optimizer.step()
                total += value.detach() * len(index)
            if scheduler is not None:
                scheduler.step()
            epochs_run = epoch
            train_loss = (total / len(order)).item()  # one CPU-GPU sync per epoch, not per step
            if not math.isfinite(train_loss):
                raise Diverged(f"non-finite train loss at epoch {epoch}")

            val = compute_metrics(evaluate(model, loss, loss_entry.input, data.val, data, device), metric_names)
            log.write(json.dumps({"epoch": epoch, "lr": lr, "train_loss": train_loss, "val": val}) + "\n")
            log.flush()
            if is_better(val.get(select), best_value, higher):
                best_value, best_epoch, best_val, stale = val[select], epoch, val, 0
                best_state = (copy.deepcopy(model.state_dict()), copy.deepcopy(loss.state_dict()))
            else:
                stale += 1
            if on_epoch is not None:
                on_epoch(epoch, epochs, train_loss, select, val.get(select))
            if train_cfg["patience"] and stale >= train_cfg["patience"]:
                break
    except Diverged as problem:
        status, error = "diverged", str(problem)
    finally:
        log.close()
    train_seconds = time.perf_counter() - started

    metrics: dict[str, dict[str, float]] = {"val": best_val}
    if best_state is not None:
        model.load_state_dict(best_state[0])
        loss.load_state_dict(best_state[1])
        test = evaluate(model, loss, loss_entry.input, data.test, data, device)
        metrics["test"] = compute_metrics(test, metric_names, retrieval_only=data.open_set)
        embeddings = test.outputs.get("embeddings")
        if loss_entry.input == "embeddings" and embeddings is not None and embeddings.shape[1] == 2:
            from losszoo.training.pictures import plot_embeddings

            centres = getattr(loss, "weight", None)
            plot_embeddings(embeddings, test.target, centres if isinstance(centres, torch.Tensor) else None,
                            run_dir / "embeddings.png", f"{config['label']} - test embeddings")
        buffer = _checkpoint_bytes(model, loss, config, best_epoch)
        write_atomic(run_dir / "checkpoint.pt", buffer)
    return {
        "status": status,
        "metrics": metrics,
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "train_seconds": round(train_seconds, 4),
        "samples_per_second": round(n * epochs_run / train_seconds) if train_seconds > 0 else None,
        "n_parameters": sum(p.numel() for p in model.parameters()) + sum(p.numel() for p in loss.parameters()),
        "error": error,
        "provenance": {
            "split_sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            "train_class_counts": data.class_counts,
            "device": str(device),
            "threads": torch.get_num_threads(),
        },
    }


def _checkpoint_bytes(model: nn.Module, loss: nn.Module, config: dict[str, Any], epoch: int) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "loss": loss.state_dict(), "config": config, "epoch": epoch}, buffer)
    return buffer.getvalue()
