"""Stacked training (issue 16): M seeds of one run trained as one stack against the same runs one after another.

The digits MLP (256-256), AdamW, batch 64, a cosine schedule, 30 epochs, a val-accuracy evaluation every epoch;
both sides on the same number of torch threads (1), in this one process, end to end (set-up, training and the
test evaluation of every run). Each side is repeated, alternating, and the median taken of the wall time and of
the process CPU time (steadier on a busy machine). Goal: stacked >= 1.25x faster at M = 8 on one thread.

Then the scaling with M (against the sequential time per run above, times M: one after another is linear
in M), and the peak memory of a stack of one epoch: the growth of the process's peak resident set (VmHWM)
while it trains, each M in a fresh process, against ``member_bytes``'s estimate (what ``stack_size_limit``
divides a memory budget by).

    python benchmarks/bench_stacked.py [--repeats 3] [--sizes 8 32 128]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from losszoo.recipe.load import load_recipe
from losszoo.training.stacked import member_bytes, stack_size_limit, train_stack
from losszoo.training.trainer import train_run

RECIPE = {
    "experiment": "bench-stacked",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [256, 256]},
    "loss": "cross_entropy",
    "metrics": ["accuracy"],
    "train": {"epochs": 30, "batch_size": 64, "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
              "scheduler": "cosine", "device": "cpu", "threads": 1},
}


def configs(m: int, epochs: int, first_seed: int = 0) -> list[dict]:
    train = {**RECIPE["train"], "epochs": epochs}
    recipe = {**RECIPE, "seeds": list(range(first_seed, first_seed + m)), "train": train}
    return [run.config for run in load_recipe(recipe).runs]


def timed(work) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def sequential(runs: list[dict], folder: Path) -> tuple[float, float]:
    return timed(lambda: [train_run(c, folder / f"seq-{i}") for i, c in enumerate(runs)])


def stacked(runs: list[dict], folder: Path) -> tuple[float, float]:
    def work():
        outcomes = train_stack(runs, [folder / f"stack-{i}" for i in range(len(runs))])
        failed = [o for o in outcomes if isinstance(o, Exception)]
        if failed:
            raise failed[0]

    return timed(work)


def peak_rss() -> int:
    """The process's peak resident set in bytes: VmHWM, which starts afresh with the program (``ru_maxrss``
    keeps the peak of the process that started it: exec carries it over on Linux)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory(m: int, epochs: int) -> dict:
    """In this (fresh) process: the growth of the peak RSS while a stack of ``m`` trains."""
    runs = configs(m, epochs)
    with tempfile.TemporaryDirectory() as tmp:
        train_run(configs(1, 1)[0], Path(tmp) / "warm-up")  # imports, allocator, data cache
        before = peak_rss()
        stacked(runs, Path(tmp))
        after = peak_rss()
    return {"m": m, "peak_growth": after - before, "estimate": member_bytes(runs[0]) * m}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--m", type=int, default=8, help="members of the headline comparison (default 8)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[8, 32, 128], help="M of the scaling")
    parser.add_argument("--memory", type=int, help=argparse.SUPPRESS)  # the child process of one memory reading
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.memory:
        print(json.dumps(memory(args.memory, 1)))
        return

    epochs = RECIPE["train"]["epochs"]
    seq, stack = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train_run(configs(1, 1)[0], folder / "warm-up")
        for repeat in range(args.repeats):  # alternate, so a drifting machine load hits both alike
            runs = configs(args.m, epochs, first_seed=repeat * args.m)
            seq.append(sequential(runs, folder / f"r{repeat}"))
            stack.append(stacked(runs, folder / f"r{repeat}"))
    print(f"digits mlp [256, 256], adamw, batch 64, {epochs} epochs, {args.m} seeds, 1 thread, "
          f"median of {args.repeats}")
    for what, index in (("wall", 0), ("cpu ", 1)):
        s, t = statistics.median(r[index] for r in seq), statistics.median(r[index] for r in stack)
        print(f"  {what}: sequential {s:7.2f} s   stacked {t:7.2f} s   speedup {s / t:.2f}x  (goal >= 1.25x)")

    per_run = [statistics.median(r[index] for r in seq) / args.m for index in (0, 1)]
    print(f"scaling with M, {epochs} epochs, once each (sequential: the median per run above, times M):")
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.sizes:
            wall, cpu = stacked(configs(m, epochs, first_seed=1000), Path(tmp) / f"m{m}")
            print(f"  M = {m:4d}: stacked {wall:7.2f} s wall, {cpu:7.2f} s cpu ({cpu / m:.3f} s cpu per member); "
                  f"speedup wall {per_run[0] * m / wall:.2f}x, cpu {per_run[1] * m / cpu:.2f}x")

    print("peak memory of a stack (growth of the peak RSS, VmHWM, in a fresh process) against member_bytes * M:")
    for m in args.sizes:
        child = subprocess.run([sys.executable, __file__, "--memory", str(m)],
                               capture_output=True, text=True, check=True)
        reading = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"  M = {m:4d}: {reading['peak_growth'] / 2**20:7.1f} MiB measured, "
              f"{reading['estimate'] / 2**20:7.1f} MiB estimated")
    runs = configs(1, epochs) * 1_000_000  # only the first is read
    print(f"stack_size_limit(auto: half the free RAM): {stack_size_limit(runs, 'cpu')} members of "
          f"{member_bytes(runs[0]) / 2**20:.1f} MiB each")


if __name__ == "__main__":
    main()
