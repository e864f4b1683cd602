"""The tuner's own cost per trial, against the training a trial costs.

    python benchmarks/bench_tune.py [--losses 4] [--trials 20] [--repeats 3]

Runs ``losszoo.training.tune.run_studies`` on a digits recipe's studies with a
grid that trains nothing (it answers each trial at once with a made-up val
score), so the time measured is the tuner's alone: Optuna's TPE sampler asking
and being told, the trial configs built, the median rule's thresholds. Then one
real trial of the same recipe is trained, and the ratio printed: the tuner's
cost per trial over the training cost per trial (the goal: negligible, well
under 1%).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from losszoo.recipe.load import load_recipe
from losszoo.training.tune import run_studies


def recipe(losses: int, trials: int) -> dict:
    names = ["cross_entropy", "focal", "poly1", "gce", "sce", "taylor_ce", "bi_tempered", "confidence_penalty"]
    return {"experiment": "bench-tune", "dataset": "digits", "model": {"name": "mlp", "hidden": [128]},
            "losses": names[:losses], "seeds": [0, 1, 2], "train": {"epochs": 20, "batch_size": 64},
            "tune": {"trials": trials, "prune": "median"}}


def fake_grid(rng: random.Random):
    def grid(runs):
        return [{"status": "completed", "metrics": {"val": {"accuracy": rng.random()}},
                 "val_curves": {"accuracy": [rng.random() for _ in range(20)]}} for _ in runs]
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", type=int, default=4)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    studies = load_recipe(recipe(args.losses, args.trials)).studies
    times = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        run_studies(load_recipe(recipe(args.losses, args.trials)).studies, fake_grid(random.Random(repeat)))
        times.append(time.perf_counter() - start)
    trials = len(studies) * args.trials
    per_trial = statistics.median(times) / trials

    import losszoo

    with tempfile.TemporaryDirectory() as tmp:
        result = losszoo.train({k: v for k, v in recipe(1, 1).items() if k != "tune"} | {"seeds": [0]},
                               runs_dir=Path(tmp))[0]
    training = result["train_seconds"]
    print(f"{len(studies)} studies x {args.trials} trials, median of {args.repeats}: tuner {per_trial * 1000:.2f} ms "
          f"per trial (ask, tell, config, median rule)")
    print(f"one trial's training (digits mlp [128], 20 epochs): {training:.2f} s")
    print(f"ratio tuner / training per trial = {per_trial / training:.4f} (goal: negligible, < 0.01)")


if __name__ == "__main__":
    main()
