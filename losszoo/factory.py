"""Build registered things by name: ``create_loss``, ``list_losses``, ``loss_spec``.

This module does not import torch; the implementation is imported when a
loss is first built.
"""

from __future__ import annotations

import inspect
from typing import Any

from losszoo.errors import InvalidParameterError
from losszoo.registry import CONTEXT_KEYS, LOSSES, Entry, Registry


def build(registry: Registry, name: str, kwargs: dict[str, Any]) -> Any:
    """Validate ``kwargs`` against the entry of ``name`` and call its implementation.

    Context keys (``num_classes``, ``embedding_dim``, ...) are passed on when the
    entry needs them (``context``) or checks against them (``optional_context``)
    and ignored otherwise, so a trainer can offer the same context to every loss.
    """
    entry = registry.get(name)
    context = {k: kwargs.pop(k) for k in list(kwargs) if k in CONTEXT_KEYS}
    reduction = kwargs.pop("reduction", None)
    params = entry.resolve(kwargs)
    required = getattr(entry, "context", ())
    missing = [k for k in required if k not in context]
    if missing:
        raise InvalidParameterError(f"{entry.qualified} needs {', '.join(missing)}", missing[0])
    params.update({k: context[k] for k in (*required, *getattr(entry, "optional_context", ())) if k in context})
    if reduction is not None:
        if not entry.elementwise:
            raise InvalidParameterError(f"{entry.qualified} takes no reduction", "reduction")
        if reduction not in ("mean", "sum", "none"):
            raise InvalidParameterError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}", "reduction")
        params["reduction"] = reduction
    implementation = entry.load()
    if entry.kind == "loss" and inspect.isfunction(implementation):  # a user's plain function
        from losszoo.losses._common import FunctionLoss

        return FunctionLoss(implementation, params, entry.input)
    return implementation(**params)


def create_loss(name: str, **kwargs: Any) -> Any:
    """A loss module by registry name, hyperparameters validated.

    >>> loss = create_loss("focal", num_classes=3, gamma=1.0)
    >>> type(loss).__name__
    'FocalLoss'
    """
    return build(LOSSES, name, kwargs)


def list_losses(pattern: str | None = None, family: str | None = None) -> list[str]:
    """Registered loss names matching a wildcard ``pattern``, in natural order."""
    return LOSSES.names(pattern, family)


def loss_spec(name: str) -> Entry:
    """The registry entry of a loss: family, input kind, hyperparameters, paper."""
    return LOSSES.get(name)
