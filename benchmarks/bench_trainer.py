"""Trainer overhead: losszoo's trainer against a minimal plain-PyTorch loop.

Both train the same digits MLP (256-256), 30 epochs, batch 64, AdamW with a
cosine schedule and a val-accuracy evaluation every epoch, on the same tensors
from the same initial weights, on the same number of torch threads, in this
one process; each is repeated and the median taken. Prints the seconds of each and the ratio (goal: <= 1.05).

    python benchmarks/bench_trainer.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from losszoo.data.splits import load_data
from losszoo.recipe.load import load_recipe
from losszoo.registry import DATASETS
from losszoo.training.trainer import train_run

EPOCHS, BATCH, HIDDEN, LR, WD = 30, 64, [256, 256], 1e-3, 1e-4

RECIPE = {
    "experiment": "bench-trainer",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": HIDDEN},
    "loss": "cross_entropy",
    "metrics": ["accuracy"],
    "train": {"epochs": EPOCHS, "batch_size": BATCH, "optimizer": {"name": "adamw", "lr": LR, "weight_decay": WD},
              "scheduler": "cosine", "device": "cpu"},
}


def plain_loop(seed: int) -> float:
    """What a careful user writes by hand: slice tensors, step, evaluate val accuracy."""
    data = load_data("digits", DATASETS.get("digits").resolve({}), seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    x, y = data.train.x, data.train.y
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(EPOCHS):
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), BATCH):
            index = order[i:i + BATCH]
            loss = nn.functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            (model(data.val.x).argmax(1) == data.val.y).float().mean().item()
        model.train()
    return time.perf_counter() - start


def losszoo_trainer(seed: int, folder: Path) -> float:
    run = load_recipe({**RECIPE, "seed": seed}).runs[0]
    return train_run(run.config, folder / run.run_id)["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, on both sides (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # the plain loop's; the trainer takes train.threads
    RECIPE["train"]["threads"] = args.threads
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        plain_loop(0), losszoo_trainer(0, Path(tmp))  # warm-up: imports, allocator, sklearn data cache
        for repeat in range(args.repeats):  # alternate so drifting machine load hits both alike
            plain.append(plain_loop(repeat))
            ours.append(losszoo_trainer(repeat, Path(tmp)))
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"digits mlp {HIDDEN}, {EPOCHS} epochs, batch {BATCH}, val every epoch, {torch.get_num_threads()} threads")
    print(f"plain PyTorch loop : {p:.3f} s (median of {args.repeats})")
    print(f"losszoo trainer    : {o:.3f} s (median of {args.repeats})")
    print(f"ratio losszoo / plain = {o / p:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
