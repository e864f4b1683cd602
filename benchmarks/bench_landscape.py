"""Time each landscape measurement per run, for the mlp and cnn examples.

Trains two small digits runs (the mlp of recipes/digits-margin.yaml, hidden
[128]; the default cnn, channels [32, 64]; cross-entropy, a few epochs) in a
temporary runs folder, then measures each with the default budget like
``losszoo landscape`` does, and prints the timed forward pass and
Hessian-vector product, the plan they give, and the seconds of every
measurement. Last, filter normalization of one direction: the vectorized
``ParamSpace.filter_normalize`` against a per-filter Python loop.

    python benchmarks/bench_landscape.py [--budget 60] [--probe 1024] [--epochs 3] [--threads 1]

Torch uses ``--threads`` CPU threads, one by default as ``losszoo landscape``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from losszoo.api import train
from losszoo.landscape.measure import measure_run, plan_for, time_surface
from losszoo.landscape.runs import load_run

MODELS = {
    "mlp": {"name": "mlp", "hidden": [128]},
    "cnn": {"name": "cnn", "channels": [32, 64]},
}
STEPS = ("eigenvalues", "trace", "radius", "sam", "profiles", "plane", "total")


def per_filter_loop(direction: torch.Tensor, weights: torch.Tensor, space) -> torch.Tensor:
    """The obvious way: one Python iteration per filter."""
    out = torch.zeros_like(direction)
    for d_part, w_part, o_part in zip(space.split(direction), space.split(weights), space.split(out), strict=True):
        if d_part.ndim < 2:
            continue
        for f in range(d_part.shape[0]):
            o_part[f] = d_part[f] * (w_part[f].norm() / d_part[f].norm())
    return out


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--probe", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; budget {args.budget:g}s per run, "
          f"probe {args.probe}")

    with tempfile.TemporaryDirectory() as tmp:
        for name, model in MODELS.items():
            recipe = {"experiment": f"bench-{name}", "dataset": "digits", "model": model, "loss": "cross_entropy",
                      "train": {"epochs": args.epochs, "batch_size": 64, "device": "cpu"}}
            result = train(recipe, runs_dir=tmp)[0]
            run = load_run(Path(tmp) / f"bench-{name}" / result["run_id"], args.probe, "cpu")
            surface = run.surface()
            timing = time_surface(surface)
            plan = plan_for(timing, args.budget)
            start = time.perf_counter()
            measured = measure_run(run, plan)
            wall = time.perf_counter() - start
            seconds = measured["seconds"]
            print(f"\n{name}: {surface.space.dim} parameters in {surface.space.n_filters} filters; forward "
                  f"{timing.forward * 1e3:.1f} ms, Hessian-vector product {timing.hvp * 1e3:.1f} ms "
                  f"({'batched' if timing.batched else 'one by one'})")
            print(f"  plan: {plan.describe()}")
            print("  " + "  ".join(f"{step} {seconds[step]:.2f}s" for step in STEPS if step in seconds)
                  + f"  (wall {wall:.2f}s)")
            e = measured["eigenvalues"]
            print(f"  power iteration: lambda_max {e['max']['iterations']} products, lambda_min "
                  f"{e['min']['iterations']}; radius {measured['radius']['evaluations']} evaluations")

            space = surface.space
            d = torch.randn(space.dim, generator=torch.Generator().manual_seed(0))
            w = space.get()
            fast = best_of(lambda s=space, d=d, w=w: s.filter_normalize(d, w))
            slow = best_of(lambda s=space, d=d, w=w: per_filter_loop(d, w, s))
            same = torch.allclose(space.filter_normalize(d, w), per_filter_loop(d, w, space), rtol=1e-5, atol=1e-7)
            print(f"  filter normalization: vectorized {fast * 1e3:.2f} ms, per-filter loop {slow * 1e3:.2f} ms "
                  f"({slow / fast:.0f}x), equal: {same}")


if __name__ == "__main__":
    main()
