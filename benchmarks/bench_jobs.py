"""Wall time of a 12-run digits grid: ``losszoo train --jobs N`` against ``--jobs 1``.

    python benchmarks/bench_jobs.py [--jobs 2] [--epochs 40] [--hidden 512 512] [--repeat 1]
    python benchmarks/bench_jobs.py --recipe recipes/digits-margin.yaml    # the Quickstart's own grid (goal 1.5x)

The grid is 4 losses x 3 seeds of an mlp on digits, one torch thread per run
(``train.threads``, the default), so both sides do the same arithmetic and
their test metrics agree run by run. Each measurement is the whole command in
a fresh process with a fresh runs folder, as a user runs it: ``--jobs 1``
pays its imports once, ``--jobs N`` once in the parent and once in each
spawned worker. Prints both wall times, their ratio, and whether the metrics
agree. With ``--repeat`` the two are measured alternately and the best of each
kept, which damps the noise of a shared machine.

The script first measures how much parallel capacity the machine has right
now (a fixed matmul loop alone, then in N processes at once): on a machine
busy with other work, N processes may get no more CPU than one, and no
``--jobs`` can beat that.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def recipe(epochs: int, hidden: list[int]) -> dict:
    return {
        "experiment": "bench-jobs",
        "dataset": "digits",
        "model": {"name": "mlp", "hidden": hidden, "embedding_dim": 32},
        "losses": ["cross_entropy", {"name": "focal", "gamma": 2.0}, {"name": "poly1", "epsilon": 1.0},
                   {"name": "cosface", "margin": 0.35, "scale": 16.0}],
        "seeds": [0, 1, 2],
        "train": {"epochs": epochs, "batch_size": 32, "optimizer": {"name": "adamw", "lr": 1.0e-3}},
    }


def spin(steps: int = 20_000) -> float:
    """Seconds for a fixed single-threaded matmul loop."""
    import torch

    torch.set_num_threads(1)
    x, w = torch.randn(64, 256), torch.randn(256, 256)
    start = time.perf_counter()
    for _ in range(steps):
        x @ w
    return time.perf_counter() - start


def headroom(jobs: int) -> float:
    """How many times the work of one process N processes get done in the same time (ideal: N)."""
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        pool.map(spin, [100] * jobs)  # start-up out of the way
        together = max(pool.map(spin, [20_000] * jobs))
    alone = spin()
    return jobs * alone / together


def timed(recipe_file: Path, jobs: int) -> tuple[float, dict[str, dict]]:
    """Seconds of one ``losszoo train`` command, and the test metrics of each run."""
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder:
        command = [sys.executable, "-m", "losszoo", "train", str(recipe_file), "--jobs", str(jobs),
                   "--runs-dir", folder]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        metrics = {}
        for result in Path(folder).glob("*/*/result.json"):
            data = json.loads(result.read_text())
            metrics[data["run_id"]] = data["metrics"].get("test")
        return seconds, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--recipe", type=Path, help="time this recipe instead of the built-in grid")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    grid = (f"{args.recipe}" if args.recipe else
            f"12 runs (digits, mlp {args.hidden}, {args.epochs} epochs, 1 torch thread a run)")
    print(f"{grid}, {cores} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"machine headroom now: {args.jobs} processes at once get {headroom(args.jobs):.2f}x the work of one done "
          f"(ideal {args.jobs}x)")
    with tempfile.TemporaryDirectory(prefix="bench-jobs-recipe-") as folder:
        recipe_file = args.recipe.resolve() if args.recipe else Path(folder) / "bench-jobs.yaml"
        if not args.recipe:
            recipe_file.write_text(yaml.safe_dump(recipe(args.epochs, args.hidden)))
        best: dict[int, float] = {}
        metrics: dict[int, dict] = {}
        for attempt in range(args.repeat):
            for jobs in (1, args.jobs):
                seconds, metrics[jobs] = timed(recipe_file, jobs)
                best[jobs] = min(seconds, best.get(jobs, seconds))
                print(f"  attempt {attempt + 1}: jobs={jobs:<2} {seconds:7.2f} s")
    same = metrics[1] == metrics[args.jobs] and len(metrics[1]) > 0
    print(f"jobs=1         {best[1]:7.2f} s")
    print(f"jobs={args.jobs:<10}{best[args.jobs]:7.2f} s")
    print(f"speed-up       {best[1] / best[args.jobs]:7.2f}x   (goal >= 1.5x; test metrics "
          f"{'identical' if same else 'DIFFER'} run by run)")


if __name__ == "__main__":
    main()
