"""The conformance suite every loss passes, built-in or a user's plugin.

``losszoo check NAME`` and the registry-wide tests both run :func:`run_checks`:
finite scalar on random inputs of the loss's declared kind, gradients that
reach the input and every learnable parameter, reductions that agree,
gradcheck in float64, extreme inputs, bf16 autocast, and hyperparameter
bounds enforced by ``create_loss``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from losszoo.errors import InvalidParameterError
from losszoo.factory import create_loss
from losszoo.inputs import INPUT_KINDS, Sample
from losszoo.registry import LOSSES, Entry, Param

NUM_CLASSES = 4
EMBEDDING_DIM = 6
BATCH = 8  # two samples of each class, so pair losses see positives
IMAGE = 5  # segmentation inputs are (BATCH, C, IMAGE, IMAGE)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


def context() -> dict[str, Any]:
    """What the trainer would pass besides hyperparameters."""
    return {
        "num_classes": NUM_CLASSES,
        "embedding_dim": EMBEDDING_DIM,
        "class_counts": [40, 20, 10, 5],
    }


def build(entry: Entry, dtype: torch.dtype = torch.float64, **params: Any) -> torch.nn.Module:
    loss = create_loss(entry.name, **params, **context())
    return loss.to(dtype) if isinstance(loss, torch.nn.Module) else loss


def _sample(entry: Entry, dtype: torch.dtype, seed: int, batch: int) -> Sample:
    return Sample(batch, NUM_CLASSES, EMBEDDING_DIM, IMAGE, torch.Generator().manual_seed(seed), dtype,
                  entry.input_range, entry.target_range)


def example(entry: Entry, dtype: torch.dtype = torch.float64, seed: int = 0,
            batch: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Random input of the loss's declared kind (requires grad) and a matching target (``losszoo.inputs``)."""
    kind = INPUT_KINDS.get(entry.input)
    if kind is None or kind.example is None:
        raise ValueError(f"{entry.qualified}: no example input for kind {entry.input!r}")
    x, y = kind.example(_sample(entry, dtype, seed, batch))
    return x.requires_grad_(True), y


def extremes(entry: Entry, loss: torch.nn.Module, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Named extreme inputs of the loss's kind: huge logits, cosines of exactly +-1, zero norms, ..."""
    x, y = example(entry, dtype)
    kind = INPUT_KINDS[entry.input]
    return kind.extremes(_sample(entry, dtype, 0, BATCH), x.detach(), y, loss) if kind.extremes else {}


def _scalar(value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"returned {type(value).__name__}, not a tensor")
    if value.ndim != 0:
        raise AssertionError(f"returned shape {tuple(value.shape)}, not a scalar")
    return value


def check_finite(entry: Entry) -> str:
    loss = build(entry)
    x, y = example(entry)
    value = _scalar(loss(x, y))
    if not torch.isfinite(value):
        raise AssertionError(f"value {value.item()} on random inputs")
    if not value.requires_grad:
        raise AssertionError("the value has no gradient (detached from the input?)")
    return f"{value.item():.4g}"


def _backward(value: torch.Tensor) -> None:
    if not value.requires_grad:
        raise AssertionError("the gradient does not reach the input: the value is detached from the graph")
    value.backward()


def check_gradients(entry: Entry) -> str:
    loss = build(entry)
    x, y = example(entry)
    _backward(_scalar(loss(x, y)))
    if x.grad is None or not torch.isfinite(x.grad).all():
        raise AssertionError("the gradient does not reach the input" if x.grad is None else "non-finite input gradient")
    if x.grad.abs().sum() == 0:
        raise AssertionError("the input gradient is exactly zero")
    unreached = [n for n, p in loss.named_parameters() if p.requires_grad and (p.grad is None)]
    if unreached:
        raise AssertionError(f"no gradient reaches parameter(s) {', '.join(unreached)}")
    bad = [n for n, p in loss.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        raise AssertionError(f"non-finite gradient in {', '.join(bad)}")
    count = sum(1 for p in loss.parameters() if p.requires_grad)
    return f"input and {count} parameter(s)"


def check_reductions(entry: Entry) -> str:
    if not entry.elementwise:
        return "not element-wise"
    x, y = example(entry)
    torch.manual_seed(0)
    per_sample = build(entry, reduction="none")(x, y)
    torch.manual_seed(0)
    mean = build(entry, reduction="mean")(x, y)
    torch.manual_seed(0)
    total = build(entry, reduction="sum")(x, y)
    if per_sample.ndim == 0:
        raise AssertionError("reduction='none' returned a scalar")
    torch.testing.assert_close(total, per_sample.sum(), msg=lambda m: f"sum != sum of 'none' values: {m}")
    n = per_sample.numel()
    torch.testing.assert_close(mean, total / n, msg=lambda m: f"mean != sum / n (n = {n}): {m}")
    return f"mean = sum / {n}"


def check_gradcheck(entry: Entry) -> str:
    if entry.no_gradcheck:
        return "not applicable: " + entry.no_gradcheck
    loss = build(entry)
    loss.eval()  # running statistics stay fixed while finite differences are taken
    x, y = example(entry, seed=3, batch=BATCH)
    ok = torch.autograd.gradcheck(lambda inp: loss(inp, y), (x,), eps=1e-6, atol=1e-5, rtol=1e-3,
                                  raise_exception=True)
    return "float64 finite differences agree" if ok else "failed"


def check_extremes(entry: Entry) -> str:
    loss = build(entry)
    _, y = example(entry)
    for name, x in extremes(entry, loss).items():
        x = x.clone().requires_grad_(True)
        value = _scalar(loss(x, y))
        if not torch.isfinite(value):
            raise AssertionError(f"{name}: value {value.item()}")
        _backward(value)
        if x.grad is not None and not torch.isfinite(x.grad).all():
            raise AssertionError(f"{name}: non-finite input gradient")
        for n, p in loss.named_parameters():
            if p.grad is not None and not torch.isfinite(p.grad).all():
                raise AssertionError(f"{name}: non-finite gradient in {n}")
        loss.zero_grad(set_to_none=True)
    return f"{len(extremes(entry, loss))} cases finite"


def check_bf16(entry: Entry) -> str:
    loss = build(entry, dtype=torch.float32)
    x, y = example(entry, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = _scalar(loss(x, y))
    if not torch.isfinite(value):
        raise AssertionError(f"value {value.item()} under bf16 autocast")
    _backward(value.float())
    if x.grad is None or not torch.isfinite(x.grad).all():
        raise AssertionError("no finite input gradient under bf16 autocast")
    return f"{value.item():.4g} ({value.dtype})"


def check_labels(entry: Entry) -> str:
    if entry.target_kind not in ("labels", "masks"):
        return "takes no class labels"
    loss = build(entry)
    x, y = example(entry)
    for bad in (NUM_CLASSES, -1):
        wrong = y.clone()
        wrong.view(-1)[0] = bad
        try:
            loss(x, wrong)
        except ValueError:
            continue
        raise AssertionError(f"label {bad} with num_classes={NUM_CLASSES} raised no ValueError")
    return "labels outside [0, C) raise ValueError"


def out_of_bounds(param: Param) -> list[Any]:
    """Values just past each of ``param``'s bounds, and one of the wrong type."""
    values: list[Any] = []
    if param.gt is not None:
        values.append(param.gt)
    if param.ge is not None:
        values.append(param.ge - 1 if param.type == "int" else param.ge - 1e-3)
    if param.lt is not None:
        values.append(param.lt)
    if param.le is not None:
        values.append(param.le + 1 if param.type == "int" else param.le + 1e-3)
    if param.choices is not None:
        values.append("no-such-choice" if param.type == "str" else object())
    values.append("a string" if param.type != "str" else 3)
    if param.type in ("floats", "ints", "float_or_floats") and (param.gt is not None or param.ge is not None):
        values.append([values[0]])
    return values


def check_bounds(entry: Entry) -> str:
    tried = 0
    for param in entry.params:
        for value in out_of_bounds(param):
            try:
                create_loss(entry.name, **{param.name: value}, **context())
            except InvalidParameterError as error:
                if param.name not in str(error):
                    raise AssertionError(
                        f"{param.name}={value!r}: the error does not name the parameter: {error}"
                    ) from None
                tried += 1
                continue
            raise AssertionError(f"{param.name}={value!r} was accepted (bounds: {param.bounds() or 'none'})")
    return f"{tried} bad values rejected"


CHECKS: dict[str, Callable[[Entry], str]] = {
    "finite scalar": check_finite,
    "gradients reach input and parameters": check_gradients,
    "reductions agree": check_reductions,
    "gradcheck (float64)": check_gradcheck,
    "extreme inputs stay finite": check_extremes,
    "bf16 autocast": check_bf16,
    "labels out of range raise": check_labels,
    "hyperparameter bounds enforced": check_bounds,
}


def _where(error: BaseException) -> str:
    """Where it went wrong: the loss's own code if it is on the stack, else this suite's check."""
    frames = traceback.extract_tb(error.__traceback__)
    torch_dir = str(Path(torch.__file__).parent)
    own = [f for f in frames if not f.filename.startswith(torch_dir) and f.filename != __file__]
    frame = (own or [f for f in frames if f.filename == __file__] or frames)[-1]
    return f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})"


def run_checks(name: str) -> list[Check]:
    """Every conformance check on the loss ``name``; a failing check says why."""
    entry = LOSSES.get(name)
    results = []
    for check_name, check in CHECKS.items():
        try:
            results.append(Check(check_name, True, check(entry)))
        except Exception as error:  # a check failing is a result, not a crash
            where = _where(error)
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            results.append(Check(check_name, False, f"{type(error).__name__}: {detail}{where}"))
    return results
