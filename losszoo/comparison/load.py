"""``comparison.load``: the one pipeline from a runs folder to a :class:`Comparison`,
shared by ``losszoo compare``, ``losszoo train``'s closing table, ``losszoo
report`` and ``losszoo.compare()``. Renderers then only format what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from losszoo.comparison.table import Comparison, compare_results
from losszoo.errors import LosszooError
from losszoo.registry import close_matches
from losszoo.training.store import check_runs_dir, iter_results


@dataclass
class Loaded:
    comparison: Comparison
    root: Path
    experiments: list[str]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # run folders left out, and why


def experiments_in(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def load(root: Path, experiments: list[str] | None = None, metrics: list[str] | None = None,
         group_by: list[str] | None = None, block_by: list[str] | None = None, sort: str | None = None,
         filters: list[str] | None = None, baseline: str | None = None) -> Loaded:
    """Read the finished runs of ``experiments`` (all when None) under ``root`` and compare them."""
    check_runs_dir(root, write=False)
    known = experiments_in(root)
    for name in experiments or []:
        if not (root / name).is_dir():
            raise LosszooError(f"no experiment {name!r} in {root}{close_matches(name, known)}"
                               + (f" (experiments: {', '.join(known)})" if known else ""))
    results, skipped = iter_results(root, experiments or None)
    if not results:
        raise LosszooError(f"no finished runs in {root}" + (f" for {', '.join(experiments)}" if experiments else "")
                           + "; train a recipe first: losszoo train RECIPE.yaml")
    comparison = compare_results(results, metrics, group_by, sort, filters, block_by, baseline)
    return Loaded(comparison, root, list(experiments or known), skipped)
