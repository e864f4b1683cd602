"""Aggregate finished runs over seeds into a comparison.

A row is one configuration: runs share a row only when their resolved configs
are identical except for the seed (``--group-by`` pools deliberately, and the
comparison then says what each row pools). Each cell is the mean, std, n and
95% interval over the row's seeds. Rows are ranked within *blocks* of what is
held fixed, by default the dataset configuration, so two models, batch sizes
or learning rates on one dataset are ranked against each other; rank 1 is
every row not significantly worse than any other row of its block
(``stats.rank_groups``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from losszoo.comparison import labels, stats
from losszoo.comparison.keys import (  # noqa: F401  (lookup, column_name, higher_is_better: this module's API too)
    SPLITS,
    close_words,
    column_name,
    higher_is_better,
    json_text,
    lookup,
    matches,
    parse_filters,
    require,
    require_metric,
    value_range,
)
from losszoo.comparison.tuning import budget_warnings, is_trial, tuned_text
from losszoo.errors import LosszooError

#: The default block: the dataset's resolved config and the content hash of its file, if it reads one.
DATASET_BLOCK = ["config.dataset", "config.inputs.dataset.path"]


@dataclass
class Cell:
    values: dict[Any, float]  # by seed (by run when a row holds several runs of one seed: then unpaired)
    mean: float
    std: float
    n: int
    ci: tuple[float, float] | None  # 95% t interval, within the metric's range; None for n < 2
    best: bool = False  # has the best mean of its block (exact ties share it)
    rank1: bool = True  # not significantly worse than any other row of its block
    p_worse: float = math.nan  # smallest Holm-adjusted p that it is worse than another row

    @property
    def testable(self) -> bool:
        return self.n >= 2


@dataclass
class Row:
    key: Any  # the configuration id, or the --group-by values
    label: dict[str, str]  # the columns that name the row
    block: Any
    cells: dict[str, Cell] = field(default_factory=dict)
    block_name: str = ""  # the block, readable: its experiment and dataset labels where those tell blocks apart
    statuses: Counter = field(default_factory=Counter)
    results: list[dict[str, Any]] = field(repr=False, default_factory=list)
    pooled: list[str] = field(default_factory=list)  # config keys that differ between its runs

    @property
    def group(self) -> dict[str, str]:  # the name older callers know
        return self.label


@dataclass
class Comparison:
    label_columns: list[str]
    columns: list[str]
    rows: list[Row]
    block_by: list[str]
    warnings: list[str]
    notes: list[str]
    across: list[Any] = field(default_factory=list)  # comparison.across.Across, one per metric shown
    correlation: Any = None  # comparison.correlation.Correlation, when ``compare --correlate`` asked for one

    @property
    def group_by(self) -> list[str]:
        return self.label_columns

    def legend(self) -> list[str]:
        """What the numbers and the blocks mean, for every renderer (the markers: ``render.LEGEND_MARKERS``)."""
        held = list(self.block_by)
        if held[-len(DATASET_BLOCK):] == DATASET_BLOCK:
            held[-len(DATASET_BLOCK):] = ["dataset configuration (its file's content included)"]
        where = f"within blocks of the same {' and '.join(held)}" if held else "all together, in one block"
        lines = [
            "mean ± std over n seeds (n = 1: a single run, no spread)",
            f"rows are ranked {where}, by one-sided t-tests of every ordered pair "
            "(paired on shared seeds, else Welch), Holm-corrected together, at 5%",
        ]
        pooled = sorted({k for r in self.rows for k in r.pooled})
        if pooled:
            lines.append(f"--group-by pools runs that differ in {', '.join(pooled)} into one row")
        return lines

    def records(self) -> list[dict[str, Any]]:
        """Long format, one record per row and column: for csv and json."""
        out = []
        for row in self.rows:
            for column in self.columns:
                cell = row.cells.get(column)
                record: dict[str, Any] = {**row.label, "metric": column, "block": row.block_name}
                if cell is None:
                    record.update(mean=None, std=None, n=0, ci95_low=None, ci95_high=None, best=False,
                                  in_rank1_group=None, p_worse=None, testable=False)
                else:
                    record.update(
                        mean=cell.mean, std=cell.std if cell.testable else None, n=cell.n,
                        ci95_low=cell.ci[0] if cell.ci else None, ci95_high=cell.ci[1] if cell.ci else None,
                        best=cell.best, in_rank1_group=cell.rank1, testable=cell.testable,
                        p_worse=None if math.isnan(cell.p_worse) else cell.p_worse,
                    )
                record["runs"] = sum(row.statuses.values())
                record["failed"] = sum(v for k, v in row.statuses.items() if k != "completed")
                record["pooled"] = ",".join(row.pooled)
                out.append(record)
        return out


# --- the comparison ------------------------------------------------------------------------------


def compare_results(
    results: list[dict[str, Any]],
    metrics: list[str] | None = None,
    group_by: list[str] | None = None,
    sort: str | None = None,
    filters: list[str] | None = None,
    block_by: list[str] | None = None,
    baseline: str | None = None,
) -> Comparison:
    """Aggregate ``results`` (as read from result.json files) into a Comparison.

    Unknown keys in ``metrics``, ``group_by``, ``block_by``, ``sort`` and ``filters`` are a LosszooError with a
    did-you-mean; so is ranking landscape figures measured with different settings.
    """
    parsed = parse_filters(filters or [], results)
    chosen = [r for r in results if matches(r, parsed)]
    if not chosen:
        raise LosszooError("no runs match the filters")
    finals = [r for r in chosen if not is_trial(r)]  # tuning trials stop at val: `--trials` lists them
    if not finals:
        raise LosszooError("these runs are tuning trials only (no loss has been retrained on its final seeds yet); "
                           "`losszoo compare EXPERIMENT --trials LOSS` lists them, `losszoo train` finishes them")
    chosen = finals
    columns = _columns(chosen, metrics)
    for key in [*(group_by or []), *(block_by or [])]:
        require(key, "--group-by" if key in (group_by or []) else "--block-by", chosen)
    for column in columns:
        if column.startswith("landscape."):
            _same_landscape_settings(column, chosen)

    rows = _rows(chosen, group_by)
    experiments = sorted({str(r.get("experiment")) for r in chosen})
    block_by = block_by or _default_blocks(rows, group_by, len(experiments) > 1)
    for row in rows:
        row.block = _key([lookup(row.results[0], k) for k in block_by])
    _name_blocks(rows, block_by)
    ranges = {column: value_range(column) for column in columns}
    for row in rows:
        _fill(row, columns, ranges)
    directions = {column: higher_is_better(column, chosen) for column in columns}
    for column in columns:
        for block in _blocks(rows):
            filled = [r for r in block if column in r.cells]
            if not filled:
                continue
            best, rank1, p_values = stats.rank_groups([r.cells[column].values for r in filled], directions[column])
            for i, r in enumerate(filled):
                cell = r.cells[column]
                cell.best, cell.rank1, cell.p_worse = best[i], rank1[i] or not cell.testable, p_values[i]

    _order(rows, group_by, sort, columns, directions)
    warnings = _warnings(rows, group_by) + budget_warnings(chosen)
    notes: list[str] = []
    across = []
    if columns and group_by is None:
        from losszoo.comparison.across import across_blocks

        across = across_blocks(rows, columns[:1], directions, baseline)
        for a in across:
            notes.extend(_friedman_words(a))
    elif baseline is not None:
        raise LosszooError("--baseline compares rows across datasets; it does not combine with --group-by")
    label_columns = list(rows[0].label) if rows else []
    return Comparison(label_columns, columns, rows, block_by, warnings, notes, across)


def _columns(results: list[dict[str, Any]], metrics: list[str] | None) -> list[str]:
    if metrics:
        columns = [column_name(m) for m in metrics]
        for metric, column in zip(metrics, columns, strict=True):
            require(column, "--metric", results) if metric == column else require_metric(metric, column, results)
        return columns
    seen: dict[str, None] = {}  # every test metric that appears, in order of appearance
    for r in results:
        for name in (r.get("metrics") or {}).get("test", {}) or {}:
            seen.setdefault(f"test.{name}", None)
    return list(seen)


def _same_landscape_settings(column: str, results: list[dict[str, Any]]) -> None:
    """Landscape figures depend on how they were measured: refuse to rank figures measured differently.
    Barriers (``landscape --between``) carry their own settings, the rest those of ``landscape RUN``."""
    which = "barrier_settings" if "barrier" in column.rpartition(".")[2] else "settings"
    settings = {json_text((r.get("landscape") or {}).get(which)) for r in results if lookup(r, column) is not None}
    if len(settings) > 1:
        shown = "; ".join(sorted(settings))
        raise LosszooError(f"--metric {column}: the runs' landscape figures were measured with different settings "
                           f"({shown}); measure them again together with `losszoo landscape` (the same options), "
                           "or compare them apart with --filter")


def _configuration(result: dict[str, Any]) -> str:
    known = result.get("configuration_id")
    if known:
        return str(known)
    from losszoo.spec import configuration_id

    return configuration_id({**(result.get("config") or {}), "label": result.get("label")}) + str(result.get("label"))


def _rows(results: list[dict[str, Any]], group_by: list[str] | None) -> list[Row]:
    rows: dict[Any, Row] = {}
    for r in results:
        key = _key([lookup(r, k) for k in group_by]) if group_by else (r.get("experiment"), _configuration(r))
        row = rows.get(key)
        if row is None:
            row = rows[key] = Row(key, {}, None)
        row.statuses[r["status"]] += 1
        row.results.append(r)
    out = list(rows.values())
    if group_by:
        for row in out:
            row.label = {k: json_text(lookup(row.results[0], k)) for k in group_by}
            row.pooled = _pooled(row.results)
    else:
        named = labels.describe([r.results[0].get("config") or {} for r in out],
                                [str(r.results[0].get("label", "")) for r in out])
        several = len({r.results[0].get("experiment") for r in out}) > 1
        tuned = [tuned_text(r.results[0]) for r in out]
        for row, label, how in zip(out, named, tuned, strict=True):
            row.label = ({"experiment": str(row.results[0].get("experiment"))} if several else {}) | label
            if any(tuned):
                row.label["tuned"] = how or "-"
    return out


def _pooled(results: list[dict[str, Any]]) -> list[str]:
    """The config keys (seed aside) whose values differ between the runs a --group-by row pools."""
    flats = [labels.flatten(r.get("config") or {}) for r in results]
    keys = {k for f in flats for k in f if not labels.ignored(k)}
    return sorted(k for k in keys if len({json_text(f.get(k)) for f in flats}) > 1)


def _default_blocks(rows: list[Row], group_by: list[str] | None, several_experiments: bool) -> list[str]:
    """What is held fixed by default: the dataset configuration (with its file's content), per experiment."""
    keys = ["experiment"] if several_experiments else []
    if group_by is None:
        return [*keys, *DATASET_BLOCK]
    return keys + [k for k in group_by if k.split(".")[0] in ("dataset", "experiment") and k not in keys]


def _key(values: Any) -> tuple:
    """A hashable key of result values; mappings and lists (a loss config) by their JSON text."""
    return tuple(json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else v for v in values)


def _name_blocks(rows: list[Row], block_by: list[str]) -> None:
    """Each block's name: the label values of what it holds fixed, else the held values themselves."""
    names: dict[Any, str] = {}
    for row in rows:
        names.setdefault(row.block, " ".join(v for k, v in row.label.items()
                                             if k in ("experiment", "dataset") or k in block_by))
    if len(names) > 1 and (len(set(names.values())) < len(names) or not all(names.values())):
        names = {block: ", ".join(f"{k}={v}" for k, v in zip(block_by, block, strict=True)) for block in names}
    for row in rows:
        row.block_name = names[row.block]


def _blocks(rows: list[Row]) -> list[list[Row]]:
    blocks: dict[Any, list[Row]] = {}
    for row in rows:
        blocks.setdefault(row.block, []).append(row)
    return list(blocks.values())


def _fill(row: Row, columns: list[str], ranges: dict[str, tuple[float, float]]) -> None:
    completed = [r for r in row.results if r["status"] == "completed"]
    seeds = [r["seed"] for r in completed]
    by_seed = len(seeds) == len(set(seeds))
    # by seed, so that neither the statistics nor their last bit depend on the order of the run folders
    completed.sort(key=lambda r: (type(r["seed"]).__name__, r["seed"]) if by_seed else r["run_id"])
    for column in columns:
        split, _, name = column.partition(".")
        values = {}
        for r in completed:
            value = ((r.get("metrics") or {}).get(split) or {}).get(name) if split in SPLITS else None
            if value is None:
                value = lookup(r, column)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                values[r["seed"] if by_seed else r["run_id"]] = float(value)
        if values:
            mean, std = stats.mean_std(list(values.values()))
            half = stats.ci_halfwidth(std, len(values))
            low, high = ranges[column]
            ci = None if math.isnan(half) else (max(low, mean - half), min(high, mean + half))
            row.cells[column] = Cell(values, mean, std, len(values), ci)


def _order(rows: list[Row], group_by: list[str] | None, sort: str | None, columns: list[str],
           directions: dict[str, bool]) -> None:
    # The losses in recipe order; blocks, and rows of one loss, by name (numbers by value), so that the table
    # reads the same whatever order the run folders were read in.
    rows.sort(key=lambda r: (str(r.results[0].get("experiment", "")), _natural(r.block_name), json_text(r.block),
                             min(res.get("position", 0) for res in r.results),
                             [_natural(v) for v in r.label.values()]))
    if not sort:
        return
    label_keys = list(rows[0].label) if rows else []
    if sort in label_keys:
        rows.sort(key=lambda r: r.label[sort])
        return
    column = column_name(sort)
    if column not in columns:
        shown = label_keys + [c.removeprefix("test.") for c in columns]  # as the table's header reads
        raise LosszooError(f"--sort {sort!r}: not a column of this table ({', '.join(shown)})"
                           + close_words(sort, shown + columns))
    sign = -1 if directions[column] else 1
    rows.sort(key=lambda r: sign * r.cells[column].mean if column in r.cells else math.inf)


@cache
def _natural(text: str) -> tuple[tuple[int, Any], ...]:
    """A sort key that reads numbers as numbers: ``hidden=[32]`` before ``hidden=[256]``, 0.35 before 0.4."""
    return tuple((1, float(part)) if i % 2 else (0, part) for i, part in enumerate(_NUMBER.split(text)))


_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")


def _warnings(rows: list[Row], group_by: list[str] | None) -> list[str]:
    warnings = []
    if any(c.n < 3 for r in rows for c in r.cells.values()):
        warnings.append("some cells have fewer than 3 seeds: their std and rank groups are weak evidence")
    kinds = Counter()
    for row in rows:
        for status, count in row.statuses.items():
            if status != "completed":
                kinds[status] += count
    if kinds:
        warnings.append("runs left out of the statistics: " + ", ".join(f"{v} {k}" for k, v in kinds.items()))
    pooled = sorted({k for r in rows for k in r.pooled})
    if pooled:
        warnings.append(f"--group-by pools runs that differ in {', '.join(pooled)} into one row")
    warnings.extend(_input_versions(rows))
    for block in _blocks(rows):
        seed_sets = {tuple(sorted(r["seed"] for r in row.results)) for row in block}
        if len(seed_sets) > 1:
            warnings.append("compared rows ran different seeds; paired tests fall back to Welch's")
        layers = {str((r.get("provenance") or {}).get("retrieval_layer")) for row in block for r in row.results
                  if (r.get("provenance") or {}).get("retrieval_layer")}
        if len(layers) > 1:
            warnings.append(f"compared rows retrieve with different layers ({', '.join(sorted(layers))}): their "
                            "retrieval metrics are not comparable")
    return sorted(set(warnings), key=warnings.index)


def _input_versions(rows: list[Row]) -> list[str]:
    """Rows that are the same configuration but for the content of a file or plugin they read."""
    versions: dict[str, dict[str, set[str]]] = {}
    for row in rows:
        config = dict(row.results[0].get("config") or {})
        inputs = config.pop("inputs", None) or {}
        same = json_text({"experiment": row.results[0].get("experiment")}
                     | {k: v for k, v in labels.flatten(config).items() if not labels.ignored(k)})
        for name, digest in inputs.items():
            versions.setdefault(name, {}).setdefault(same, set()).add(digest)
    return [f"the experiment holds runs made from {max(len(d) for d in by.values())} versions of {name} (its "
            "content changed between them); they are separate rows" for name, by in versions.items()
            if any(len(d) > 1 for d in by.values())]


def _friedman_words(across: Any) -> list[str]:
    ranked = ", ".join(f"{m} {r:.2f}" for r, m in sorted(zip(across.average_rank, across.methods, strict=True)))
    notes = [f"average rank over {len(across.datasets)} datasets by {across.metric}: {ranked}"]
    p = across.friedman_p
    if math.isnan(p):
        notes.append("Friedman test needs at least 3 rows and 2 datasets")
    elif p >= stats.ALPHA:
        notes.append(f"Friedman p = {p:.3g}: cannot reject that all rows rank alike across datasets")
    else:
        notes.append(f"Friedman p = {p:.3g}: the ranks differ across datasets; Nemenyi critical difference "
                     f"{across.critical_difference:.2f} ranks")
    return notes
