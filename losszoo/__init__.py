"""losszoo: a registry of correct loss functions, recipes that compare them, and
statistics that say which one wins.

>>> import losszoo
>>> "arcface" in losszoo.list_losses("*face*")
True

Importing losszoo does not import torch; building a loss does.
"""

from __future__ import annotations

from losszoo.api import compare, train
from losszoo.errors import (
    DataError,
    InvalidParameterError,
    LosszooError,
    RecipeError,
    RunError,
    UnknownNameError,
)
from losszoo.factory import create_loss, list_losses, loss_spec
from losszoo.registry import DATASETS, LOSSES, METRICS, MODELS, Param

__version__ = "0.1.0"

register_loss = LOSSES.register
register_dataset = DATASETS.register
register_model = MODELS.register
register_metric = METRICS.register



def __getattr__(name: str):
    """``losszoo.Dataset``, what a dataset plugin returns, imported on first use (it needs numpy)."""
    if name == "Dataset":
        from losszoo.data.sources import Source

        return Source
    raise AttributeError(f"module 'losszoo' has no attribute {name!r}")


__all__ = [
    "DataError",
    "Dataset",
    "InvalidParameterError",
    "LosszooError",
    "Param",
    "RecipeError",
    "RunError",
    "UnknownNameError",
    "__version__",
    "compare",
    "create_loss",
    "list_losses",
    "loss_spec",
    "register_dataset",
    "register_loss",
    "register_metric",
    "register_model",
    "train",
]
