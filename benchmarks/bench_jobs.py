"""Wall time of a 12-run digits grid trained with ``--jobs N`` against ``--jobs 1``, in one process.

    python benchmarks/bench_jobs.py [--jobs 2] [--epochs 40] [--hidden 512 512] [--repeat 1] [--baseline-threads T]

The grid is 4 losses x 3 seeds of an mlp on digits. Each measurement trains it
from scratch into a fresh runs folder through ``train_grid``, as ``losszoo
train`` does: ``jobs=N`` in N spawned workers with ``cores // N`` torch threads
each (worker start-up, imports included, counts against it); ``jobs=1`` in this
process with ``--baseline-threads`` threads, by default the workers' count, so
both do the same arithmetic (identical metrics) and the ratio measures the
processes alone; ``--baseline-threads 0`` keeps torch's default (all cores), as
a plain ``losszoo train`` would. Prints both wall times, their ratio, and
whether the two grids' test metrics agree run by run. With ``--repeat`` the two
are measured alternately and the best of each kept, which damps the noise of a
machine shared with other work.

Each worker pays a start-up (imports, the first run's warm-up: a few CPU
seconds), so the ratio approaches N only when the grid is long against it.
The script first measures how much parallel capacity the machine has right
now (one fixed matmul loop alone, then in N processes at once): on a machine
busy with other work, N processes may get no more CPU than one, and no
``--jobs`` can beat that.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from losszoo.recipe.load import load_recipe
from losszoo.training.grid import train_grid


def recipe(epochs: int, hidden: list[int]):
    return load_recipe({
        "experiment": "bench-jobs",
        "dataset": "digits",
        "model": {"name": "mlp", "hidden": hidden, "embedding_dim": 32},
        "losses": ["cross_entropy", {"name": "focal", "gamma": 2.0}, {"name": "poly1", "epsilon": 1.0},
                   {"name": "cosface", "margin": 0.35, "scale": 16.0}],
        "seeds": [0, 1, 2],
        "train": {"epochs": epochs, "batch_size": 32, "optimizer": {"name": "adamw", "lr": 1.0e-3}},
    })


def spin(steps: int = 20_000) -> float:
    """Seconds for a fixed single-threaded matmul loop."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x, w = torch.randn(64, 256), torch.randn(256, 256)
    start = time.perf_counter()
    for _ in range(steps):
        x @ w
    seconds = time.perf_counter() - start
    torch.set_num_threads(threads)
    return seconds


def headroom(jobs: int) -> float:
    """How many times the work of one process N processes get done in the same time (ideal: N)."""
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        pool.map(spin, [100] * jobs)  # start-up out of the way
        together = max(pool.map(spin, [20_000] * jobs))
    alone = spin()
    return jobs * alone / together


def timed(grid, jobs: int) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder:
        start = time.perf_counter()
        results = train_grid(grid, Path(folder), jobs=jobs)
        return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline-threads", type=int, default=None,
                        help="torch threads for jobs=1 [default: cores // jobs; 0: torch's default]")
    args = parser.parse_args()

    import torch

    grid = recipe(args.epochs, args.hidden)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, cores // args.jobs) if args.baseline_threads is None else args.baseline_threads
    if threads:
        torch.set_num_threads(threads)
    print(f"{len(grid.runs)} runs (digits, mlp {args.hidden}, {args.epochs} epochs), {cores} cores, "
          f"load average {os.getloadavg()[0]:.1f}; jobs=1 uses {torch.get_num_threads()} torch threads, "
          f"jobs={args.jobs} uses {max(1, cores // args.jobs)} per worker")
    print(f"machine headroom now: {args.jobs} processes at once get {headroom(args.jobs):.2f}x the work of one done "
          f"(ideal {args.jobs}x)")
    timed(recipe(1, [8]), jobs=1)  # warm this process's imports and dataset cache, as a CLI run would have

    best: dict[int, float] = {}
    results: dict[int, list[dict]] = {}
    for attempt in range(args.repeat):
        for jobs in (1, args.jobs):
            seconds, results[jobs] = timed(grid, jobs)
            best[jobs] = min(seconds, best.get(jobs, seconds))
            print(f"  attempt {attempt + 1}: jobs={jobs:<2} {seconds:7.2f} s")

    statuses = {r["status"] for rs in results.values() for r in rs}
    same = all(a["metrics"] == b["metrics"] for a, b in zip(results[1], results[args.jobs], strict=True))
    print(f"jobs=1         {best[1]:7.2f} s")
    print(f"jobs={args.jobs:<10}{best[args.jobs]:7.2f} s")
    print(f"speed-up       {best[1] / best[args.jobs]:7.2f}x   (statuses: {', '.join(sorted(statuses))}; "
          f"test metrics {'identical' if same else 'DIFFER'} run by run)")


if __name__ == "__main__":
    main()
