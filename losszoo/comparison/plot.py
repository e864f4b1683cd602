"""``losszoo compare --plot FILE.png``: one PNG, one row of panels per compared
block (a dataset, or a dataset of an experiment). Left, the validation
learning curve of each loss, mean over seeds with a ±1 std band; right, the
first column's mean per loss with its 95% t interval, best at the top, the
best bar and the bars not significantly worse than it (rank 1) coloured.

Drawn on matplotlib's Agg canvas directly, never through pyplot: no window,
no display needed, and a caller's own pyplot backend is left alone.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

from losszoo.comparison.across import Across, method_names
from losszoo.comparison.curves import curve_metric, row_curve, selection_metric
from losszoo.comparison.table import Comparison, Row, column_name, higher_is_better
from losszoo.errors import LosszooError

MAX_CURVES = 10  # more lines than this is a tangle; the bar chart still shows every loss
PANEL_WIDTH_IN, PANEL_HEIGHT_IN, DPI = 16.0, 7.0, 100  # 1600 x 700 px per block
BEST, RANK1, OTHER = "#1b7837", "#a6dba0", "#c8c8c8"  # best; rank 1 (not significantly worse); the rest


def _literal_text(draw):
    """User text (labels, a file's name, keys) is drawn as written: a ``$`` pair would start matplotlib's
    mathtext, and a formula that does not parse fails the whole figure."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn


@_literal_text
def plot_comparison(comparison: Comparison, root: Path | str, path: Path | str, metric: str | None = None) -> Path:
    """Write the learning curves and the bar chart of ``comparison`` to ``path`` (PNG).

    ``root`` is the runs folder that holds ``<experiment>/<run_id>/metrics.jsonl``.
    ``metric`` is the column to draw; by default the first column, or in a block
    that lacks it (another task's metrics), the first column the block has.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if metric is not None:
        metric = column_name(metric) if metric not in comparison.columns else metric
    blocks = []
    for title, rows in _blocks(comparison):
        candidates = [metric] if metric else comparison.columns
        column = next((c for c in candidates if any(c in r.cells for r in rows)), None)
        if column is not None:
            blocks.append((title, rows, column))
    if not blocks:
        raise LosszooError(f"nothing to plot: no run has {metric or 'a metric column'}")
    names = method_names(comparison.rows)
    same_colours = _colours(sorted(set(names.values()))) if len(set(names.values())) <= 10 else None
    results = [r for row in comparison.rows for r in row.results]

    fig = Figure(figsize=(PANEL_WIDTH_IN, PANEL_HEIGHT_IN * len(blocks)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    panels = fig.subfigures(len(blocks), 1, squeeze=False)[:, 0]
    for (title, rows, column), panel in zip(blocks, panels, strict=True):
        ranked = _ranked(rows, column, higher_is_better(column, results))
        # one colour per loss in every block while there are few; else by rank within the block
        colours = same_colours or _colours([names[id(r)] for r in ranked[:MAX_CURVES]])
        if title:
            panel.suptitle(title, x=0.01, ha="left", fontsize=14, fontweight="bold")
        curve_ax, bar_ax = panel.subplots(1, 2, width_ratios=(1.35, 1))
        up = higher_is_better(column, results)
        _draw_curves(curve_ax, ranked, root, column, names, colours)
        _draw_bars(bar_ax, ranked, column, names, up)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _blocks(comparison: Comparison) -> list[tuple[str, list[Row]]]:
    """Rows compared with each other (the table's blocks), in order of first appearance, with a title."""
    blocks: dict[object, list[Row]] = {}
    for row in comparison.rows:
        blocks.setdefault(row.block, []).append(row)
    return [(rows[0].block_name if len(blocks) > 1 else "", rows) for rows in blocks.values()]


def _colours(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _ranked(rows: list[Row], column: str, up: bool) -> list[Row]:
    """Best first by ``column``'s mean; rows without the column last, in table order."""
    sign = -1.0 if up else 1.0
    return sorted(rows, key=lambda r: sign * r.cells[column].mean if column in r.cells else math.inf)


def _draw_curves(ax, rows: list[Row], root, column: str, names: dict, colours: dict) -> None:
    name = curve_metric(column)
    label = name if name in ("train_loss", "lr") else f"val {name}"
    shown = rows[:MAX_CURVES]
    drawn = 0
    for row in shown:
        curve = row_curve(row, root, selection_metric(row, column))
        if not len(curve):
            continue
        colour = colours[names[id(row)]]
        best = column in row.cells and row.cells[column].best  # the comparison's best, ties included
        low = [m - s for m, s in zip(curve.mean, curve.std, strict=True)]
        high = [m + s for m, s in zip(curve.mean, curve.std, strict=True)]
        ax.fill_between(curve.epochs, low, high, color=colour, alpha=0.15, linewidth=0)
        ax.plot(curve.epochs, curve.mean, color=colour, linewidth=2.8 if best else 1.6, zorder=3 if best else 2,
                marker="o" if len(curve) == 1 else None, label=names[id(row)] + (" (best)" if best else ""))
        drawn += 1
    more = f"; the best {len(shown)} of {len(rows)} losses" if len(rows) > len(shown) else ""
    ax.set_title(f"{label} per epoch, mean ± std over seeds{more}", loc="left", fontsize=12)
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.1), ncol=min(3, drawn), frameon=False, fontsize=10)
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        ax.text(0.5, 0.5, f"no {label} in the runs' metrics.jsonl", transform=ax.transAxes, ha="center",
                va="center", color="grey")


def _draw_bars(ax, rows: list[Row], column: str, names: dict, up: bool) -> None:
    from matplotlib.patches import Patch

    filled = [r for r in rows if column in r.cells]
    direction = "higher is better" if up else "lower is better"
    ax.set_title(f"{column} ({direction}), best at the top", loc="left", fontsize=12)
    cells = [r.cells[column] for r in filled]
    spans = [(c.mean - c.ci[0], c.ci[1] - c.mean) if c.ci else (0.0, 0.0) for c in cells]
    low = min(c.mean - lo for c, (lo, _) in zip(cells, spans, strict=True))
    high = max(c.mean + hi for c, (_, hi) in zip(cells, spans, strict=True))
    pad = 0.08 * (high - low) or 0.05 * abs(high) or 0.05
    # Bars start near the axis edge, not at 0, so that small differences stay visible; the
    # shortest still has room for its value.
    left = low - 3.5 * pad
    positions = list(range(len(filled)))[::-1]  # best at the top
    colours = [BEST if c.best else RANK1 if c.rank1 and c.testable else OTHER for c in cells]
    ax.barh(positions, [c.mean - left for c in cells], left=left, color=colours, height=0.7, edgecolor="none")
    xerr = [[lo for lo, _ in spans], [hi for _, hi in spans]]
    ax.errorbar([c.mean for c in cells], positions, xerr=xerr, fmt="none", ecolor="black", elinewidth=1.2, capsize=3)
    size = max(6, min(10, 400 // len(filled)))
    for y, cell, colour in zip(positions, cells, colours, strict=True):
        ax.text(left + 0.3 * pad, y, f"{cell.mean:.4f}", va="center", ha="left", fontsize=size,
                color="white" if colour == BEST else "black")
    ax.set_yticks(positions, [f"{names[id(r)]}  (n={c.n})" for r, c in zip(filled, cells, strict=True)], fontsize=size)
    for label, cell in zip(ax.get_yticklabels(), cells, strict=True):
        if cell.best:
            label.set_fontweight("bold")
    ax.set_xlim(left, high + pad)
    extra = max(0, 5 - len(filled)) / 2  # a lone bar stays bar-sized
    ax.set_ylim(-0.6 - extra, len(filled) - 0.4 + extra)
    ax.set_xlabel(f"{column}: mean over seeds, 95% t interval")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(handles=[Patch(color=BEST, label="best"), Patch(color=RANK1, label="not significantly worse"),
                       Patch(color=OTHER, label="significantly worse")],
              loc="upper left", bbox_to_anchor=(0.0, -0.1), ncol=3, frameon=False, fontsize=10)


@_literal_text
def plot_critical_difference(across: Across, path: Path | str) -> Path:
    """Demšar's critical-difference diagram: each method at its average rank over datasets; methods whose
    ranks differ by less than the Nemenyi critical difference are joined by a bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    order = sorted(range(len(across.methods)), key=lambda i: across.average_rank[i])
    k = len(order)
    fig = Figure(figsize=(10, 1.6 + 0.35 * k), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set_xlim(1, max(k, 2))
    ax.set_ylim(-(k + 1), 1.5)
    ax.invert_xaxis()  # rank 1 (best) on the right, as Demšar draws it
    ax.axhline(0, color="black", linewidth=1)
    ax.set_yticks([])
    for side in ("left", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.xaxis.set_ticks_position("top")
    ax.set_xlabel(f"average rank by {across.metric} over {len(across.datasets)} datasets (1 = best)")
    ax.xaxis.set_label_position("top")
    for y, i in enumerate(order, start=1):
        rank = across.average_rank[i]
        ax.plot([rank, rank], [0, -y], color="grey", linewidth=0.8)
        ax.text(rank, -y, f" {across.methods[i]} ({rank:.2f})", va="center",
                ha="right" if rank >= (k + 1) / 2 else "left", fontsize=10)
    cd = across.critical_difference
    ax.plot([1, 1 + cd], [1.0, 1.0], color="black", linewidth=2)
    ax.text(1 + cd / 2, 1.15, f"CD = {cd:.2f} (Nemenyi, 5%)", ha="center", fontsize=9)
    cliques, row_y = [], -0.4
    for a in range(k):  # maximal runs of methods within CD of each other
        b = max(j for j in range(a, k) if across.average_rank[order[j]] - across.average_rank[order[a]] < cd)
        if b > a and not any(a >= s and b <= e for s, e in cliques):
            cliques.append((a, b))
    for s, e in cliques:
        ax.plot([across.average_rank[order[s]], across.average_rank[order[e]]], [row_y, row_y], color="black",
                linewidth=4, solid_capstyle="round")
        row_y -= 0.25
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


@_literal_text
def plot_trials(studies: list, path: Path | str) -> Path:
    """Each tuned loss's best val score so far against the trials spent: flat at the end means the budget was
    enough to find what this search could find."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colours = _colours([s.label for s in studies])
    for study in studies:
        best = study.best_so_far()
        trials = list(range(1, len(best) + 1))
        ax.plot(trials, best, color=colours[study.label], linewidth=2, label=study.label, drawstyle="steps-post")
        ax.scatter(trials, study.scores(), color=colours[study.label], s=12, alpha=0.5)
    metric = studies[0].metric if studies else "score"
    ax.set_xlabel("trials spent")
    ax.set_ylabel(f"val {metric}")
    ax.set_title(f"best val {metric} so far (line) and each trial (dots)", loc="left")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", frameon=False)
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


@_literal_text
def plot_correlation(correlation, path: Path | str) -> Path:
    """The runs' generalisation gap against the figure ``--correlate`` names, with Kendall's tau."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.scatter(correlation.xs, correlation.ys, s=25, color=BEST, alpha=0.8)
    ax.set_xlabel(correlation.key)
    ax.set_ylabel(f"generalisation gap ({correlation.gap})")
    ax.set_title(f"Kendall's tau = {correlation.tau:.2f} [{correlation.low:.2f}, {correlation.high:.2f}], "
                 f"{correlation.n} runs", loc="left")
    ax.grid(True, alpha=0.3)
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path
