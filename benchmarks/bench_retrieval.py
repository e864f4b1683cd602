"""Time the retrieval metrics on 10,000 x 128 embeddings against pytorch-metric-learning.

    python benchmarks/bench_retrieval.py [--n 10000] [--dim 128] [--classes 100] [--repeat 5]

Prints the best-of-``repeat`` wall time of each losszoo retrieval metric, of
``retrieval_scores`` (all three in one pass) and of PML's ``AccuracyCalculator``
(cosine ``CustomKNN``, same three metrics) on the same input, their ratio, and
checks that the values agree. Needs the dev extra (pytorch-metric-learning).
"""

from __future__ import annotations

import argparse
import time

import torch

from losszoo.metrics import retrieval


def best_time(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, args.classes, (args.n,), generator=g)
    centres = torch.randn(args.classes, args.dim, generator=g)
    embeddings = centres[labels] + 2.0 * torch.randn(args.n, args.dim, generator=g)
    print(f"{args.n} x {args.dim} float32 embeddings, {args.classes} classes, {torch.get_num_threads()} threads, "
          f"best of {args.repeat}")

    ours = {}
    for name in ("precision_at_1", "r_precision", "map_at_r", "verification_accuracy", "tar_at_far"):
        seconds, value = best_time(lambda name=name: getattr(retrieval, name)(embeddings, labels), args.repeat)
        ours[name] = value
        print(f"  losszoo {name:<24} {seconds:7.3f} s   value {value:.6f}")
    together, scores = best_time(lambda: retrieval.retrieval_scores(embeddings, labels), args.repeat)
    print(f"  losszoo {'retrieval_scores (all 3)':<24} {together:7.3f} s")

    calculator = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        k="max_bin_count",
        knn_func=CustomKNN(CosineSimilarity()),
        device=torch.device("cpu"),
    )
    pml_seconds, pml = best_time(lambda: calculator.get_accuracy(embeddings, labels), args.repeat)
    print(f"  PML AccuracyCalculator (same 3)  {pml_seconds:7.3f} s")
    print(f"ratio PML / losszoo (all 3 in one pass): {pml_seconds / together:.2f}x")

    pairs = {
        "precision_at_1": "precision_at_1", "r_precision": "r_precision", "map_at_r": "mean_average_precision_at_r"
    }
    worst = max(abs(scores[ours_name] - pml[pml_name]) for ours_name, pml_name in pairs.items())
    print(f"largest difference from PML: {worst:.2e}")


if __name__ == "__main__":
    main()
