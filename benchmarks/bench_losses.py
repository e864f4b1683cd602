"""Forward + backward time of every loss against the simplest formula for it and against its library.

    python benchmarks/bench_losses.py [--threads 1] [--repeats 21] [--min-time 0.02] [--budget 8] [--only NAME ...]

Goal: no loss slower than either yardstick by more than 10% (ratio <= 1.10),
and ratio <= 1.0 for most. The two yardsticks:

- formula: the simplest correct formula a user would write for the loss in
  plain torch (``FORMULAS``; e.g. focal ``-(1 - p_t)^g log p_t`` from one
  ``log_softmax``), for every loss of the cross_entropy and regression
  families. Ours must not cost more than writing it by hand, even where it
  keeps digits the formula rounds away (p_t close to 1) or checks its labels.
- library: where the catalogue ``reference`` names a library (torch.nn,
  pytorch-metric-learning, kornia), the library's loss built with the same
  hyperparameters (the catalogue defaults, mapped to the library's conventions
  as the reference-value tests do: PML margins in degrees, class centres copied
  across as ``weight.T``, proxies copied).

All sides get the same float32 CPU inputs and are timed on forward +
``autograd.grad`` with respect to the input and every learnable parameter:

- logits (N, C) = 512 x 100; embeddings with class centres 512 x 128, 100 classes;
- metric learning: 256 x 128 embeddings, 64 classes x 4 samples;
- values (512,) or mean-and-variance (512, 2); segmentation 8 x 4 x 64 x 64 logits.

After a warm-up, each sample times ``inner`` calls of every side back to back
(alternating the order), so they share machine-load drift; ``inner`` makes a
sample last ``--min-time``, and a loss whose reference takes seconds per call
(PML's lifted structure) gets fewer samples so that it stays within
``--budget``. For each yardstick the table shows its median per-call
wall-clock time, the median of the per-sample ratios ours / yardstick with its
quartiles, and the same ratio on process CPU time, which time spent waiting for
a busy machine's cores does not inflate. Values are compared once before
timing; a mismatch is flagged, since then the two are not computing the same
thing.

Registered losses with neither a formula nor a library reference here are
listed at the end, so a new loss is noticed.
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
# training-set class sizes for ldam and class_balanced: long-tailed, 500 down to 3
CLASS_COUNTS = [max(3, round(500 * 0.95**c)) for c in range(NUM_CLASSES)]

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


# ----------------------------------------------------------------------------- the simplest formulas
# What a user would write by hand in plain torch, correct on these inputs, at the catalogue defaults
# (a scale of 1 is left out, as a user would). hp: hyperparameters and context, plus the constants of
# FORMULA_CONSTANTS, which are computed once, outside the timing.


def _log_pt(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p_t: the first line of every cross-entropy variant written by hand."""
    return F.log_softmax(z, 1).gather(1, y[:, None]).squeeze(1)


def _p_t(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.softmax(z, 1).gather(1, y[:, None]).squeeze(1)


def _focal(z: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    lp = _log_pt(z, y)
    return (-(1 - lp.exp()) ** hp["gamma"] * lp).mean()


def _poly1(z: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    lp = _log_pt(z, y)
    return (hp["epsilon"] * (1 - lp.exp()) - lp).mean()


def _sce(z: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    lp = _log_pt(z, y)
    return (-hp["alpha"] * lp - hp["beta"] * hp["log_zero"] * (1 - lp.exp())).mean()


def _taylor_ce(z: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    x = 1 - _p_t(z, y)
    return sum(x**k / k for k in range(1, hp["order"] + 1)).mean()


def _bi_tempered(z: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    """Amid et al.'s reference code: the normaliser from 5 fixed-point steps (t2 > 1), differentiated through."""
    t1, t2 = hp["t1"], hp["t2"]

    def exp_t(u: torch.Tensor, t: float) -> torch.Tensor:
        return torch.relu(1 + (1 - t) * u) ** (1 / (1 - t))

    top = z.amax(1, keepdim=True)
    a0 = z - top
    a = a0
    for _ in range(5):
        a = a0 * exp_t(a, t2).sum(1, keepdim=True) ** (1 - t2)
    lam = (exp_t(a, t2).sum(1, keepdim=True) ** (t2 - 1) - 1) / (t2 - 1) + top  # -log_t2(1 / Z)
    p = exp_t(z - lam, t2)
    p_y = p.gather(1, y[:, None]).squeeze(1)
    return (-(p_y ** (1 - t1) - 1) / (1 - t1) - (1 - (p ** (2 - t1)).sum(1)) / (2 - t1)).mean()


def _confidence_penalty(z: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    ls = F.log_softmax(z, 1)
    return (-ls.gather(1, y[:, None]).squeeze(1) + hp["beta"] * (ls.exp() * ls).sum(1)).mean()


def _huber(x: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    r, d = (x - y).abs(), hp["delta"]
    return torch.where(r <= d, 0.5 * r**2, d * (r - 0.5 * d)).mean()


def _smooth_l1(x: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    r, b = (x - y).abs(), hp["beta"]
    return torch.where(r < b, 0.5 * r**2 / b, r - 0.5 * b).mean()


def _quantile(x: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    r = y - x
    return torch.maximum(hp["q"] * r, (hp["q"] - 1) * r).mean()


def _gaussian_nll(out: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    mean, var = out[:, 0], F.softplus(out[:, 1]) + hp["eps"]
    return (0.5 * (var.log() + (mean - y) ** 2 / var)).mean()


def _tukey(x: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    r, c = x - y, hp["c"]
    return torch.where(r.abs() <= c, c * c / 6 * (1 - (1 - (r / c) ** 2) ** 3), c * c / 6).mean()


def _barron(x: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> torch.Tensor:
    a = hp["alpha"]
    b = abs(a - 2)
    return (b / a * (((x - y) ** 2 / b + 1) ** (a / 2) - 1)).mean()


Formula = Callable[[torch.Tensor, torch.Tensor, dict[str, Any]], torch.Tensor]

FORMULAS: dict[str, Formula] = {
    # cross_entropy family
    "cross_entropy": lambda z, y, hp: -_log_pt(z, y).mean(),
    "focal": _focal,
    "poly1": _poly1,
    "gce": lambda z, y, hp: ((1 - _p_t(z, y) ** hp["q"]) / hp["q"]).mean(),
    "sce": _sce,
    "taylor_ce": _taylor_ce,
    "bi_tempered": _bi_tempered,
    "ldam": lambda z, y, hp: F.cross_entropy(hp["scale"] * (z - hp["margins"][y, None] * F.one_hot(y, z.shape[1])), y),
    "class_balanced": lambda z, y, hp: (hp["weights"][y] * F.cross_entropy(z, y, reduction="none")).mean(),
    "confidence_penalty": _confidence_penalty,
    # regression family
    "mse": lambda x, y, hp: ((x - y) ** 2).mean(),
    "mae": lambda x, y, hp: (x - y).abs().mean(),
    "huber": _huber,
    "smooth_l1": _smooth_l1,
    "log_cosh": lambda x, y, hp: (x - y + F.softplus(-2 * (x - y)) - math.log(2)).mean(),
    "quantile": _quantile,
    "msle": lambda x, y, hp: ((torch.log1p(x) - torch.log1p(y)) ** 2).mean(),
    "mape": lambda x, y, hp: ((x - y).abs() / y.abs().clamp_min(hp["eps"])).mean(),
    "poisson_nll": lambda x, y, hp: (x.exp() - y * x).mean(),
    "gaussian_nll": _gaussian_nll,
    "charbonnier": lambda x, y, hp: (torch.sqrt((x - y) ** 2 + 1) - 1).mean(),
    "cauchy": lambda x, y, hp: torch.log1p(0.5 * (x - y) ** 2).mean(),
    "welsch": lambda x, y, hp: (1 - torch.exp(-0.5 * (x - y) ** 2)).mean(),
    "geman_mcclure": lambda x, y, hp: (2 * (x - y) ** 2 / ((x - y) ** 2 + 4)).mean(),
    "tukey": _tukey,
    "barron": _barron,
}


def _ldam_margins(hp: dict[str, Any]) -> dict[str, Any]:
    counts = torch.tensor(hp["class_counts"], dtype=torch.float32)
    margins = counts**-0.25
    return {"margins": hp["max_margin"] * margins / margins.max()}


def _class_balanced_weights(hp: dict[str, Any]) -> dict[str, Any]:
    counts = torch.tensor(hp["class_counts"], dtype=torch.float64)
    w = (1 - hp["beta"]) / (1 - hp["beta"] ** counts)
    return {"weights": (w * len(w) / w.sum()).float()}


FORMULA_CONSTANTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ldam": _ldam_margins,
    "class_balanced": _class_balanced_weights,
}


def inputs(entry: Any, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Float32 input, target and the context our loss is built with, by the entry's input kind."""
    if entry.input == "logits":
        return (3 * torch.randn(BATCH, NUM_CLASSES, generator=g), torch.randint(0, NUM_CLASSES, (BATCH,), generator=g),
                {"num_classes": NUM_CLASSES, "class_counts": CLASS_COUNTS})
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
        return _values(_interval(entry, "input_range"), g), _values(_interval(entry, "target_range"), g), {}
    if entry.input == "mean_var":
        return 2 * torch.randn(BATCH, 2, generator=g), torch.randn(BATCH, generator=g), {}
    if entry.input == "pixel_logits":
        n, c, h, w = SEGMENTATION_SHAPE
        return 2 * torch.randn(n, c, h, w, generator=g), torch.randint(0, c, (n, h, w), generator=g), {"num_classes": c}
    raise ValueError(f"no benchmark input for {entry.input!r}")


def _interval(entry: Any, key: str) -> tuple[float, float] | None:
    """The open interval a loss's formula is defined on, from its catalogue entry (field or, formerly, extra)."""
    return getattr(entry, key, None) or getattr(entry, "extra", {}).get(key)


def _values(interval: tuple[float, float] | None, g: torch.Generator) -> torch.Tensor:
    """3 N(0, 1) values, or uniform ones inside the open interval a loss's formula is defined on (msle, mape)."""
    if interval is None:
        return 3 * torch.randn(BATCH, generator=g)
    lo, hi = interval
    return lo + (hi - lo) * torch.rand(BATCH, generator=g).clamp(1e-3, 1 - 1e-3)


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
class Versus:
    """Ours against one yardstick (the formula or the library)."""

    label: str
    ms: float  # the yardstick's median wall-clock per call
    ratio: float  # median of the per-sample wall-clock ratios ours / yardstick
    ratio_q1: float
    ratio_q3: float
    cpu_ratio: float  # the same on CPU time: insensitive to time spent descheduled by other load
    match: str


@dataclass
class Row:
    name: str
    ours_ms: float
    samples: int
    formula: Versus | None
    library: Versus | None

    def versus(self) -> list[Versus]:
        return [v for v in (self.formula, self.library) if v is not None]


def bench(name: str, repeats: int, warmup: int, min_time: float, budget: float) -> Row:
    ref = REFERENCES.get(name)
    loss_name = ref.loss if ref and ref.loss else name
    kw = ref.kw if ref else {}
    entry = losszoo.LOSSES.get(loss_name)
    g = torch.Generator().manual_seed(0)
    x, y, context = inputs(entry, g)
    hp = {p.name: p.default for p in entry.params} | context | kw
    torch.manual_seed(0)
    ours = losszoo.create_loss(loss_name, **{k: v for k, v in context.items() if k in entry.context}, **kw)
    sides: dict[str, LossFn] = {"ours": ours}
    labels = {}
    if name in FORMULAS:
        formula, constants = FORMULAS[name], FORMULA_CONSTANTS.get(name, lambda hp: {})(hp)
        sides["formula"] = lambda x, y: formula(x, y, hp | constants)
        labels["formula"] = "formula"
    if ref is not None:
        sides["library"] = ref.build(ours, hp)
        labels["library"] = ref.label
    x = x.requires_grad_(True)

    with torch.no_grad():
        values = {side: fn(x, y).float() for side, fn in sides.items()}
    match = {side: "ok" if torch.allclose(values["ours"], v, rtol=1e-4, atol=1e-5)
             else f"DIFF {values['ours'].item():.5g}/{v.item():.5g}" for side, v in values.items()}

    steps = {side: forward_backward(fn, x, y) for side, fn in sides.items()}
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
    round_trip = inner * sum(last.values())  # one sample of every side
    samples = min(repeats, max(3 if 3 * round_trip <= budget else 1, int(budget / round_trip)))

    order = list(steps)
    wall: dict[str, list[float]] = {side: [] for side in order}
    cpu: dict[str, list[float]] = {side: [] for side in order}
    for r in range(samples):
        for side in order if r % 2 == 0 else order[::-1]:
            w, c = per_call(steps[side], inner)
            wall[side].append(w)
            cpu[side].append(c)

    def versus(side: str) -> Versus | None:
        if side not in steps:
            return None
        ratios = sorted(o / t for o, t in zip(wall["ours"], wall[side], strict=True))
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if samples > 1 else (ratios[0],) * 3
        cpu_ratio = statistics.median(o / max(t, 1e-9) for o, t in zip(cpu["ours"], cpu[side], strict=True))
        return Versus(labels[side], 1e3 * statistics.median(wall[side]), statistics.median(ratios), q1, q3,
                      cpu_ratio, match[side])

    return Row(name, 1e3 * statistics.median(wall["ours"]), samples, versus("formula"), versus("library"))


def verdict(row: Row) -> str:
    if any(v.match != "ok" for v in row.versus()):
        return "VALUES DIFFER"
    worst = max(v.ratio for v in row.versus())
    if worst <= 1.0:
        return "faster"
    return "within 10%" if worst <= GOAL else "SLOWER"


LABEL_WIDTH = 38


def _versus_cells(v: Versus | None, label: bool) -> str:
    width = 9 + 7 + 18 + 6 + (LABEL_WIDTH + 1 if label else 0)
    if v is None:
        return f"{'-':>{width}s}"
    text = f"{v.label:{LABEL_WIDTH}s} " if label else ""
    iqr = f"[{v.ratio_q1:.3g}-{v.ratio_q3:.3g}]"
    return text + f"{v.ms:9.3f} {v.ratio:6.3g} {iqr:17s} {v.cpu_ratio:6.3g}"


def format_row(row: Row) -> str:
    return (f"{row.name:20s} {row.ours_ms:8.3f} | {_versus_cells(row.formula, False)} | "
            f"{_versus_cells(row.library, True)} | {row.samples:3d}  {verdict(row)}")


def _goal_line(rows: list[Row], which: str) -> str:
    pairs = [(r.name, getattr(r, which)) for r in rows if getattr(r, which) is not None]
    slower = [n for n, v in pairs if v.ratio > GOAL or v.match != "ok"]
    cpu_slower = [n for n, v in pairs if v.cpu_ratio > GOAL]
    return (f"vs {which}: {sum(v.ratio <= 1.0 for _, v in pairs)}/{len(pairs)} at <= 1.00, slower than {GOAL:.2f} "
            f"or differing: {', '.join(slower) or 'none'}; on CPU time slower than {GOAL:.2f}: "
            f"{', '.join(cpu_slower) or 'none'}")


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

    names = list(FORMULAS) + [n for n in REFERENCES if n not in FORMULAS]
    start = time.perf_counter()
    rows: list[Row] = []
    for name in names:
        ref = REFERENCES.get(name)
        if ((ref.loss if ref and ref.loss else name) not in losszoo.LOSSES
                or (args.only and name not in args.only)):
            continue
        gc.collect()
        gc.disable()
        try:
            rows.append(bench(name, args.repeats, args.warmup, args.min_time, args.budget))
        finally:
            gc.enable()
        print(format_row(rows[-1]), file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start

    print(f"\nfloat32 CPU, {torch.get_num_threads()} thread(s); ms: median wall-clock per forward+backward over n "
          f"interleaved samples of >= {1e3 * args.min_time:.0f} ms; ratio: median of per-sample ours/yardstick "
          f"[quartiles]; cpu: the same ratio on process CPU time")
    block = f"{'ratio':>6s} {'IQR':17s} {'cpu':>6s}"
    print(f"{'loss':20s} {'ours ms':>8s} | {'formula':>9s} {block} | {'library':{LABEL_WIDTH}s} {'ms':>9s} {block} | "
          f"{'n':>3s}  verdict")
    for row in rows:
        print(format_row(row))
    slower = [r.name for r in rows if verdict(r) in ("SLOWER", "VALUES DIFFER")]
    faster = sum(verdict(r) == "faster" for r in rows)
    met = not slower and faster > len(rows) / 2
    print(f"\ngoal (every ratio <= {GOAL:.2f}, most <= 1.00): {'MET' if met else 'NOT MET'} -- "
          f"{faster}/{len(rows)} at <= 1.00 against both; slower than {GOAL:.2f} or differing: "
          f"{', '.join(slower) or 'none'}")
    print(_goal_line(rows, "formula"))
    print(_goal_line(rows, "library"))

    covered = {(ref.loss or name) for name, ref in REFERENCES.items()} | set(FORMULAS)
    missing = sorted(e.name for e in losszoo.LOSSES.entries() if e.name not in covered)
    if missing:
        print(f"neither a formula nor a library reference here ({len(missing)}): {', '.join(missing)}")
    print(f"benchmark took {elapsed:.1f} s")


if __name__ == "__main__":
    main()
