"""Metric-learning losses: values and gradients equal pytorch-metric-learning 2.9 with its defaults
(miners for hard/semihard triplets, proxies copied across), a slow formula for the lifted
structure loss, degenerate batches, gradcheck, extreme inputs and bf16."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning import miners

import losszoo

D = 6
SEEDS = [0, 1]

# (our name, our hyperparameters, PML loss factory, PML miner factory or None)
PAIR_CASES = [
    ("contrastive", {}, lambda: pml.ContrastiveLoss(), None),
    ("contrastive", {"pos_margin": 0.3, "neg_margin": 0.8}, lambda: pml.ContrastiveLoss(0.3, 0.8), None),
    ("contrastive", {"pos_margin": 0.0, "neg_margin": 1.6}, lambda: pml.ContrastiveLoss(0.0, 1.6), None),
    ("triplet", {}, lambda: pml.TripletMarginLoss(), None),
    ("triplet", {"margin": 0.4}, lambda: pml.TripletMarginLoss(margin=0.4), None),
    ("triplet", {"mining": "hard"}, lambda: pml.TripletMarginLoss(), lambda: miners.BatchHardMiner()),
    ("triplet", {"margin": 0.5, "mining": "hard"}, lambda: pml.TripletMarginLoss(margin=0.5),
     lambda: miners.BatchHardMiner()),
    ("triplet", {"margin": 0.2, "mining": "semihard"}, lambda: pml.TripletMarginLoss(margin=0.2),
     lambda: miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")),
    ("triplet", {"margin": 0.6, "mining": "semihard"}, lambda: pml.TripletMarginLoss(margin=0.6),
     lambda: miners.TripletMarginMiner(margin=0.6, type_of_triplets="semihard")),
    ("multi_similarity", {}, lambda: pml.MultiSimilarityLoss(), None),
    ("multi_similarity", {"alpha": 1.0, "beta": 10.0, "base": 0.2},
     lambda: pml.MultiSimilarityLoss(alpha=1.0, beta=10.0, base=0.2), None),
    ("circle", {}, lambda: pml.CircleLoss(), None),
    ("circle", {"margin": 0.25, "gamma": 16.0}, lambda: pml.CircleLoss(m=0.25, gamma=16.0), None),
    ("supcon", {}, lambda: pml.SupConLoss(), None),
    ("supcon", {"temperature": 0.5}, lambda: pml.SupConLoss(temperature=0.5), None),
    ("npairs", {}, lambda: pml.NPairsLoss(), None),
    ("lifted_structure", {}, lambda: pml.LiftedStructureLoss(), None),
    ("lifted_structure", {"pos_margin": 0.2, "neg_margin": 0.5},
     lambda: pml.LiftedStructureLoss(neg_margin=0.5, pos_margin=0.2), None),
]
PROXY_CASES = [
    ("proxy_anchor", {}, lambda c: pml.ProxyAnchorLoss(c, D)),
    ("proxy_anchor", {"margin": 0.3, "alpha": 8.0}, lambda c: pml.ProxyAnchorLoss(c, D, margin=0.3, alpha=8.0)),
    ("proxy_nca", {}, lambda c: pml.ProxyNCALoss(c, D)),
    ("proxy_nca", {"scale": 4.0}, lambda c: pml.ProxyNCALoss(c, D, softmax_scale=4.0)),
]
PAIR_LOSSES = ["contrastive", "triplet", "multi_similarity", "circle", "supcon", "npairs", "lifted_structure"]
PROXY_LOSSES = ["proxy_anchor", "proxy_nca"]
ALL_LOSSES = PAIR_LOSSES + PROXY_LOSSES


def make(name: str, num_classes: int, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return losszoo.create_loss(name, num_classes=num_classes, embedding_dim=D, **kw).double()


def batch(seed: int, n: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random embeddings and labels with repeats (and, for few samples per class, singletons)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g, dtype=torch.float64)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return x, y


def value_and_grad(loss, x: torch.Tensor, *args) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    value = loss(x, *args)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


# ---------------------------------------------------------------------------
# reference values: pytorch-metric-learning


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("n", "num_classes"), [(16, 4), (12, 7)])
@pytest.mark.parametrize(("name", "kw", "reference", "miner"), PAIR_CASES)
def test_pair_losses_equal_pml(name, kw, reference, miner, n, num_classes, seed):
    x, y = batch(seed, n, num_classes)
    ours, ours_grad = value_and_grad(make(name, num_classes, **kw), x, y)
    theirs_loss, theirs_miner = reference(), miner() if miner else None

    def theirs_fn(e, labels):
        return theirs_loss(e, labels, theirs_miner(e, labels)) if theirs_miner else theirs_loss(e, labels)

    theirs, theirs_grad = value_and_grad(theirs_fn, x, y)
    assert ours > 0  # a batch where the loss has something to measure
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(ours_grad, theirs_grad, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("name", "kw", "reference"), PROXY_CASES)
def test_proxy_losses_equal_pml_with_proxies_copied(name, kw, reference, seed):
    num_classes = 5
    x, y = batch(seed, 10, num_classes)
    ours = make(name, num_classes, **kw)
    theirs = reference(num_classes).double()
    assert theirs.proxies.shape == ours.weight.shape == (num_classes, D)
    with torch.no_grad():
        theirs.proxies.copy_(ours.weight)
    a = ours(x, y)
    b = theirs(x, y)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)
    a.backward()
    b.backward()
    torch.testing.assert_close(ours.weight.grad, theirs.proxies.grad, rtol=1e-6, atol=1e-8)


def slow_lifted_structure(x: torch.Tensor, y: torch.Tensor, pos_margin: float, neg_margin: float) -> float:
    """Oh Song et al. (2016), eq. 4, over unordered positive pairs, with python loops."""
    e = [[float(v) for v in row] for row in x]
    unit = [[a / math.sqrt(sum(b * b for b in row)) for a in row] for row in e]

    def dist(i, j):
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(unit[i], unit[j], strict=True)))

    labels = [int(v) for v in y]
    n = len(labels)
    total, pairs = 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] != labels[j]:
                continue
            negatives = [math.exp(neg_margin - dist(i, k)) for k in range(n) if labels[k] != labels[i]]
            negatives += [math.exp(neg_margin - dist(j, k)) for k in range(n) if labels[k] != labels[j]]
            j_ij = math.log(sum(negatives)) + dist(i, j) - pos_margin
            total += max(j_ij, 0.0) ** 2
            pairs += 1
    return total / (2 * pairs)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("pos_margin", "neg_margin"), [(0.0, 1.0), (0.3, 0.6)])
def test_lifted_structure_equals_the_paper_formula(seed, pos_margin, neg_margin):
    x, y = batch(seed, 9, 3)
    ours = make("lifted_structure", 3, pos_margin=pos_margin, neg_margin=neg_margin)(x, y)
    assert ours.item() == pytest.approx(slow_lifted_structure(x, y, pos_margin, neg_margin), rel=1e-9)


def test_semihard_triplets_are_between_positive_and_margin():
    """A slow count of the semi-hard triplets, independent of PML's miner."""
    x, y = batch(4, 10, 3)
    margin = 0.3
    unit = torch.nn.functional.normalize(x, dim=1)
    d = torch.cdist(unit, unit)
    costs = []
    for a in range(10):
        for p in range(10):
            for n in range(10):
                if a != p and y[a] == y[p] and y[a] != y[n] and d[a, p] < d[a, n] < d[a, p] + margin:
                    costs.append(float(d[a, p] - d[a, n] + margin))
    assert costs
    ours = make("triplet", 3, margin=margin, mining="semihard")(x, y)
    assert ours.item() == pytest.approx(sum(costs) / len(costs), rel=1e-9)


# ---------------------------------------------------------------------------
# degenerate batches: zero that stays in the graph, as PML


PML_DEFAULTS = {
    "contrastive": pml.ContrastiveLoss, "triplet": pml.TripletMarginLoss, "multi_similarity": pml.MultiSimilarityLoss,
    "circle": pml.CircleLoss, "supcon": pml.SupConLoss, "npairs": pml.NPairsLoss,
    "lifted_structure": pml.LiftedStructureLoss,
}


@pytest.mark.parametrize("name", PAIR_LOSSES)
@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [2, 2, 2, 2], [1]], ids=["no positive", "no negative", "single"])
def test_batches_without_pairs_equal_pml_and_stay_connected(name, labels):
    """Contrastive and multi-similarity still score the pairs of the other kind; the rest give 0."""
    y = torch.tensor(labels)
    x = torch.randn(len(labels), D, dtype=torch.float64, requires_grad=True)
    value = make(name, 4)(x, y)
    torch.testing.assert_close(value, PML_DEFAULTS[name]()(x, y).to(value.dtype), rtol=1e-6, atol=1e-8)
    if name not in ("contrastive", "multi_similarity") or len(labels) == 1:
        assert value.item() == 0.0
    assert value.requires_grad
    value.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_zero_norm_and_identical_embeddings_stay_finite(name):
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = make(name, 3)
    zero_rows = torch.randn(6, D, dtype=torch.float64)
    zero_rows[[0, 3]] = 0.0
    identical = torch.randn(1, D, dtype=torch.float64).expand(6, D).clone()
    for x in (zero_rows, identical, torch.zeros(6, D, dtype=torch.float64)):
        x.requires_grad_(True)
        value = loss(x, y)
        value.backward()
        assert torch.isfinite(value)
        assert torch.isfinite(x.grad).all()


def test_zero_norm_rows_match_pml():
    x, y = batch(5, 12, 3)
    x[[1, 7]] = 0.0
    for name, reference in [("contrastive", pml.ContrastiveLoss()), ("triplet", pml.TripletMarginLoss()),
                            ("supcon", pml.SupConLoss()), ("circle", pml.CircleLoss())]:
        torch.testing.assert_close(make(name, 3)(x, y), reference(x, y), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_bf16_autocast_runs_forward_and_backward(name):
    x, y = batch(0, 16, 4)
    x = x.float().requires_grad_(True)
    loss = make(name, 4).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(x, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    # computed in float32 inside: close to the float32 value without autocast
    torch.testing.assert_close(value.float(), loss(x.detach(), y).float(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize(("name", "kw"), [(n, k) for n, k, *_ in PAIR_CASES if n != "circle"])
def test_gradcheck_pair_losses(name, kw):
    x, y = batch(11, 8, 3)
    loss = make(name, 3, **kw)
    assert torch.autograd.gradcheck(lambda e: loss(e, y), (x.requires_grad_(True),), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize(("name", "kw"), [(n, k) for n, k, _ in PROXY_CASES])
def test_gradcheck_proxy_losses_in_embeddings_and_proxies(name, kw):
    x, y = batch(12, 8, 4)
    loss = make(name, 4, **kw)
    proxies = loss.weight.detach().clone().requires_grad_(True)

    def fn(e, p):
        return torch.func.functional_call(loss, {"weight": p}, (e, y))

    assert torch.autograd.gradcheck(fn, (x.requires_grad_(True), proxies), eps=1e-6, atol=1e-6)


def frozen_circle(x, y, x0, margin, gamma):
    """Circle loss with its self-paced weights computed from x0 and held fixed (the paper's gradient)."""
    s = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(x, dim=1).T
    s0 = torch.nn.functional.normalize(x0, dim=1) @ torch.nn.functional.normalize(x0, dim=1).T
    losses = []
    for i in range(len(y)):
        pos = [j for j in range(len(y)) if j != i and y[j] == y[i]]
        neg = [k for k in range(len(y)) if y[k] != y[i]]
        if not pos or not neg:
            continue
        lp = torch.stack([-gamma * max(1 + margin - float(s0[i, j]), 0) * (s[i, j] - 1 + margin) for j in pos])
        ln = torch.stack([gamma * max(float(s0[i, k]) + margin, 0) * (s[i, k] - margin) for k in neg])
        losses.append(torch.nn.functional.softplus(torch.logsumexp(lp, 0) + torch.logsumexp(ln, 0)))
    return torch.stack(losses).mean()


@pytest.mark.parametrize(("margin", "gamma"), [(0.4, 80.0), (0.25, 4.0)])
def test_circle_gradient_is_that_of_the_frozen_weight_loss(margin, gamma):
    x, y = batch(13, 6, 2)
    loss = make("circle", 2, margin=margin, gamma=gamma)
    ours_value, ours_grad = value_and_grad(loss, x, y)
    frozen_value, frozen_grad = value_and_grad(lambda e, labels: frozen_circle(e, labels, x, margin, gamma), x, y)
    torch.testing.assert_close(ours_value, frozen_value, rtol=1e-9, atol=0)
    torch.testing.assert_close(ours_grad, frozen_grad, rtol=1e-7, atol=1e-10)
    assert torch.autograd.gradcheck(lambda e: frozen_circle(e, y, x, margin, gamma), (x.clone().requires_grad_(),))


# ---------------------------------------------------------------------------
# module contract


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_labels_outside_the_classes_raise(name):
    loss = make(name, 3)
    x = torch.randn(4, D, dtype=torch.float64)
    for bad in ([0, 0, 1, 3], [0, 0, -1, 1]):
        with pytest.raises(ValueError, match="outside"):
            loss(x, torch.tensor(bad))


def test_metadata():
    for name in ALL_LOSSES:
        entry = losszoo.loss_spec(name)
        assert entry.family == "metric_learning"
        assert entry.input == "embeddings" and entry.target_kind == "labels"
        assert entry.needs_pairs == (name in PAIR_LOSSES)
    for name in PROXY_LOSSES:
        loss = make(name, 5)
        assert loss.weight.shape == (5, D) and loss.weight.requires_grad
        assert loss.class_logits(torch.randn(3, D, dtype=torch.float64)).shape == (3, 5)


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(losszoo.InvalidParameterError, match="mining"):
        losszoo.create_loss("triplet", num_classes=3, mining="hardest")
    with pytest.raises(losszoo.InvalidParameterError, match="temperature"):
        losszoo.create_loss("supcon", num_classes=3, temperature=0.0)
