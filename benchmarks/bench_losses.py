"""Forward + backward time of every loss with a library reference, against that reference.

    python benchmarks/bench_losses.py [--threads 1] [--repeats 21] [--min-time 0.02] [--budget 8] [--only NAME ...]

Goal: no loss slower than its reference by more than 10% (ratio <= 1.10), and
ratio <= 1.0 for most. For every registered loss whose catalogue ``reference``
names a library (torch.nn.functional, pytorch-metric-learning, kornia) the two
are built with the same hyperparameters (the catalogue defaults, mapped to the
library's conventions as the reference-value tests do: PML margins in degrees,
class centres copied across as ``weight.T``, proxies copied), fed the same
float32 CPU inputs, and timed on forward + ``autograd.grad`` with respect to
the input and every learnable parameter:

- logits (N, C) = 512 x 100; embeddings with class centres 512 x 128, 100 classes;
- metric learning: 256 x 128 embeddings, 64 classes x 4 samples;
- values (512,) or mean-and-variance (512, 2); segmentation 8 x 4 x 64 x 64 logits.

After a warm-up, each sample times ``inner`` calls of ours and of the reference
back to back (alternating which goes first), so the two share machine-load
drift; ``inner`` makes a sample last ``--min-time``, and a loss whose reference
takes seconds per call (PML's lifted structure) gets fewer samples so that it
stays within ``--budget``. The table shows the median per-call wall-clock time
of each side, the median of the per-sample ratios ours / reference with its
quartiles, and the same ratio on process CPU time, which time spent waiting for
a busy machine's cores does not inflate. Values are compared once before
timing; a mismatch is flagged, since then the two are not computing the same
thing.

Losses whose reference is "formula" are listed at the end; registered names
missing from ``REFERENCES`` too, so a new library-backed loss is noticed.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kornia.losses as KL
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning import miners

import losszoo

GOAL = 1.10
NUM_CLASSES, EMBEDDING_DIM, BATCH = 100, 128, 512
PAIR_BATCH, PAIR_CLASSES = 256, 64
SEGMENTATION_SHAPE = (8, 4, 64, 64)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Reference:
    """How to build the reference call for one of our losses.

    ``build(ours, hp)`` gets our module and its hyperparameters (catalogue
    defaults updated by ``kw``) and returns the reference as a module (whose
    parameters are differentiated too) or a plain function of (input, target).
    """

    label: str
    build: Callable[[torch.nn.Module, dict[str, Any]], LossFn]
    kw: dict[str, Any] = field(default_factory=dict)
    loss: str | None = None  # registry name when the row name is a variant ("triplet[hard]")


def pml_centres(cls: type, **kw: Any) -> Callable[[torch.nn.Module, dict[str, Any]], LossFn]:
    """A PML classification loss whose W (embedding_dim, classes [* k]) is our weight, transposed."""

    def build(ours: torch.nn.Module, hp: dict[str, Any]) -> LossFn:
        theirs = cls(num_classes=NUM_CLASSES, embedding_size=EMBEDDING_DIM, **{k: f(hp) for k, f in kw.items()})
        theirs.W.data = ours.weight.detach().reshape(-1, ours.weight.shape[-1]).T.clone()
        return theirs

    return build


def pml_proxies(cls: type, **kw: Any) -> Callable[[torch.nn.Module, dict[str, Any]], LossFn]:
    def build(ours: torch.nn.Module, hp: dict[str, Any]) -> LossFn:
        theirs = cls(PAIR_CLASSES, EMBEDDING_DIM, **{k: f(hp) for k, f in kw.items()})
        theirs.proxies.data = ours.weight.detach().clone()
        return theirs

    return build


def pml_pairs(make: Callable[[dict[str, Any]], torch.nn.Module],
              miner: Callable[[dict[str, Any]], torch.nn.Module] | None = None):
    def build(ours: torch.nn.Module, hp: dict[str, Any]) -> LossFn:
        theirs = make(hp)
        if miner is None:
            return theirs
        mine = miner(hp)
        return lambda x, y: theirs(x, y, mine(x, y))

    return build


def plain(fn: Callable[[torch.Tensor, torch.Tensor, dict[str, Any]], torch.Tensor]):
    return lambda ours, hp: (lambda x, y: fn(x, y, hp))


class LinearCrossEntropy(torch.nn.Module):
    """F.cross_entropy(F.linear(x, W, b)) with its own copy of our classifier."""

    def __init__(self, ours: torch.nn.Module):
        super().__init__()
        self.weight = torch.nn.Parameter(ours.weight.detach().clone())
        self.bias = torch.nn.Parameter(ours.bias.detach().clone())

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(F.linear(x, self.weight, self.bias), y)


def _gaussian_nll(out: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    # ours takes (mean, raw variance); torch takes the variance: softplus + eps is part of the reference call
    return F.gaussian_nll_loss(out[:, 0], y, F.softplus(out[:, 1]) + hp["eps"], full=hp["full"], eps=hp["eps"])


def _semihard_miner(hp: dict[str, Any]) -> torch.nn.Module:
    return miners.TripletMarginMiner(margin=hp["margin"], type_of_triplets="semihard")


# One line per loss; a name not registered (yet) is skipped.
REFERENCES: dict[str, Reference] = {
    # classification and hinge losses on logits
    # torch's own loss modules, so the nn.Module call costs the same on both sides
    "cross_entropy": Reference("nn.CrossEntropyLoss", lambda ours, hp: torch.nn.CrossEntropyLoss(
        label_smoothing=hp["label_smoothing"], ignore_index=hp["ignore_index"])),
    "multi_margin": Reference("nn.MultiMarginLoss", lambda ours, hp: torch.nn.MultiMarginLoss(
        p=hp["p"], margin=hp["margin"])),
    "softmax": Reference("F.cross_entropy(F.linear)", lambda ours, hp: LinearCrossEntropy(ours)),
    # margin losses with learnable class centres (PML: margins in degrees, W = weight.T)
    "normface": Reference("PML NormalizedSoftmaxLoss", pml_centres(
        pml.NormalizedSoftmaxLoss, temperature=lambda hp: 1.0 / hp["scale"])),
    "large_margin_softmax": Reference("PML LargeMarginSoftmaxLoss", pml_centres(
        pml.LargeMarginSoftmaxLoss, margin=lambda hp: hp["margin"], scale=lambda hp: hp["scale"])),
    "sphereface": Reference("PML SphereFaceLoss", pml_centres(
        pml.SphereFaceLoss, margin=lambda hp: hp["margin"], scale=lambda hp: hp["scale"])),
    "cosface": Reference("PML CosFaceLoss", pml_centres(
        pml.CosFaceLoss, margin=lambda hp: hp["margin"], scale=lambda hp: hp["scale"])),
    "arcface": Reference("PML ArcFaceLoss", pml_centres(
        pml.ArcFaceLoss, margin=lambda hp: math.degrees(hp["margin"]), scale=lambda hp: hp["scale"])),
    "subcenter_arcface": Reference("PML SubCenterArcFaceLoss", pml_centres(
        pml.SubCenterArcFaceLoss, margin=lambda hp: math.degrees(hp["margin"]), scale=lambda hp: hp["scale"],
        sub_centers=lambda hp: hp["k"])),
    # regression
    "mse": Reference("nn.MSELoss", lambda ours, hp: torch.nn.MSELoss()),
    "mae": Reference("nn.L1Loss", lambda ours, hp: torch.nn.L1Loss()),
    "huber": Reference("nn.HuberLoss", lambda ours, hp: torch.nn.HuberLoss(delta=hp["delta"])),
    "smooth_l1": Reference("nn.SmoothL1Loss", lambda ours, hp: torch.nn.SmoothL1Loss(beta=hp["beta"])),
    "poisson_nll": Reference("nn.PoissonNLLLoss", lambda ours, hp: torch.nn.PoissonNLLLoss(
        log_input=hp["log_input"], full=hp["full"], eps=hp["eps"])),
    "gaussian_nll": Reference("F.gaussian_nll_loss (+softplus)", plain(_gaussian_nll)),
    "charbonnier": Reference("kornia charbonnier_loss", plain(lambda x, y, hp: KL.charbonnier_loss(x, y, "mean"))),
    "cauchy": Reference("kornia cauchy_loss", plain(lambda x, y, hp: KL.cauchy_loss(x, y, "mean"))),
    "welsch": Reference("kornia welsch_loss", plain(lambda x, y, hp: KL.welsch_loss(x, y, "mean"))),
    "geman_mcclure": Reference("kornia geman_mcclure_loss", plain(
        lambda x, y, hp: KL.geman_mcclure_loss(x, y, "mean"))),
    # metric learning (PML default distance and reducer)
    "contrastive": Reference("PML ContrastiveLoss", pml_pairs(lambda hp: pml.ContrastiveLoss(
        pos_margin=hp["pos_margin"], neg_margin=hp["neg_margin"]))),
    "triplet": Reference("PML TripletMarginLoss", pml_pairs(lambda hp: pml.TripletMarginLoss(margin=hp["margin"]))),
    "triplet[hard]": Reference("PML TripletMarginLoss+BatchHardMiner", pml_pairs(
        lambda hp: pml.TripletMarginLoss(margin=hp["margin"]), lambda hp: miners.BatchHardMiner()),
        kw={"mining": "hard"}, loss="triplet"),
    "triplet[semihard]": Reference("PML TripletMarginLoss+semihard miner", pml_pairs(
        lambda hp: pml.TripletMarginLoss(margin=hp["margin"]), _semihard_miner),
        kw={"mining": "semihard"}, loss="triplet"),
    "multi_similarity": Reference("PML MultiSimilarityLoss", pml_pairs(lambda hp: pml.MultiSimilarityLoss(
        alpha=hp["alpha"], beta=hp["beta"], base=hp["base"]))),
    "circle": Reference("PML CircleLoss", pml_pairs(lambda hp: pml.CircleLoss(m=hp["margin"], gamma=hp["gamma"]))),
    "supcon": Reference("PML SupConLoss", pml_pairs(lambda hp: pml.SupConLoss(temperature=hp["temperature"]))),
    "npairs": Reference("PML NPairsLoss", pml_pairs(lambda hp: pml.NPairsLoss())),
    "lifted_structure": Reference("PML LiftedStructureLoss", pml_pairs(lambda hp: pml.LiftedStructureLoss(
        neg_margin=hp["neg_margin"], pos_margin=hp["pos_margin"]))),
    "proxy_anchor": Reference("PML ProxyAnchorLoss", pml_proxies(
        pml.ProxyAnchorLoss, margin=lambda hp: hp["margin"], alpha=lambda hp: hp["alpha"])),
    "proxy_nca": Reference("PML ProxyNCALoss", pml_proxies(pml.ProxyNCALoss, softmax_scale=lambda hp: hp["scale"])),
    # segmentation
    "dice": Reference("kornia dice_loss", plain(lambda x, y, hp: KL.dice_loss(
        x, y, average=hp["average"], eps=hp["eps"], ignore_index=hp["ignore_index"]))),
    "dice[macro]": Reference("kornia dice_loss(macro)", plain(lambda x, y, hp: KL.dice_loss(
        x, y, average="macro", eps=hp["eps"], ignore_index=hp["ignore_index"])), kw={"average": "macro"}, loss="dice"),
    "tversky": Reference("kornia tversky_loss", plain(lambda x, y, hp: KL.tversky_loss(
        x, y, hp["alpha"], hp["beta"], eps=hp["eps"], ignore_index=hp["ignore_index"]))),
    "lovasz_softmax": Reference("kornia lovasz_softmax_loss", plain(lambda x, y, hp: KL.lovasz_softmax_loss(x, y))),
}


def inputs(entry: Any, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """Float32 input, target and the context our loss is built with, by the entry's input kind."""
    if entry.input == "logits":
        return (3 * torch.randn(BATCH, NUM_CLASSES, generator=g), torch.randint(0, NUM_CLASSES, (BATCH,), generator=g),
                {"num_classes": NUM_CLASSES})
    if entry.input == "embeddings" and entry.family == "metric_learning":
        labels = torch.arange(PAIR_CLASSES).repeat_interleave(PAIR_BATCH // PAIR_CLASSES)
        labels = labels[torch.randperm(PAIR_BATCH, generator=g)]
        return (torch.randn(PAIR_BATCH, EMBEDDING_DIM, generator=g), labels,
                {"num_classes": PAIR_CLASSES, "embedding_dim": EMBEDDING_DIM})
    if entry.input == "embeddings":
        return (torch.randn(BATCH, EMBEDDING_DIM, generator=g), torch.randint(0, NUM_CLASSES, (BATCH,), generator=g),
                {"num_classes": NUM_CLASSES, "embedding_dim": EMBEDDING_DIM})
    if entry.input == "values":
        if entry.name == "poisson_nll":  # log-rates and counts
            x = torch.randn(BATCH, generator=g)
            return x, torch.poisson(torch.exp(torch.randn(BATCH, generator=g)), generator=g), {}
        return 3 * torch.randn(BATCH, generator=g), 3 * torch.randn(BATCH, generator=g), {}
    if entry.input == "mean_var":
        return 2 * torch.randn(BATCH, 2, generator=g), torch.randn(BATCH, generator=g), {}
    if entry.input == "pixel_logits":
        n, c, h, w = SEGMENTATION_SHAPE
        return 2 * torch.randn(n, c, h, w, generator=g), torch.randint(0, c, (n, h, w), generator=g), {"num_classes": c}
    raise ValueError(f"no benchmark input for {entry.input!r}")


def forward_backward(fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One training step's loss work: the value and its gradient w.r.t. x and every parameter of fn."""
    wrt = [x, *(fn.parameters() if isinstance(fn, torch.nn.Module) else ())]

    def step() -> None:
        torch.autograd.grad(fn(x, y), wrt)

    return step


def per_call(step: Callable[[], None], inner: int) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call, averaged over ``inner`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(inner):
        step()
    return (time.perf_counter() - wall) / inner, (time.process_time() - cpu) / inner


@dataclass
class Row:
    name: str
    label: str
    ours_ms: float
    ref_ms: float
    ratio: float  # median of the per-sample wall-clock ratios
    ratio_q1: float
    ratio_q3: float
    cpu_ratio: float  # the same on CPU time: insensitive to time spent descheduled by other load
    samples: int
    match: str


def bench(name: str, ref: Reference, repeats: int, warmup: int, min_time: float, budget: float) -> Row:
    loss_name = ref.loss or name
    entry = losszoo.LOSSES.get(loss_name)
    g = torch.Generator().manual_seed(0)
    x, y, context = inputs(entry, g)
    hp = {p.name: p.default for p in entry.params} | ref.kw
    torch.manual_seed(0)
    ours = losszoo.create_loss(loss_name, **{k: v for k, v in context.items() if k in entry.context}, **ref.kw)
    theirs = ref.build(ours, hp)
    x = x.requires_grad_(True)

    with torch.no_grad():
        a, b = ours(x, y), theirs(x, y)
    same = torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5)
    match = "ok" if same else f"DIFF {a.item():.5g}/{b.item():.5g}"

    steps = {"ours": forward_backward(ours, x, y), "ref": forward_backward(theirs, x, y)}
    last = {}
    for side, step in steps.items():  # warm-up; its last call sizes the samples
        spent = 0.0
        for _ in range(warmup):
            last[side] = per_call(step, 1)[0]
            spent += last[side]
            if spent > budget / 4:  # a reference that takes seconds per call (PML lifted structure)
                break
    slowest = max(last.values())
    inner = max(1, math.ceil(min_time / max(slowest, 1e-7)))
    pair = inner * sum(last.values())  # one sample of each side
    samples = min(repeats, max(3 if 3 * pair <= budget else 1, int(budget / pair)))

    wall: dict[str, list[float]] = {"ours": [], "ref": []}
    cpu: dict[str, list[float]] = {"ours": [], "ref": []}
    for r in range(samples):
        for side in ("ours", "ref") if r % 2 == 0 else ("ref", "ours"):
            w, c = per_call(steps[side], inner)
            wall[side].append(w)
            cpu[side].append(c)
    ratios = sorted(o / t for o, t in zip(wall["ours"], wall["ref"], strict=True))
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if samples > 1 else (ratios[0],) * 3
    cpu_ratio = statistics.median(o / max(t, 1e-9) for o, t in zip(cpu["ours"], cpu["ref"], strict=True))
    return Row(name, ref.label, 1e3 * statistics.median(wall["ours"]), 1e3 * statistics.median(wall["ref"]),
               statistics.median(ratios), q1, q3, cpu_ratio, samples, match)


def verdict(row: Row) -> str:
    if row.match != "ok":
        return "VALUES DIFFER"
    if row.ratio <= 1.0:
        return "faster"
    return "within 10%" if row.ratio <= GOAL else "SLOWER"


def format_row(row: Row) -> str:
    return (f"{row.name:20s} {row.label:38s} {row.ours_ms:9.3f} {row.ref_ms:9.3f} {row.ratio:6.3g} "
            f"{f'[{row.ratio_q1:.3g}-{row.ratio_q3:.3g}]':14s} {row.cpu_ratio:6.3g} {row.samples:3d}  {verdict(row)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--repeats", type=int, default=21, help="timed samples per side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per side first")
    parser.add_argument("--min-time", type=float, default=0.02, help="seconds one sample lasts at least")
    parser.add_argument("--budget", type=float, default=8.0,
                        help="seconds of timing per loss; fewer samples (>= 3) where a call is slow")
    parser.add_argument("--only", nargs="*", help="row names to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    rows: list[Row] = []
    for name, ref in REFERENCES.items():
        if (ref.loss or name) not in losszoo.LOSSES or (args.only and name not in args.only):
            continue
        gc.collect()
        gc.disable()
        try:
            rows.append(bench(name, ref, args.repeats, args.warmup, args.min_time, args.budget))
        finally:
            gc.enable()
        print(format_row(rows[-1]), file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start

    print(f"\nfloat32 CPU, {torch.get_num_threads()} thread(s); ms: median wall-clock per forward+backward over n "
          f"interleaved samples of >= {1e3 * args.min_time:.0f} ms; ratio: median of per-sample ours/reference "
          f"[quartiles]; cpu: the same ratio on process CPU time")
    print(f"{'loss':20s} {'reference':38s} {'ours ms':>9s} {'ref ms':>9s} {'ratio':>6s} {'IQR':14s} {'cpu':>6s} "
          f"{'n':>3s}  verdict")
    for row in rows:
        print(format_row(row))
    slower = [r.name for r in rows if verdict(r) in ("SLOWER", "VALUES DIFFER")]
    faster = sum(verdict(r) == "faster" for r in rows)
    met = not slower and faster > len(rows) / 2
    print(f"\ngoal (all ratios <= {GOAL:.2f}, most <= 1.00): {'MET' if met else 'NOT MET'} -- "
          f"{faster}/{len(rows)} at <= 1.00, slower than {GOAL:.2f} or differing: {', '.join(slower) or 'none'}")
    cpu_slower = [r.name for r in rows if r.cpu_ratio > GOAL]
    print(f"on CPU time: {sum(r.cpu_ratio <= 1.0 for r in rows)}/{len(rows)} at <= 1.00, "
          f"slower than {GOAL:.2f}: {', '.join(cpu_slower) or 'none'}")

    names = {e.name: e for e in losszoo.LOSSES.entries()}
    covered = {ref.loss or name for name, ref in REFERENCES.items()}
    formula = sorted(n for n, e in names.items() if e.reference.startswith("formula"))
    unmapped = sorted(n for n, e in names.items() if n not in covered and not e.reference.startswith("formula"))
    print(f"no library reference ({len(formula)}): {', '.join(formula)}")
    if unmapped:
        print(f"library reference but not in REFERENCES ({len(unmapped)}): {', '.join(unmapped)}")
    print(f"benchmark took {elapsed:.1f} s")


if __name__ == "__main__":
    main()
