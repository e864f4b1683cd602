"""Aggregate finished runs over seeds into a comparison: one row per group
(by default dataset and loss label), one column per metric, each cell the
mean, std, n and 95% interval over seeds, with rank-1 groups per column.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from losszoo.comparison import stats
from losszoo.errors import LosszooError
from losszoo.registry import METRICS

DEFAULT_GROUP_BY = ("dataset", "label")
SPLITS = ("test", "val")


@dataclass
class Cell:
    values: dict[Any, float]  # by seed (by run when a row holds several runs of one seed: then unpaired)
    mean: float
    std: float
    n: int
    ci: float  # half-width of the 95% t interval
    best: bool = False
    rank1: bool = False
    p_vs_best: float = float("nan")  # Holm-adjusted, one-sided


@dataclass
class Row:
    group: dict[str, Any]
    cells: dict[str, Cell]
    statuses: Counter
    results: list[dict[str, Any]] = field(repr=False, default_factory=list)


@dataclass
class Comparison:
    group_by: list[str]
    columns: list[str]
    rows: list[Row]
    warnings: list[str]
    notes: list[str]

    def records(self) -> list[dict[str, Any]]:
        """Long format, one record per row and column: for csv and json."""
        out = []
        for row in self.rows:
            for column in self.columns:
                cell = row.cells.get(column)
                record = {**row.group, "metric": column}
                if cell is None:
                    record.update(mean=None, std=None, n=0, ci95=None, rank=None, best=False, p_vs_best=None)
                else:
                    record.update(
                        mean=cell.mean, std=cell.std, n=cell.n, ci95=None if math.isnan(cell.ci) else cell.ci,
                        rank=1 if cell.rank1 else 2, best=cell.best,
                        p_vs_best=None if math.isnan(cell.p_vs_best) else cell.p_vs_best,
                    )
                record["runs"] = sum(row.statuses.values())
                record["failed"] = sum(v for k, v in row.statuses.items() if k != "completed")
                out.append(record)
        return out


_MISSING = object()


def _walk(node: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def lookup(result: dict[str, Any], key: str) -> Any:
    """A dotted key of a result: ``test.accuracy`` reads its metrics, ``loss.name`` or
    ``landscape.trace`` the result itself, and anything else its resolved config
    (``model.skip``, ``train.epochs``, ``dataset.label_noise``)."""
    parts = key.split(".")
    if parts[0] in SPLITS:
        value = _walk(result.get("metrics"), parts)
    else:
        value = _walk(result, parts)
        if value is _MISSING:
            value = _walk(result.get("config"), parts)
    return None if value is _MISSING else value


def column_name(metric: str) -> str:
    """``accuracy`` means ``test.accuracy``; anything dotted is taken as written."""
    return metric if "." in metric else f"test.{metric}"


#: Result fields, not metrics, where more is better (for the rest, such as seconds,
#: Hessian eigenvalues or SAM sharpness, less is better).
HIGHER_IS_BETTER_FIELDS = ("landscape.radius", "landscape.accuracy", "samples_per_second")


def higher_is_better(column: str) -> bool:
    if column in HIGHER_IS_BETTER_FIELDS:
        return True
    split, _, name = column.rpartition(".")
    if split in SPLITS and name in METRICS:
        return bool(METRICS.get(name).higher_is_better)
    return False


def _matches(result: dict[str, Any], filters: list[str]) -> bool:
    for rule in filters:
        negate = "!=" in rule
        key, _, wanted = rule.partition("!=" if negate else "=")
        value = lookup(result, key.strip())
        equal = str(value if not isinstance(value, bool) else str(value).lower()) == wanted.strip()
        if equal == negate:
            return False
    return True


def _parse_filters(filters: list[str]) -> list[str]:
    for rule in filters:
        if "=" not in rule:
            raise LosszooError(f"--filter {rule!r}: expected key=value or key!=value, e.g. --filter loss.name=arcface")
    return filters


def compare_results(
    results: list[dict[str, Any]],
    metrics: list[str] | None = None,
    group_by: list[str] | None = None,
    sort: str | None = None,
    filters: list[str] | None = None,
) -> Comparison:
    """Aggregate ``results`` (as read from result.json files) into a Comparison."""
    chosen = [r for r in results if _matches(r, _parse_filters(filters or []))]
    if group_by is None:
        experiments = {r["experiment"] for r in chosen}
        group_by = (["experiment"] if len(experiments) > 1 else []) + list(DEFAULT_GROUP_BY)
    if metrics:
        columns = [column_name(m) for m in metrics]
    else:  # every test metric that appears, in order of appearance
        seen: dict[str, None] = {}
        for r in chosen:
            for name in (r.get("metrics") or {}).get("test", {}) or {}:
                seen.setdefault(f"test.{name}", None)
        columns = list(seen)

    groups: dict[str, Row] = {}
    for r in chosen:
        key_values = {k: lookup(r, k) for k in group_by}
        key = _key(key_values.values())
        row = groups.setdefault(key, Row(key_values, {}, Counter()))
        row.statuses[r["status"]] += 1
        row.results.append(r)

    for row in groups.values():
        seeds = [r["seed"] for r in row.results if r["status"] == "completed"]
        by_seed = len(seeds) == len(set(seeds))
        for column in columns:
            values = {}
            for r in row.results:
                value = lookup(r, column)
                if r["status"] == "completed" and isinstance(value, (int, float)) and math.isfinite(value):
                    values[r["seed"] if by_seed else r["run_id"]] = float(value)
            if values:
                mean, std = stats.mean_std(list(values.values()))
                row.cells[column] = Cell(values, mean, std, len(values), stats.ci_halfwidth(std, len(values)))

    rows = list(groups.values())
    warnings: list[str] = []
    notes: list[str] = []
    compared_within = [k for k in group_by if k not in ("label", "loss", "loss.name")]
    for column in columns:
        up = higher_is_better(column)
        for block in _blocks(rows, compared_within):
            filled = [r for r in block if column in r.cells]
            if not filled:
                continue
            best, in_group, p_values = stats.rank_one_group([r.cells[column].values for r in filled], up)
            for i, r in enumerate(filled):
                r.cells[column].best = i == best
                r.cells[column].rank1 = in_group[i]
                r.cells[column].p_vs_best = p_values[i]

    # Recipe order by default: the losses as the user listed them.
    rows.sort(key=lambda r: (str(r.group.get("experiment", "")), str(r.group.get("dataset", "")),
                             min(res.get("position", 0) for res in r.results)))
    if sort:
        sort_column = column_name(sort) if sort not in group_by else sort
        if sort_column in group_by:
            rows.sort(key=lambda r: str(r.group[sort_column]))
        elif sort_column in columns:
            sign = -1 if higher_is_better(sort_column) else 1
            rows.sort(key=lambda r: sign * r.cells[sort_column].mean if sort_column in r.cells else math.inf)
        else:
            raise LosszooError(f"--sort {sort!r}: not a column of this table ({', '.join(group_by + columns)})")

    if any(c.n < 3 for r in rows for c in r.cells.values()):
        warnings.append("some cells have fewer than 3 seeds: their std and rank groups are weak evidence")
    failed = sum(v for r in rows for k, v in r.statuses.items() if k != "completed")
    if failed:
        kinds = Counter(k for r in rows for k, v in r.statuses.items() if k != "completed" for _ in range(v))
        warnings.append("runs left out of the statistics: " + ", ".join(f"{v} {k}" for k, v in kinds.items()))
    warnings.extend(fairness_warnings(rows, compared_within))
    if "dataset" in group_by and columns:
        notes.extend(_friedman_notes(rows, columns[0], group_by))
    return Comparison(list(group_by), columns, rows, warnings, notes)


def _key(values: Any) -> tuple:
    """A hashable key of result values; mappings and lists (a loss config) by their JSON text."""
    return tuple(json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else v for v in values)


def _blocks(rows: list[Row], keys: list[str]) -> list[list[Row]]:
    """Rows that are compared with each other: same dataset (and experiment), other losses."""
    blocks: dict[str, list[Row]] = {}
    for row in rows:
        blocks.setdefault(_key(row.group.get(k) for k in keys), []).append(row)
    return list(blocks.values())


def fairness_warnings(rows: list[Row], within: list[str]) -> list[str]:
    """Warn where compared runs differ in training budget, split, model or seeds."""
    found = []
    aspects = {
        "training budget": lambda c: {k: v for k, v in c.get("train", {}).items() if k != "device"},
        "split": lambda c: {k: v for k, v in c.get("dataset", {}).items()},
        "model": lambda c: c.get("model"),
    }
    for block in _blocks(rows, within):
        configs = [r.get("config") or {} for row in block for r in row.results]
        for aspect, view in aspects.items():
            # repr, not sorted JSON: the runner writes every config with its keys in one order
            variants = {repr(view(c)) for c in configs if c}
            if len(variants) > 1:
                found.append(f"compared runs differ in {aspect} ({len(variants)} variants); the comparison is unfair")
        seed_sets = {tuple(sorted(r["seed"] for r in row.results)) for row in block}
        if len(seed_sets) > 1:
            found.append("compared losses ran different seeds; paired tests fall back to Welch's")
    return sorted(set(found))


def _friedman_notes(rows: list[Row], column: str, group_by: list[str]) -> list[str]:
    loss_key = next((k for k in group_by if k in ("label", "loss.name", "loss")), None)
    if loss_key is None:
        return []
    by_dataset: dict[str, dict[str, float]] = {}
    for row in rows:
        if column in row.cells:
            by_dataset.setdefault(str(row.group.get("dataset")), {})[str(row.group[loss_key])] = row.cells[column].mean
    if len(by_dataset) < 2:
        return []
    losses = sorted(set.intersection(*(set(v) for v in by_dataset.values())))
    if len(losses) < 2:
        return []
    table = [[by_dataset[d][loss] for loss in losses] for d in sorted(by_dataset)]
    ranks = stats.average_ranks(table, higher_is_better(column))
    ranked = ", ".join(f"{loss} {rank:.2f}" for rank, loss in sorted(zip(ranks, losses, strict=True)))
    notes = [f"average rank over {len(table)} datasets by {column}: {ranked}"]
    p = stats.friedman_p(table)
    if math.isnan(p):
        notes.append("Friedman test needs at least 3 losses and 2 datasets")
    elif p >= stats.ALPHA:
        notes.append(f"Friedman p = {p:.3g}: cannot reject that all losses rank alike across datasets")
    else:
        notes.append(f"Friedman p = {p:.3g}: the losses' ranks differ across datasets")
    return notes
