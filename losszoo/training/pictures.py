"""Pictures a run folder gets: ``embeddings.png`` for 2-D embeddings."""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from losszoo.training.store import write_atomic


def plot_embeddings(embeddings: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor | None, path: Path,
                    title: str) -> None:
    """Test embeddings projected on the unit circle, coloured by class, with the class centres.

    The classic picture of an angular margin: the tighter and further apart
    the arcs of each class, the larger the margin the loss enforced.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = torch.nn.functional.normalize(embeddings.detach().float().cpu(), dim=1).numpy()
    labels = labels.cpu().numpy()
    classes = sorted(set(labels.tolist()))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(6, 6), dpi=120)
    circle = [math.cos(2 * math.pi * t / 360) for t in range(361)], [math.sin(2 * math.pi * t / 360)
                                                                    for t in range(361)]
    ax.plot(*circle, color="0.85", lw=1, zorder=0)
    # Jitter the radius a little so points at the same angle stay visible.
    radius = 1 + 0.04 * torch.randn(len(points), generator=torch.Generator().manual_seed(0)).numpy()
    for i, c in enumerate(classes):
        chosen = labels == c
        ax.scatter(points[chosen, 0] * radius[chosen], points[chosen, 1] * radius[chosen], s=8, alpha=0.7,
                   color=cmap(i % cmap.N), label=str(c))
    if centres is not None and centres.shape[-1] == 2:
        unit = torch.nn.functional.normalize(centres.detach().float().cpu().reshape(-1, 2), dim=1).numpy()
        for i, (x, y) in enumerate(unit[: len(classes)]):
            ax.annotate("", xy=(1.18 * x, 1.18 * y), xytext=(0, 0),
                        arrowprops={"arrowstyle": "->", "color": cmap(i % cmap.N), "lw": 1.5})
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, parse_math=False)  # a label is user text: a "$" pair must not start mathtext
    ax.legend(title="class", loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
