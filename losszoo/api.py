"""The notebook entry points: ``losszoo.train`` and ``losszoo.compare``.

>>> import losszoo
>>> results = losszoo.train({"dataset": "iris", "loss": "cross_entropy",
...                          "train": {"epochs": 2}}, runs_dir=getfixture("tmp_path"))
>>> results[0]["status"]
'completed'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def train(
    recipe: str | Path | dict[str, Any],
    overrides: list[str] | tuple[str, ...] = (),
    runs_dir: str | Path | None = None,
    force: bool = False,
    jobs: int = 1,
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Train a recipe (a YAML path or a dict) like ``losszoo train``; returns one result per run."""
    from losszoo.recipe.load import load_recipe
    from losszoo.training.grid import train_grid
    from losszoo.training.store import runs_dir as resolve_runs_dir

    spec = load_recipe(recipe, list(overrides))
    return train_grid(spec, resolve_runs_dir(runs_dir), force=force, jobs=jobs, address=address)


def compare(
    experiments: list[str] | str | None = None,
    runs_dir: str | Path | None = None,
    metrics: list[str] | None = None,
    group_by: list[str] | None = None,
    sort: str | None = None,
    filters: list[str] | None = None,
    block_by: list[str] | None = None,
    baseline: str | None = None,
) -> list[dict[str, Any]]:
    """The comparison table as records (one per row and metric), like ``compare --format json``."""
    from losszoo.comparison.load import load
    from losszoo.training.store import runs_dir as resolve_runs_dir

    if isinstance(experiments, str):
        experiments = [experiments]
    loaded = load(resolve_runs_dir(runs_dir), experiments, metrics, group_by, block_by, sort, filters, baseline)
    return loaded.comparison.records()
