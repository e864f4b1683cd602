"""Regression metrics on predictions ``(N,)`` and targets ``(N,)`` in the data's original units.

Metadata: ``losszoo/catalog/metrics.py``. Values equal scikit-learn's
``mean_absolute_error``, ``root_mean_squared_error`` and ``r2_score``. Sums run
in float64.
"""

from __future__ import annotations

import torch


def _flat(predictions: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both inputs as float64 vectors; ``(N, 1)`` is accepted for ``(N,)``."""
    if predictions.numel() != targets.numel() or predictions.ndim > 2 or targets.ndim > 2:
        raise ValueError(
            f"expected predictions (N,) and targets (N,), got {tuple(predictions.shape)} and {tuple(targets.shape)}"
        )
    return predictions.reshape(-1).double(), targets.reshape(-1).double()


def mae(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean absolute error ``1/N sum_i |p_i - y_i|``.

    >>> mae(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]))
    1.5
    """
    p, y = _flat(predictions, targets)
    return (p - y).abs().mean().item() if y.numel() else float("nan")


def rmse(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Root mean squared error ``sqrt(1/N sum_i (p_i - y_i)^2)``.

    >>> rmse(torch.tensor([1.0, 1.0]), torch.tensor([4.0, -2.0]))
    3.0
    """
    p, y = _flat(predictions, targets)
    return (p - y).square().mean().sqrt().item() if y.numel() else float("nan")


def r2(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Coefficient of determination ``1 - sum_i (y_i - p_i)^2 / sum_i (y_i - mean(y))^2``.

    Constant targets give 1 for a perfect prediction and 0 otherwise, as
    scikit-learn's ``r2_score`` (``force_finite=True``).

    >>> r2(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0]))
    1.0
    """
    p, y = _flat(predictions, targets)
    if y.numel() == 0:
        return float("nan")
    residual = (y - p).square().sum()
    total = (y - y.mean()).square().sum()
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return (1 - residual / total).item()
