"""Time the pair and spectrum measurements at their defaults: the budget they must fit.

Trains two seeds of the digits mlp of recipes/digits-margin.yaml (hidden [128],
AdamW 3e-3, cosine, batch 64; 20 epochs as there, or --epochs) in a temporary
runs folder, then times, as ``losszoo landscape`` runs them:

- ``--between A B --curve bezier --align``: the straight line, weight matching
  and the aligned line, the Bezier curve's training (as many epochs as the
  runs) and its measurement; the whole command, which must stay under 2 minutes;
- ``A --top-k 5`` at the default ``--budget 60``: the top-k Lanczos and the
  spectral density inside the whole measurement, which must stay under 60 s.

    python benchmarks/bench_landscape_curve.py [--epochs 20] [--model mlp|cnn]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from losszoo.api import train
from losszoo.landscape.command import Request, run

MODELS = {"mlp": {"name": "mlp", "hidden": [128], "embedding_dim": 32}, "cnn": {"name": "cnn", "channels": [32, 64]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", choices=MODELS, default="mlp")
    args = parser.parse_args()
    print(f"torch {torch.__version__}; the command's 1 thread; digits {args.model}, {args.epochs} epochs")
    with tempfile.TemporaryDirectory() as tmp:
        recipe = {"experiment": "bench-pair", "dataset": "digits", "model": MODELS[args.model],
                  "loss": "cross_entropy", "seeds": [0, 1],
                  "train": {"epochs": args.epochs, "batch_size": 64, "device": "cpu", "scheduler": "cosine",
                            "optimizer": {"name": "adamw", "lr": 3.0e-3, "weight_decay": 1.0e-4}}}
        start = time.perf_counter()
        a, b = (str(Path(tmp) / "bench-pair" / r["run_id"]) for r in train(recipe, runs_dir=tmp))
        print(f"training both runs: {time.perf_counter() - start:.1f}s")

        start = time.perf_counter()
        outcome = run(Request(runs=[], root=Path(tmp), between=[a, b], curve="bezier", align=True))
        wall = time.perf_counter() - start
        training = outcome.curve_training
        print(f"\n--between A B --curve bezier --align: {wall:.1f}s in all (limit 120s)")
        print(f"  curve training: {training['epochs']} epochs, {training['steps']} steps, {training['seconds']:.2f}s;"
              f" weight matching: {outcome.alignment['passes']} passes")
        for name, path in outcome.paths.items():
            print(f"  {name:8s} barrier (test error) {path['barrier']:.4f}, train error "
                  f"{path.get('train_barrier', float('nan')):.4f}, train loss {path['loss_barrier']:.4f}")

        start = time.perf_counter()
        outcome = run(Request(runs=[a], root=Path(tmp), top_k=5))
        wall = time.perf_counter() - start
        measured = outcome.measured[0]
        seconds = measured["seconds"]
        spectrum = measured["spectrum"]
        print(f"\nA --top-k 5 (budget 60): {wall:.1f}s in all (limit 60s); plan: {outcome.plan.describe()}")
        print(f"  top-k {seconds['top_k']:.2f}s ({spectrum['top_k']['products']} products), density "
              f"{seconds['density']:.2f}s; eigenvalues {seconds['eigenvalues']:.2f}s, trace {seconds['trace']:.2f}s, "
              f"2-D {seconds.get('plane', 0):.2f}s")
        print(f"  top 5: {', '.join(f'{v:.3g}' for v in spectrum['top_k']['values'])}; negative share "
              f"{spectrum['density']['negative_share']:.3g}; density mean {spectrum['density']['mean']:.3g} vs "
              f"trace / n {measured['summary']['trace'] / measured['parameters']:.3g}")


if __name__ == "__main__":
    main()
