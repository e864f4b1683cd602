"""Tuning ranges (``tune:`` with no space searches each loss's ranges and the learning rate): every loss
searches something or says why it has nothing to search, no point of a loss's space breaks its rules, and
points of it build a loss with a finite value and gradient.

That every range lies within its hyperparameter's bounds is tested registry-wide in test_loss_properties.py.
"""

import itertools
import math
import random
from typing import Any

import pytest
import torch

from losszoo import create_loss, list_losses
from losszoo.inputs import INPUT_KINDS, Sample
from losszoo.registry import LOSSES, LossEntry, Param

#: A trainer's context on a ten-class task.
CONTEXT = {"num_classes": 10, "embedding_dim": 32}
CLASS_COUNTS = [500, 300, 200, 120, 80, 50, 30, 20, 12, 8]
BATCH = 20  # every class twice, so pair losses see positives
POINTS = 200

#: Losses whose tuning searches the learning rate alone, and why.
NOTHING_TO_TUNE = {
    "mse": "no hyperparameter",
    "mae": "no hyperparameter",
    "log_cosh": "no hyperparameter",
    "msle": "no hyperparameter",
    "mape": "only eps, a floor on the denominator",
    "poisson_nll": "choices of the input's meaning and of Stirling's term, and eps",
    "gaussian_nll": "a choice of the constant term, and eps",
    "quantile": "q names the statistic predicted (the task), not a knob to fit a metric with",
    "softmax": "the baseline: no hyperparameter",
    "adacos": "its scale adapts by design; dynamic is a choice",
    "npairs": "no hyperparameter",
    "dice": "a choice of averaging, eps and ignore_index",
    "jaccard": "a choice of averaging, eps and ignore_index",
    "lovasz_softmax": "only ignore_index",
    "bce": "pos_weight is a prior on the positives per label, not a loss shape",
    "multilabel_soft_margin": "no hyperparameter",
    "zlpr": "no hyperparameter",
    "iou": "only eps",
    "giou": "only eps",
    "diou": "only eps",
    "ciou": "only eps",
}

BUILT_IN = [name for name in list_losses() if LOSSES.get(name).origin == "built-in"]
TUNED = [name for name in BUILT_IN if any(p.tune is not None for p in LOSSES.get(name).params)]


def _tuned(entry: LossEntry) -> list[Param]:
    return [p for p in entry.params if p.tune is not None]


def _draw(param: Param, rng: random.Random) -> float | int:
    """One value of the range, as Optuna's TPE would propose it: uniform, log-uniform or an integer."""
    tune = param.tune
    if param.type == "int":
        return rng.randint(int(tune.low), int(tune.high))
    if tune.log:
        return math.exp(rng.uniform(math.log(tune.low), math.log(tune.high)))
    return rng.uniform(tune.low, tune.high)


def _end(param: Param, end: float) -> float | int:
    return int(end) if param.type == "int" else end


def _corners(entry: LossEntry) -> list[dict[str, Any]]:
    """Every combination of range ends: where a cross-field rule would break first."""
    params = _tuned(entry)
    ends = [(_end(p, p.tune.low), _end(p, p.tune.high)) for p in params]
    return [dict(zip([p.name for p in params], combo, strict=True)) for combo in itertools.product(*ends)]


def _random_points(entry: LossEntry, count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"{entry.name}:{seed}")
    return [{p.name: _draw(p, rng) for p in _tuned(entry)} for _ in range(count)]


def _example(entry: LossEntry, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random input of the loss's kind sized for CONTEXT (``losszoo.testing.example`` is sized for its own
    four classes and six dimensions)."""
    sample = Sample(BATCH, CONTEXT["num_classes"], CONTEXT["embedding_dim"], 5, torch.Generator().manual_seed(seed),
                    torch.float64, entry.input_range, entry.target_range)
    x, y = INPUT_KINDS[entry.input].example(sample)
    return x.requires_grad_(True), y


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_loss_tunes_something_or_says_why_not(name: str) -> None:
    entry = LOSSES.get(name)
    if name in NOTHING_TO_TUNE:
        assert not _tuned(entry), f"{name} has tuning ranges now: take it off NOTHING_TO_TUNE"
    else:
        assert _tuned(entry), f"{name}: give a hyperparameter tune=(low, high), or list it in NOTHING_TO_TUNE"


def test_nothing_to_tune_names_registered_losses() -> None:
    assert set(NOTHING_TO_TUNE) <= set(BUILT_IN)


@pytest.mark.parametrize("name", TUNED)
def test_tuned_parameters_are_numbers(name: str) -> None:
    """The tuner proposes floats and integers only."""
    for param in _tuned(LOSSES.get(name)):
        assert param.type in ("float", "int"), f"{name}.{param.name} is {param.type}: it cannot be tuned"


@pytest.mark.parametrize("name", TUNED)
def test_no_point_of_the_space_breaks_a_rule(name: str) -> None:
    entry = LOSSES.get(name)
    for point in _corners(entry) + _random_points(entry, POINTS, seed=0):
        assert entry.problems(point, CONTEXT) == [], f"{name} at {point}"


@pytest.mark.parametrize("name", TUNED)
def test_points_of_the_space_build_a_finite_loss(name: str) -> None:
    entry = LOSSES.get(name)
    corners = _corners(entry)
    points = [corners[0], corners[-1], *_random_points(entry, 3, seed=1)]  # all lows, all highs, three inside
    for i, point in enumerate(points):
        loss = create_loss(name, **point, **CONTEXT, class_counts=CLASS_COUNTS)
        loss = loss.to(torch.float64) if isinstance(loss, torch.nn.Module) else loss
        x, y = _example(entry, seed=i)
        value = loss(x, y)
        assert torch.isfinite(value).all(), f"{name} at {point}: value {value}"
        value.backward()
        assert torch.isfinite(x.grad).all(), f"{name} at {point}: a gradient is not finite"
