"""Time ``losszoo compare`` over a store of 10,000 finished runs against the 2 s goal.

    python benchmarks/bench_compare.py [--losses 50] [--datasets 20] [--seeds 10] [--repeat 3] [--keep DIR]

Writes ``losses x datasets x seeds`` synthetic run folders (``result.json`` as
``losszoo.training.runner.make_result`` writes it: configuration id, metric
directions, provenance, the resolved config with the content hash of the csv
each dataset reads) into a temporary runs dir, then prints the
best-of-``repeat`` wall time of

- ``losszoo compare --format csv`` and ``losszoo compare`` (the Rich table,
  which also prints the across-dataset IQMs with their bootstrap intervals),
  end to end in a subprocess, interpreter start-up and imports included;
- ``losszoo --help``, the start-up cost alone;
- in process: ``iter_results`` (reading the store), ``compare_results``
  (rows, labels, blocks, all-pairs rank groups, warnings; across the
  datasets IQM, average ranks, Friedman and the critical difference) and the
  IQM intervals (2,000 stratified bootstrap replicates per loss, drawn when a
  renderer first reads them: csv never does), separately;

each with its ratio to the 2 s goal. ``--keep DIR`` writes the store there and
leaves it (to profile ``losszoo compare --runs-dir DIR`` by hand).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from losszoo.spec import configuration_id

GOAL_SECONDS = 2.0
EXPERIMENT = "bench"
METRICS = {"accuracy": 0.9, "macro_f1": 0.88, "nll": 0.35, "ece": 0.05}


def synthetic_result(loss: int, dataset: int, seed: int, rng: random.Random) -> dict:
    """One result.json, shaped like losszoo.training.runner.make_result writes it."""
    skill = 0.02 * ((loss * 7) % 11) / 10  # some losses better than others, the same on every dataset
    metrics = {split: {name: base + (skill if name in ("accuracy", "macro_f1") else -skill) + rng.gauss(0, 0.01)
                       for name, base in METRICS.items()} for split in ("val", "test")}
    status = "diverged" if rng.random() < 0.01 else "completed"
    loss_config = {"name": f"loss_{loss:02d}", "margin": 0.1 * (loss % 5), "scale": 30.0}
    config = {
        "experiment": EXPERIMENT,
        "dataset": {"name": "csv", "path": f"/data/dataset_{dataset:02d}.csv", "target": "label",
                    "test_fraction": 0.2, "val_fraction": 0.2, "label_noise": 0.0, "noise_kind": "symmetric",
                    "imbalance": 1.0, "open_set": False},
        "model": {"name": "mlp", "hidden": [128], "activation": "relu", "dropout": 0.0, "batch_norm": False,
                  "embedding_dim": 32},
        "loss": loss_config,
        "seed": seed,
        "train": {"epochs": 20, "batch_size": 64,
                  "optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 0.0001, "momentum": 0.9},
                  "scheduler": {"name": "cosine", "step_size": 10, "gamma": 0.1},
                  "grad_clip": None, "patience": None, "device": "auto"},
        "metrics": list(METRICS),
        "select_by": "val.accuracy",
        "inputs": {"dataset.path": hashlib.sha256(f"dataset {dataset}".encode()).hexdigest()},
        "plugins": [],
    }
    run_id = f"{loss:02d}{dataset:02d}{seed:02d}{rng.getrandbits(24):06x}"
    return {
        "run_id": run_id, "experiment": EXPERIMENT, "status": status, "dataset": config["dataset"]["name"],
        "model": "mlp", "loss": loss_config, "label": f"loss_{loss:02d}(m={loss_config['margin']:g},s=30)",
        "seed": seed, "config_hash": run_id, "configuration_id": configuration_id(config),
        "metrics": metrics if status == "completed" else {"val": {}},
        "higher_is_better": {"accuracy": True, "macro_f1": True, "nll": False, "ece": False},
        "best_epoch": 17, "epochs_run": 20, "train_seconds": 4.1, "samples_per_second": 9000,
        "n_parameters": 84000, "versions": {"losszoo": "0.1.0", "torch": "2.13.0+cpu", "python": "3.11.7"},
        "provenance": {"split_sizes": {"train": 1078, "val": 359, "test": 360}, "device": "cpu", "threads": 1,
                       "precision": "fp32", "retrieval_layer": None, "fitted_on_val": {}},
        "error": "non-finite train loss at epoch 3" if status == "diverged" else None, "position": loss,
        "config": config,
    }


def write_store(root: Path, losses: int, datasets: int, seeds: int) -> int:
    rng = random.Random(0)
    count = 0
    for loss in range(losses):
        for dataset in range(datasets):
            for seed in range(seeds):
                result = synthetic_result(loss, dataset, seed, rng)
                folder = root / EXPERIMENT / result["run_id"]
                folder.mkdir(parents=True)
                (folder / "result.json").write_text(json.dumps(result, indent=2) + "\n")
                count += 1
    return count


def cli_time(args: list[str], root: Path, repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time (user + system) of the command."""
    exe = Path(sys.executable).with_name("losszoo")
    command = [str(exe) if exe.exists() else "losszoo", *args]
    env = {**os.environ, "COLUMNS": "200", "LOSSZOO_RUNS": str(root)}
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return min(walls), min(cpus)


def cpu_and_wall(fn, repeat):
    """Best wall time, best CPU time of this process, and the value."""
    walls, cpus, value = [], [], None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        value = fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - start)
    return min(walls), min(cpus), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", type=int, default=50)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the store here and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="losszoo-bench-") as scratch:
        root = args.keep or Path(scratch) / "runs"
        if not (root / EXPERIMENT).is_dir():
            start = time.perf_counter()
            n = write_store(root, args.losses, args.datasets, args.seeds)
            print(f"wrote {n} runs ({args.losses} losses x {args.datasets} datasets x {args.seeds} seeds) "
                  f"in {time.perf_counter() - start:.1f} s to {root}")
        print(f"best of {args.repeat}; goal {GOAL_SECONDS:g} s wall; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} (CPU time is the steadier number on a busy machine)")

        from losszoo.comparison.table import compare_results
        from losszoo.training.store import iter_results

        timings = {
            "losszoo --help (start-up only)": cli_time(["--help"], root, args.repeat),
            "losszoo compare --format csv": cli_time(["compare", "--format", "csv"], root, args.repeat),
            "losszoo compare (table)": cli_time(["compare"], root, args.repeat),
        }
        read_wall, read_cpu, (results, _) = cpu_and_wall(lambda: iter_results(root), args.repeat)
        timings[f"iter_results ({len(results)} results)"] = read_wall, read_cpu
        compare_results(results[:50])  # the statistics' imports are paid once, as the CLI pays them
        compare_wall, compare_cpu, comparison = cpu_and_wall(lambda: compare_results(results), args.repeat)
        shape = f"{len(comparison.rows)} rows x {len(comparison.columns)} columns"
        timings[f"compare_results ({shape})"] = compare_wall, compare_cpu
        if comparison.across:  # a fresh copy each time: the intervals are kept once drawn
            across = comparison.across[0]
            name = f"IQM intervals ({len(across.methods)} losses x {len(across.datasets)} datasets)"
            timings[name] = cpu_and_wall(lambda: dataclasses.replace(across).iqm_ci, args.repeat)[:2]
        print(f"  {'':<44} {'wall':>9} {'CPU':>9}   wall / goal")
        for name, (wall, cpu) in timings.items():
            print(f"  {name:<44} {wall:7.3f} s {cpu:7.3f} s   {wall / GOAL_SECONDS:5.2f}")


if __name__ == "__main__":
    main()
