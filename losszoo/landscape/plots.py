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


def _literal(text: str) -> str:
    """User text (run ids, labels, paths) as matplotlib draws it literally: a ``$`` pair would start
    mathtext, and an invalid formula fails the whole figure."""
    return text.replace("$", r"\$")


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
        ax.set_title(f"{_literal(title)}\nλmax {s['lambda_max']:.3g}, radius {s['radius']:.3g}", fontsize=9)
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
        ax.set_title(_literal(title), fontsize=9)
    cbar = fig.colorbar(filled, ax=axes[0].tolist(), shrink=0.95)
    ticks = np.geomspace(lo, hi, 6)
    cbar.set_ticks(ticks)
    cbar.set_ticklabels([f"{t:.2g}" for t in ticks])
    cbar.minorticks_off()
    cbar.set_label("training loss (probe), log-spaced levels")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_paths(paths: dict[str, dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss and error along each path from run A (t = 0) to run B (t = 1), one colour per path (the
    straight line, the trained curve, the line to B aligned), solid on the training probe, dashed on
    the test samples."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = {"line": "tab:blue", "curve": "tab:red", "aligned": "tab:green"}
    first = next(iter(paths.values()))
    for name, result in paths.items():
        colour = colours.get(name, "tab:grey")
        for split, style in (("train", "-"), ("test", "--")):
            left.plot(result["t"], result[f"{split}_loss"], linestyle=style, marker="o", markersize=2.5,
                      color=colour, label=f"{name}, {split}")
            accuracy = result[f"{split}_accuracy"]
            if None not in accuracy:
                right.plot(result["t"], [1 - a for a in accuracy], linestyle=style, marker="o", markersize=2.5,
                           color=colour, label=f"{name}, {split}")
    left.set_ylabel("loss")
    right.set_ylabel("error")
    for ax in (left, right):
        ax.set_xlabel(_literal(f"t  (0: {first['run_a']}, 1: {first['run_b']})"))
        if ax.lines:
            ax.legend(fontsize=7)
    barriers = "; ".join(f"{name} {r['barrier']:.3g}" for name, r in paths.items() if not math.isnan(r["barrier"]))
    title = _literal(title)
    fig.suptitle(f"{title}  barrier (test error): {barriers}" if barriers else title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_spectrum(measured: list[dict[str, Any]], titles: list[str], path: Path) -> None:
    """The Hessian's eigenvalue density (log scale, as Ghorbani et al. draw it) per run, the top-k
    eigenvalues as ticks, and the negative threshold as a dotted line."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(measured), figsize=(5.2 * len(measured), 3.8), squeeze=False,
                             layout="constrained")
    for ax, m, title in zip(axes[0], measured, titles, strict=True):
        density = m["spectrum"]["density"]
        grid, values = np.asarray(density["grid"]), np.asarray(density["density"])
        floor = max(values.max() * 1e-8, 1e-300)
        ax.semilogy(grid, np.maximum(values, floor), color="tab:blue")
        for value in m["spectrum"]["top_k"]["values"]:
            ax.axvline(value, color="tab:red", linewidth=0.6, alpha=0.6)
        ax.axvline(density["threshold"], color="grey", linestyle=":", linewidth=0.8)
        ax.set_ylim(bottom=floor * 10)
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("density")
        ax.set_title(f"{_literal(title)}\nnegative share {density['negative_share']:.3g}; red: top "
                     f"{len(m['spectrum']['top_k']['values'])}", fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_trajectory(trajectories: list[dict[str, Any]], titles: list[str], path: Path, levels: int = 24) -> None:
    """Per run, two panels: the path of the saved points over the loss surface in their principal plane
    (Li et al. 2018, figure 9), and lambda_max, lambda_min and the negative share per saved point."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    fig, axes = plt.subplots(len(trajectories), 2, figsize=(10.5, 4.4 * len(trajectories)), squeeze=False,
                             layout="constrained")
    for (surface_ax, curve_ax), tr, title in zip(axes, trajectories, titles, strict=True):
        alphas = np.asarray(tr["plane"]["alphas"])
        z = np.asarray(tr["plane"]["loss"], dtype=float)
        values = _finite_positive(z.ravel())
        lo, hi = (values.min(), values.max()) if len(values) else (1e-3, 1.0)
        hi = max(hi, lo * 1.01)
        z = np.clip(np.where(np.isfinite(z), z, hi), lo, hi)
        bounds = np.geomspace(lo, hi, levels)
        filled = surface_ax.contourf(alphas, alphas, z, levels=bounds, norm=LogNorm(lo, hi), cmap="viridis")
        fig.colorbar(filled, ax=surface_ax, shrink=0.9, format="%.2g", label="training loss (probe)")
        xs, ys = [p["x"] for p in tr["points"]], [p["y"] for p in tr["points"]]
        surface_ax.plot(xs, ys, color="red", marker="o", markersize=3)
        for p in tr["points"][:: max(1, len(xs) // 6)] + tr["points"][-1:]:
            surface_ax.annotate(p["name"], (p["x"], p["y"]), fontsize=7, color="white")
        ex = tr["explained_variance"]
        surface_ax.set_xlabel(f"1st principal direction ({100 * ex[0]:.1f}%)")
        surface_ax.set_ylabel(f"2nd principal direction ({100 * ex[1]:.1f}%)")
        surface_ax.set_title(_literal(title), fontsize=9)
        steps = list(range(len(xs)))
        curve_ax.plot(steps, [p["lambda_max"] for p in tr["points"]], marker="o", markersize=3, label="λmax")
        curve_ax.plot(steps, [p["lambda_min"] for p in tr["points"]], marker="o", markersize=3, label="λmin")
        curve_ax.set_yscale("symlog", linthresh=1e-3)
        shown = steps[:: max(1, -(-len(steps) // 10))]  # at most 10 tick labels: they stay readable
        curve_ax.set_xticks(shown, [tr["points"][i]["name"].removeprefix("epoch ") for i in shown], fontsize=7)
        curve_ax.set_xlabel("saved point (epoch)")
        curve_ax.set_ylabel("Hessian eigenvalue (symlog)")
        share = curve_ax.twinx()
        share.plot(steps, [p["negative_share"] for p in tr["points"]], color="tab:green", linestyle="--",
                   label="negative share")
        share.set_ylabel("negative share (dashed)")
        share.set_ylim(0, max(0.05, 1.2 * max(p["negative_share"] for p in tr["points"])))
        curve_ax.legend(fontsize=7, loc="upper right")
    fig.savefig(path, dpi=120)
    plt.close(fig)
