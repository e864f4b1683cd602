"""Pictures of landscapes: 1-D profiles, 2-D contours with log-spaced levels, the path between two runs.

Each function takes one or more measurements (``landscape.json`` contents)
and draws them side by side on shared scales, so two runs read against each
other. matplotlib is imported here only, with the Agg backend (no display).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite_positive(values: np.ndarray) -> np.ndarray:
    values = values[np.isfinite(values)]
    return values[values > 0]


def plot_profiles(measured: list[dict[str, Any]], titles: list[str], path: Path) -> None:
    """Loss (solid, log scale, left axis) and accuracy (dashed, right axis) along each 1-D direction,
    one panel per run, on one shared loss axis."""
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(1, len(measured), figsize=(5.2 * len(measured), 4.0), squeeze=False, sharey=True,
                             layout="constrained")
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
    losses = _finite_positive(np.concatenate([np.asarray(p["loss"], dtype=float) for m in measured
                                              for p in m["profiles"]]))
    narrow = len(losses) and losses.max() / losses.min() < 30  # under ~1.5 decades the minor ticks get labels
    plain = FuncFormatter(lambda v, _: f"{v:.3g}")
    for ax, m, title in zip(axes[0], measured, titles, strict=True):
        twin = ax.twinx()
        for i, p in enumerate(m["profiles"]):
            colour = colours[i % len(colours)]
            ax.plot(p["alphas"], p["loss"], color=colour)
            if any(a is not None for a in p["accuracy"]):
                accuracy = [np.nan if a is None else a for a in p["accuracy"]]
                twin.plot(p["alphas"], accuracy, color=colour, linestyle="--", alpha=0.6)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain if narrow else NullFormatter())
        twin.set_ylim(0, 1.02)
        twin.set_ylabel("accuracy (dashed)")
        ax.set_xlabel("step along a filter-normalized direction")
        ax.set_ylabel("training loss on the probe (solid)")
        s = m["summary"]
        ax.set_title(f"{title}\nλmax {s['lambda_max']:.3g}, radius {s['radius']:.3g}", fontsize=9)
        ax.axvline(0, color="grey", linewidth=0.5)
    directions = len(measured[0]["profiles"])
    handles = [Line2D([], [], color=colours[i % len(colours)]) for i in range(directions)]
    fig.legend(handles, [f"direction {i + 1}" for i in range(directions)], loc="outside lower center",
               ncol=directions, fontsize=8, frameon=False)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_plane(measured: list[dict[str, Any]], titles: list[str], path: Path, levels: int = 24) -> None:
    """Filled contours of the 2-D surface on one log-spaced set of levels shared by every panel."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    planes = [np.asarray(m["plane"]["loss"], dtype=float) for m in measured]
    values = _finite_positive(np.concatenate([p.ravel() for p in planes]))
    lo, hi = (values.min(), values.max()) if len(values) else (1e-3, 1.0)
    hi = max(hi, lo * 1.01)
    bounds = np.geomspace(lo, hi, levels)
    fig, axes = plt.subplots(1, len(measured), figsize=(4.8 * len(measured) + 1.2, 4.4), squeeze=False,
                             layout="constrained")
    filled = None
    for ax, m, z, title in zip(axes[0], measured, planes, titles, strict=True):
        alphas = np.asarray(m["plane"]["alphas"])
        z = np.clip(np.where(np.isfinite(z), z, hi), lo, hi)
        filled = ax.contourf(alphas, alphas, z, levels=bounds, norm=LogNorm(lo, hi), cmap="viridis", extend="both")
        ax.contour(alphas, alphas, z, levels=bounds, colors="white", linewidths=0.4, alpha=0.6)
        ax.plot([0], [0], marker="*", color="red", markersize=10)
        ax.set_aspect("equal")
        ax.set_xlabel("direction 1")
        ax.set_ylabel("direction 2")
        ax.set_title(title, fontsize=9)
    cbar = fig.colorbar(filled, ax=axes[0].tolist(), shrink=0.95)
    ticks = np.geomspace(lo, hi, 6)
    cbar.set_ticks(ticks)
    cbar.set_ticklabels([f"{t:.2g}" for t in ticks])
    cbar.minorticks_off()
    cbar.set_label("training loss (probe), log-spaced levels")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_between(path_result: dict[str, Any], path: Path, title: str = "") -> None:
    """Loss and error along the straight line from run A (t = 0) to run B (t = 1)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    t = path_result["t"]
    for split, colour in (("train", "tab:blue"), ("test", "tab:orange")):
        left.plot(t, path_result[f"{split}_loss"], marker="o", markersize=3, color=colour, label=split)
        accuracy = path_result[f"{split}_accuracy"]
        if None not in accuracy:
            right.plot(t, [1 - a for a in accuracy], marker="o", markersize=3, color=colour, label=split)
    left.set_ylabel("loss")
    right.set_ylabel("error")
    for ax in (left, right):
        ax.set_xlabel(f"t  (0: {path_result['run_a']}, 1: {path_result['run_b']})")
        ax.legend(fontsize=8)
    barrier = path_result["barrier"]
    fig.suptitle(f"{title}  barrier (test error) {barrier:.3g}, loss barrier {path_result['loss_barrier']:.3g}"
                 if not math.isnan(barrier) else title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
