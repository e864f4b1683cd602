"""Margin losses: reference values (pytorch-metric-learning or slow formulas), identities,
gradients, running-statistic buffers and extreme inputs. The shared checks run over every
margin loss in the registry, by input kind."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning import losses as pml
from torch.func import functional_call

import losszoo
from losszoo.errors import InvalidParameterError
from losszoo.losses.margin import cosine_logits

C, D, N = 5, 8, 7
MARGIN_LOSSES = losszoo.list_losses(family="margin")
EMBEDDING_LOSSES = [name for name in MARGIN_LOSSES if losszoo.loss_spec(name).input == "embeddings"]
LOGIT_LOSSES = [name for name in MARGIN_LOSSES if losszoo.loss_spec(name).input == "logits"]
SEEDS = [0, 1]


def test_every_margin_loss_is_in_one_of_the_lists():
    assert sorted(EMBEDDING_LOSSES + LOGIT_LOSSES) == sorted(MARGIN_LOSSES)
    assert {"softmax", "center_loss", "arcface"} <= set(EMBEDDING_LOSSES)
    assert {"multi_margin", "squared_hinge"} <= set(LOGIT_LOSSES)


def make(name: str, num_classes: int = C, embedding_dim: int = D, **kw) -> torch.nn.Module:
    torch.manual_seed(0)  # the centres' initialisation, so every test sees the same ones
    return losszoo.create_loss(name, num_classes=num_classes, embedding_dim=embedding_dim, **kw).double()


def batch(seed: int, n: int = N, num_classes: int = C, dim: int = D, norm_scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64) * norm_scale
    y = torch.randint(0, num_classes, (n,), generator=g)
    return x, y


def with_pml_weight(ours: torch.nn.Module, theirs: torch.nn.Module) -> torch.nn.Module:
    """PML keeps W as (embedding_dim, num_classes [* k]); ours is (num_classes, [k,] embedding_dim)."""
    theirs.W.data = ours.weight.detach().reshape(-1, ours.weight.shape[-1]).T.clone()
    return theirs


# ---------------------------------------------------------------------------
# slow, obvious formulas on python floats


def rows(t: torch.Tensor) -> list[list[float]]:
    return [[float(v) for v in row] for row in t]


def norm(u):
    return math.sqrt(sum(a * a for a in u))


def cos_sim(u, v):
    nu, nv = norm(u), norm(v)
    return sum(a * b for a, b in zip(u, v, strict=True)) / (nu * nv) if nu > 0 else 0.0


def cosines(x: torch.Tensor, w: torch.Tensor) -> list[list[float]]:
    return [[cos_sim(u, v) for v in rows(w)] for u in rows(x)]


def cross_entropy(logits: list[float], label: int) -> float:
    top = max(logits)
    return -(logits[label] - top) + math.log(sum(math.exp(z - top) for z in logits))


def mean(values):
    return sum(values) / len(values)


def slow_margin_ce(cos: list[list[float]], labels, target_fn, scale: float) -> float:
    """mean_i CE(s * logits_i) with the target logit replaced by target_fn(cos_iy, i)."""
    total = []
    for i, y in enumerate(labels):
        logits = [scale * c for c in cos[i]]
        logits[y] = scale * target_fn(cos[i][y], i)
        total.append(cross_entropy(logits, y))
    return mean(total)


def slow_arcface_target(c: float, m: float, easy: bool = False) -> float:
    theta = math.acos(max(-1.0, min(1.0, c)))
    if easy:
        return math.cos(theta + m) if c > 0 else c
    return math.cos(theta + m) if theta + m <= math.pi else c - m * math.sin(m)


def close(actual, expected, rtol=1e-6, atol=1e-8):
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), rtol=rtol, atol=atol)


def reduced(per_sample: list[float], reduction: str):
    return {"mean": mean(per_sample), "sum": sum(per_sample), "none": per_sample}[reduction]


# ---------------------------------------------------------------------------
# pytorch-metric-learning references


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", [1.0, 16.0, 64.0])
def test_normface_equals_pml_normalized_softmax(seed, scale):
    x, y = batch(seed)
    ours = make("normface", scale=scale)
    theirs = with_pml_weight(ours, pml.NormalizedSoftmaxLoss(C, D, temperature=1.0 / scale))
    close(ours(x, y), theirs(x, y))
    close(ours.class_logits(x), theirs.get_logits(x))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin,scale", [(1, 1.0), (2, 0.5), (3, 3.0), (4, 1.0), (5, 2.0)])
@pytest.mark.parametrize("name,reference", [
    ("large_margin_softmax", pml.LargeMarginSoftmaxLoss),
    ("sphereface", pml.SphereFaceLoss),
])
def test_multiplicative_margin_equals_pml(name, reference, seed, margin, scale):
    # embedding norms far from 1 so the norm factors in the logits matter
    x, y = batch(seed, norm_scale=0.7)
    ours = make(name, margin=margin, scale=scale)
    with torch.no_grad():
        ours.weight.mul_(torch.linspace(0.5, 2.0, C, dtype=torch.float64)[:, None])
    theirs = with_pml_weight(ours, reference(num_classes=C, embedding_size=D, margin=margin, scale=scale))
    close(ours(x, y), theirs(x, y))
    close(ours.class_logits(x), theirs.get_logits(x))


def inside_arcface_region(x, y, weight, margin):
    """Flip embeddings whose target angle is past pi - m, so theta + m <= pi everywhere (PML has no fallback)."""
    cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(weight, dim=1).T
    theta = torch.acos(cos.gather(1, y[:, None]).squeeze(1))
    x = torch.where((theta + margin > math.pi)[:, None], -x, x)
    cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(weight, dim=1).T
    assert (torch.acos(cos.gather(1, y[:, None])) + margin < math.pi).all()
    return x


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin,scale", [(0.1, 64.0), (0.35, 30.0), (0.8, 10.0)])
def test_cosface_equals_pml(seed, margin, scale):
    x, y = batch(seed)
    ours = make("cosface", margin=margin, scale=scale)
    theirs = with_pml_weight(ours, pml.CosFaceLoss(num_classes=C, embedding_size=D, margin=margin, scale=scale))
    close(ours(x, y), theirs(x, y))
    close(ours.class_logits(x), theirs.get_logits(x))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin,scale", [(0.1, 64.0), (0.5, 30.0), (1.2, 8.0)])
def test_arcface_equals_pml_where_theta_plus_m_within_pi(seed, margin, scale):
    x, y = batch(seed, n=12)
    ours = make("arcface", margin=margin, scale=scale)
    x = inside_arcface_region(x, y, ours.weight.detach(), margin)
    theirs = with_pml_weight(
        ours, pml.ArcFaceLoss(num_classes=C, embedding_size=D, margin=math.degrees(margin), scale=scale)
    )
    close(ours(x, y), theirs(x, y))
    close(ours.class_logits(x), theirs.get_logits(x))


def pointing_away(ours, y, seed, noise=0.05):
    """Embeddings nearly opposite their class centre: theta_y close to pi."""
    g = torch.Generator().manual_seed(seed)
    return -ours.weight.detach()[y] + noise * torch.randn(len(y), D, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin", [0.3, 0.5, 1.0])
@pytest.mark.parametrize("easy_margin", [False, True])
def test_arcface_fallback_region_against_slow_formula(seed, margin, easy_margin):
    ours = make("arcface", margin=margin, scale=8.0, easy_margin=easy_margin)
    x, y = batch(seed)
    x = torch.cat([pointing_away(ours, y, seed), x])  # fallback region and ordinary samples
    y = torch.cat([y, y])
    cos = cosines(x, ours.weight.detach())
    assert sum(math.acos(cos[i][y[i]]) + margin > math.pi for i in range(N)) >= N - 1
    expected = slow_margin_ce(cos, y.tolist(), lambda c, _: slow_arcface_target(c, margin, easy_margin), 8.0)
    close(ours(x, y), expected)
    if not easy_margin:  # pytorch-metric-learning 2.x has the same fallback
        theirs = pml.ArcFaceLoss(num_classes=C, embedding_size=D, margin=math.degrees(margin), scale=8.0)
        close(ours(x, y), with_pml_weight(ours, theirs)(x, y))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k,margin,scale", [(1, 0.5, 64.0), (3, 0.2, 30.0), (4, 0.8, 10.0)])
def test_subcenter_arcface_equals_pml(seed, k, margin, scale):
    x, y = batch(seed)
    ours = make("subcenter_arcface", k=k, margin=margin, scale=scale)
    assert ours.weight.shape == (C, k, D)
    if k == 1:
        x = inside_arcface_region(x, y, ours.weight.detach()[:, 0], margin)
    unit = torch.nn.functional.normalize
    best = torch.einsum("nd,ckd->nck", unit(x, dim=1), unit(ours.weight.detach(), dim=2)).amax(dim=2)
    assert (torch.acos(best.gather(1, y[:, None])) + margin < math.pi).all()
    theirs = with_pml_weight(ours, pml.SubCenterArcFaceLoss(
        num_classes=C, embedding_size=D, margin=math.degrees(margin), scale=scale, sub_centers=k,
    ))
    close(ours(x, y), theirs(x, y))
    close(ours.class_logits(x), theirs.get_logits(x))


# ---------------------------------------------------------------------------
# combined margin: identities, slow formula, monotonic target


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin", [0.2, 0.5, 1.0])
def test_combined_margin_is_arcface(seed, margin):
    combined = make("combined_margin", m1=1.0, m2=margin, m3=0.0, scale=16.0)
    arcface = make("arcface", margin=margin, scale=16.0)
    arcface.load_state_dict(combined.state_dict())
    x, y = batch(seed)
    x = torch.cat([pointing_away(arcface, y, seed), x])  # the fallback region too
    y = torch.cat([y, y])
    close(combined(x, y), arcface(x, y), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin", [0.1, 0.35, 0.9])
def test_combined_margin_is_cosface(seed, margin):
    combined = make("combined_margin", m1=1.0, m2=0.0, m3=margin, scale=16.0)
    cosface = make("cosface", margin=margin, scale=16.0)
    cosface.load_state_dict(combined.state_dict())
    x, y = batch(seed)
    x = torch.cat([pointing_away(cosface, y, seed), x])
    y = torch.cat([y, y])
    close(combined(x, y), cosface(x, y), rtol=1e-12, atol=1e-12)


def slow_combined_target(c, m1, m2, m3):
    theta = math.acos(c)
    theta_star = (math.pi - m2) / m1
    if m1 * theta + m2 <= math.pi:
        return math.cos(m1 * theta + m2) - m3
    penalty = (math.pi - theta_star) * math.sin(theta_star)
    return c - penalty - m3 - max(0.0, math.cos(theta_star) - penalty + 1.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("m1,m2,m3", [(0.9, 0.4, 0.15), (1.0, 0.3, 0.2), (1.35, 0.25, 0.1), (2.0, 0.0, 0.0),
                                      (4.0, 0.1, 0.3)])
def test_combined_margin_against_slow_formula(seed, m1, m2, m3):
    ours = make("combined_margin", m1=m1, m2=m2, m3=m3, scale=8.0)
    x, y = batch(seed)
    x = torch.cat([pointing_away(ours, y, seed, noise=0.5), x])
    y = torch.cat([y, y])
    cos = cosines(x, ours.weight.detach())
    expected = slow_margin_ce(cos, y.tolist(), lambda c, _: slow_combined_target(c, m1, m2, m3), 8.0)
    close(ours(x, y), expected)


@pytest.mark.parametrize("m1,m2,m3", [(1.0, 0.5, 0.0), (1.0, 1.5, 0.2), (0.7, 1.2, 0.0), (2.0, 0.3, 0.1),
                                      (4.0, 0.0, 0.0), (6.0, 1.0, 0.5)])
def test_combined_margin_target_never_rises_with_the_angle(m1, m2, m3):
    from losszoo.losses.margin import combined_margin_target

    cos = torch.cos(torch.linspace(0, math.pi, 20001, dtype=torch.float64))
    target = combined_margin_target(cos, m1, m2, m3)
    assert (target.diff() <= 1e-12).all()
    assert (target <= cos - m3 + 1e-12).all()  # a margin never helps the target


@pytest.mark.parametrize("m", [1, 2, 3, 4, 6])
def test_lsoftmax_psi_is_cos_m_theta_in_the_first_interval_and_decreasing(m):
    from losszoo.losses.margin import angular_margin_psi

    theta = torch.linspace(0, math.pi, 5001, dtype=torch.float64)
    psi = angular_margin_psi(torch.cos(theta), m)
    first = theta <= math.pi / m
    torch.testing.assert_close(psi[first], torch.cos(m * theta[first]))
    assert (psi.diff() <= 1e-9).all()


# ---------------------------------------------------------------------------
# stateful losses: slow formulas including the buffer update rule


def test_adacos_scale_update_and_value_against_slow_formula():
    loss = make("adacos")
    assert "scale" in dict(loss.named_buffers()) and "scale" in loss.state_dict()
    s0 = math.sqrt(2) * math.log(C - 1)
    close(loss.scale, s0)
    s = s0
    for seed in (0, 1):  # two steps: the second starts from the first one's scale
        x, y = batch(seed, n=N + seed)  # odd then even batch size (lower median)
        cos = cosines(x, loss.weight.detach())
        labels = y.tolist()
        b_avg = mean([sum(math.exp(s * cos[i][j]) for j in range(C) if j != yi) for i, yi in enumerate(labels)])
        theta_med = sorted(math.acos(cos[i][yi]) for i, yi in enumerate(labels))[(len(labels) - 1) // 2]
        s = math.log(b_avg) / math.cos(min(math.pi / 4, theta_med))
        expected = slow_margin_ce(cos, labels, lambda c, _: c, s)
        close(loss(x, y), expected)
        close(loss.scale, s)


def test_adacos_keeps_its_scale_in_eval_and_when_fixed():
    x, y = batch(0)
    for loss in (make("adacos").eval(), make("adacos", dynamic=False)):
        before = loss.scale.clone()
        value = loss(x, y)
        torch.testing.assert_close(loss.scale, before)
        close(value, slow_margin_ce(cosines(x, loss.weight.detach()), y.tolist(), lambda c, _: c, float(before)))


def test_adacos_needs_three_classes():
    with pytest.raises(InvalidParameterError, match="num_classes"):
        losszoo.create_loss("adacos", num_classes=2, embedding_dim=D)


def slow_curricular(cos, labels, t, margin, scale):
    total = []
    for i, y in enumerate(labels):
        cy = cos[i][y]
        theta = math.acos(cy)
        cos_tm = math.cos(theta + margin)
        logits = []
        for j, c in enumerate(cos[i]):
            if j == y:
                logits.append(slow_arcface_target(cy, margin))
            else:
                logits.append(c * (t + c) if c > cos_tm else c)
        total.append(cross_entropy([scale * z for z in logits], y))
    return mean(total)


@pytest.mark.parametrize("margin,scale,momentum", [(0.5, 64.0, 0.01), (0.3, 10.0, 0.5), (1.0, 4.0, 1.0)])
def test_curricularface_against_slow_formula(margin, scale, momentum):
    loss = make("curricularface", margin=margin, scale=scale, momentum=momentum)
    assert "t" in loss.state_dict()
    t = 0.0
    for seed in (0, 1, 2):  # t starts at 0 and moves: hard negatives see t != 0 from the first step
        x, y = batch(seed)
        cos = cosines(x, loss.weight.detach())
        t = momentum * mean([cos[i][yi] for i, yi in enumerate(y.tolist())]) + (1 - momentum) * t
        close(loss(x, y), slow_curricular(cos, y.tolist(), t, margin, scale))
        close(loss.t, t)
    loss.eval()
    x, y = batch(3)
    close(loss(x, y), slow_curricular(cosines(x, loss.weight.detach()), y.tolist(), t, margin, scale))
    close(loss.t, t)


@pytest.mark.parametrize("seed", SEEDS)
def test_curricularface_hard_negatives_past_pi_compare_with_the_unclipped_margin(seed):
    # targets pointing away from their centre (theta_y + m > pi) next to a near-duplicate centre: the
    # hard-negative test uses cos(theta_y + m) itself, not ArcFace's fallback, as the reference code does
    loss = make("curricularface", margin=0.5, scale=8.0).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        loss.weight[1] = loss.weight[0] + 0.03 * torch.randn(D, generator=g, dtype=torch.float64)
        loss.t.fill_(0.3)
    y = torch.zeros(N, dtype=torch.long)
    x = pointing_away(loss, y, seed, noise=0.02)
    cos = cosines(x, loss.weight.detach())
    assert all(math.acos(row[0]) + 0.5 > math.pi and -1.2 < row[1] < math.cos(math.acos(row[0]) + 0.5) for row in cos)
    close(loss(x, y), slow_curricular(cos, y.tolist(), 0.3, 0.5, 8.0))


def slow_adaface(x, w, labels, mu, sigma, margin, h, scale, eps=1e-3):
    cos = cosines(x, w)
    total = []
    for i, y in enumerate(labels):
        a = min(max(norm(rows(x)[i]), 0.001), 100.0)
        z = min(max(h * (a - mu) / (sigma + eps), -1.0), 1.0)
        c = [min(max(v, -1 + eps), 1 - eps) for v in cos[i]]
        angle = min(max(math.acos(c[y]) - margin * z, eps), math.pi - eps)
        c[y] = math.cos(angle) - (margin + margin * z)
        total.append(cross_entropy([scale * v for v in c], y))
    return mean(total)


def std(values):
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


@pytest.mark.parametrize("margin,h,scale,momentum", [(0.4, 0.333, 64.0, 0.01), (0.6, 1.0, 16.0, 0.5),
                                                     (0.2, 3.0, 8.0, 1.0)])
def test_adaface_against_slow_formula(margin, h, scale, momentum):
    loss = make("adaface", margin=margin, h=h, scale=scale, momentum=momentum)
    assert {"batch_mean", "batch_std"} <= set(loss.state_dict())
    mu, sigma = 20.0, 100.0
    for seed in (0, 1):
        x, y = batch(seed)
        x = x * torch.logspace(-4, 2.5, N, dtype=torch.float64)[:, None]  # norms from ~0 to past the 100 clip
        a = [min(max(norm(r), 0.001), 100.0) for r in rows(x)]
        mu = momentum * mean(a) + (1 - momentum) * mu
        sigma = momentum * std(a) + (1 - momentum) * sigma
        close(loss(x, y), slow_adaface(x, loss.weight.detach(), y.tolist(), mu, sigma, margin, h, scale))
        close(loss.batch_mean, mu)
        close(loss.batch_std, sigma)
    # eval: statistics frozen; preset ones that push z into its clip at both ends
    loss.eval()
    loss.load_state_dict({**loss.state_dict(), "batch_mean": torch.tensor(3.0), "batch_std": torch.tensor(0.5)})
    x, y = batch(5)
    x = x * torch.linspace(0.1, 3.0, N, dtype=torch.float64)[:, None]
    close(loss(x, y), slow_adaface(x, loss.weight.detach(), y.tolist(), 3.0, 0.5, margin, h, scale))
    close(loss.batch_mean, 3.0)


def test_adaface_keeps_std_for_a_batch_of_one():
    loss = make("adaface")
    x, y = batch(0, n=1)
    assert torch.isfinite(loss(x, y))
    close(loss.batch_std, 100.0)


@pytest.mark.parametrize("l_a,u_a,l_m,u_m,lambda_g,scale", [
    (10.0, 110.0, 0.45, 0.8, 35.0, 64.0), (1.0, 5.0, 0.2, 1.0, 2.0, 8.0), (0.5, 2.0, 0.3, 0.3, 0.0, 16.0),
])
@pytest.mark.parametrize("seed", SEEDS)
def test_magface_against_slow_formula(seed, l_a, u_a, l_m, u_m, lambda_g, scale):
    loss = make("magface", l_a=l_a, u_a=u_a, l_m=l_m, u_m=u_m, lambda_g=lambda_g, scale=scale)
    x, y = batch(seed)
    x = x * torch.linspace(0.1, 1.5 * u_a / math.sqrt(D), N, dtype=torch.float64)[:, None]  # below, in, above
    cos = cosines(x, loss.weight.detach())
    a = [min(max(norm(r), l_a), u_a) for r in rows(x)]
    margins = [l_m + (u_m - l_m) * (ai - l_a) / (u_a - l_a) for ai in a]
    classification = slow_margin_ce(cos, y.tolist(), lambda c, i: slow_arcface_target(c, margins[i]), scale)
    regulariser = mean([ai / u_a**2 + 1 / ai for ai in a])
    close(loss(x, y), classification + lambda_g * regulariser)


def test_magface_rejects_inverted_bounds():
    with pytest.raises(InvalidParameterError, match="u_a"):
        losszoo.create_loss("magface", num_classes=C, embedding_dim=D, l_a=20.0, u_a=10.0)
    with pytest.raises(InvalidParameterError, match="u_m"):
        losszoo.create_loss("magface", num_classes=C, embedding_dim=D, l_m=0.8, u_m=0.4)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name,lambda_c", [("center_loss", 0.0), ("center_loss", 0.003), ("center_loss", 0.5),
                                           ("softmax", None)])
def test_linear_classifier_losses_against_slow_formula(seed, name, lambda_c):
    loss = make(name) if lambda_c is None else make(name, lambda_c=lambda_c)
    with torch.no_grad():
        loss.bias.normal_()
    x, y = batch(seed)
    w, b = rows(loss.weight.detach()), [float(v) for v in loss.bias.detach()]
    logits = [[sum(p * q for p, q in zip(xi, wj, strict=True)) + bj for wj, bj in zip(w, b, strict=True)]
              for xi in rows(x)]
    total = [cross_entropy(z, yi) for z, yi in zip(logits, y.tolist(), strict=True)]
    if lambda_c is not None:
        c = rows(loss.centers.detach())
        for i, (xi, yi) in enumerate(zip(rows(x), y.tolist(), strict=True)):
            total[i] += lambda_c / 2 * sum((p - q) ** 2 for p, q in zip(xi, c[yi], strict=True))
    close(loss(x, y), mean(total))
    close(loss.class_logits(x), logits)


def test_softmax_holds_only_its_classifier():
    assert [name for name, _ in make("softmax").named_parameters()] == ["weight", "bias"]
    assert [name for name, _ in make("center_loss").named_parameters()] == ["weight", "bias", "centers"]


# ---------------------------------------------------------------------------
# hinge losses on logits


@pytest.mark.parametrize("seed,p,margin", [(0, 1, 0.5), (1, 1, 1.0), (2, 2, 1.0), (3, 2, 3.0)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multi_margin_against_slow_formula(seed, p, margin, reduction):
    logits, y = batch(seed, dim=C, norm_scale=2.0)
    ours = losszoo.create_loss("multi_margin", num_classes=C, p=p, margin=margin, reduction=reduction)
    per_sample, hinges = [], []
    for z, yi in zip(rows(logits), y.tolist(), strict=True):
        terms = [max(0.0, margin - z[yi] + zj) for j, zj in enumerate(z) if j != yi]
        hinges += terms
        per_sample.append(sum(t**p for t in terms) / C)
    assert min(hinges) == 0.0 < max(hinges)  # both sides of the hinge are exercised
    close(ours(logits, y), reduced(per_sample, reduction))


@pytest.mark.parametrize("seed,margin", [(0, 0.5), (1, 1.0), (2, 2.0)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_squared_hinge_against_slow_formula(seed, margin, reduction):
    logits, y = batch(seed, dim=C, norm_scale=2.0)
    ours = losszoo.create_loss("squared_hinge", num_classes=C, margin=margin, reduction=reduction)
    per_sample = []
    for z, yi in zip(rows(logits), y.tolist(), strict=True):
        per_sample.append(mean([max(0.0, margin - (1 if j == yi else -1) * zj) ** 2 for j, zj in enumerate(z)]))
    close(ours(logits, y), reduced(per_sample, reduction))


@pytest.mark.parametrize("name", LOGIT_LOSSES)
def test_hinge_losses_check_a_given_num_classes_against_the_logits(name):
    logits, y = batch(0, dim=C)
    with pytest.raises(ValueError, match=f"num_classes={C + 1}"):
        losszoo.create_loss(name, num_classes=C + 1)(logits, y)
    close(losszoo.create_loss(name)(logits, y), losszoo.create_loss(name, num_classes=C)(logits, y), rtol=0, atol=0)


# ---------------------------------------------------------------------------
# gradients


def as_function(loss, x_shape, y):
    names = [name for name, _ in loss.named_parameters()]

    def f(x, *params):
        return functional_call(loss, dict(zip(names, params, strict=True)), (x.reshape(x_shape), y))

    return f, [p.detach().clone().requires_grad_() for p in loss.parameters()]


#: Hyperparameters for gradcheck where the defaults do not suit it (small scales keep the finite differences
#: well conditioned) or where a variant takes another code path; every other loss is checked at its defaults.
GRADCHECK_VARIANTS = {
    "normface": [{"scale": 4.0}], "large_margin_softmax": [{"margin": 3}], "sphereface": [{"margin": 2}],
    "cosface": [{"scale": 4.0}], "arcface": [{"scale": 4.0}, {"scale": 4.0, "easy_margin": True}],
    "combined_margin": [{"m1": 1.5, "scale": 4.0}, {"scale": 4.0}], "subcenter_arcface": [{"k": 2, "scale": 4.0}],
    "curricularface": [{"scale": 4.0}], "magface": [{"l_a": 0.5, "u_a": 3.0, "scale": 4.0}],
    "center_loss": [{"lambda_c": 0.5}], "multi_margin": [{"p": 1}, {"p": 2, "margin": 0.7}],
}


def gradcheck_cases(names):
    return [(name, kw) for name in names if not losszoo.loss_spec(name).no_gradcheck
            for kw in GRADCHECK_VARIANTS.get(name, [{}])]


@pytest.mark.parametrize("name,kw", gradcheck_cases(EMBEDDING_LOSSES))
def test_gradcheck_embedding_losses(name, kw):
    loss = make(name, num_classes=4, embedding_dim=3, **kw).eval()  # eval: buffers fixed between evaluations
    x, y = batch(0, n=4, num_classes=4, dim=3)
    f, params = as_function(loss, x.shape, y)
    assert torch.autograd.gradcheck(f, (x.clone().requires_grad_(), *params))


def test_gradcheck_adaface_with_its_norms_held_fixed():
    # AdaFace stops the gradient through the feature norm (as its reference code does), so the
    # embeddings' gradient is checked at fixed norms and the centres' gradient through the module.
    from losszoo.losses.margin import adaface_loss, cosine_logits

    loss = make("adaface", num_classes=4, embedding_dim=3, scale=4.0).eval()
    loss.load_state_dict({**loss.state_dict(), "batch_mean": torch.tensor(2.0), "batch_std": torch.tensor(1.0)})
    x, y = batch(0, n=4, num_classes=4, dim=3)
    norms = x.norm(dim=1)
    assert ((loss.h * (norms - 2.0) / 1.001).abs() < 1).all()  # z away from its clip

    def through_embeddings(e):
        return adaface_loss(cosine_logits(e, loss.weight), norms, y, 2.0, 1.0, loss.margin, loss.h, loss.scale)

    assert torch.autograd.gradcheck(through_embeddings, (x.clone().requires_grad_(),))
    f, params = as_function(loss, x.shape, y)
    assert torch.autograd.gradcheck(lambda w: f(x, w), tuple(params))


@pytest.mark.parametrize("name,kw", gradcheck_cases(LOGIT_LOSSES))
def test_gradcheck_logit_losses(name, kw):
    loss = losszoo.create_loss(name, num_classes=4, reduction="sum", **kw)
    logits, y = batch(0, n=4, num_classes=4, dim=4)
    assert torch.autograd.gradcheck(lambda z: loss(z, y), (logits.requires_grad_(),))


# ---------------------------------------------------------------------------
# extreme inputs, autocast, labels, state


def values_and_grads(loss, x, y):
    x = x.clone().requires_grad_()
    value = loss(x, y)
    grads = torch.autograd.grad(value, [x, *loss.parameters()])
    return value, grads


@pytest.mark.parametrize("name", EMBEDDING_LOSSES)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cosines_of_exactly_plus_minus_one_have_finite_gradients(name, sign):
    loss = make(name)
    with torch.no_grad():  # unit axis centres: every cosine is exactly 0 or +-1
        loss.weight.copy_(torch.eye(C, D).reshape(C, *([1] * (loss.weight.dim() - 2)), D).expand_as(loss.weight))
    y = torch.arange(C)
    x = sign * 3.0 * torch.eye(C, D, dtype=torch.float64)
    assert set(cosine_logits(x, loss.weight).flatten().tolist()) <= {0.0, 1.0, -1.0}
    value, grads = values_and_grads(loss.train(), x, y)
    assert torch.isfinite(value)
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", EMBEDDING_LOSSES)
def test_zero_norm_embeddings_have_finite_gradients(name):
    loss = make(name)
    x = torch.zeros(N, D, dtype=torch.float64)
    x[0] = 1.0  # one ordinary sample beside the zero ones
    value, grads = values_and_grads(loss, x, batch(0)[1])
    assert torch.isfinite(value)
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", LOGIT_LOSSES)
def test_huge_logits_have_finite_gradients(name):
    loss = losszoo.create_loss(name, num_classes=C)
    logits = torch.tensor([[1e4, -1e4, 0.0, 1e4, -1e4]] * 2, requires_grad=True)
    value = loss(logits, torch.tensor([1, 0]))
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", EMBEDDING_LOSSES + LOGIT_LOSSES)
def test_bf16_autocast_computes_in_float32(name):
    torch.manual_seed(0)
    loss = losszoo.create_loss(name, num_classes=C, embedding_dim=D).eval()
    x = torch.randn(N, D if name in EMBEDDING_LOSSES else C) * 3
    y = torch.randint(0, C, (N,))
    expected = loss(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value, grads = values_and_grads(loss, x, y)
        low_precision = loss(x.bfloat16(), y)  # as a bf16 model head would hand it over
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-5)
    assert all(torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(low_precision)


@pytest.mark.parametrize("name", EMBEDDING_LOSSES + LOGIT_LOSSES)
@pytest.mark.parametrize("bad", [-1, C])
def test_labels_out_of_range_raise(name, bad):
    loss = losszoo.create_loss(name, num_classes=C, embedding_dim=D)
    x = torch.randn(3, D if name in EMBEDDING_LOSSES else C)
    with pytest.raises(ValueError, match="outside"):
        loss(x, torch.tensor([0, bad, 1]))


@pytest.mark.parametrize("name", EMBEDDING_LOSSES)
def test_class_logits_and_centre_shape(name):
    loss = make(name)
    expected = (C, 3, D) if name == "subcenter_arcface" else (C, D)
    assert loss.weight.shape == expected
    x, y = batch(0)
    logits = loss.class_logits(x)
    assert logits.shape == (N, C) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name,buffers", [("adacos", ["scale"]), ("curricularface", ["t"]),
                                          ("adaface", ["batch_mean", "batch_std"])])
def test_running_statistics_are_checkpointed_and_move_only_in_training(name, buffers):
    loss = make(name)
    x, y = batch(0)
    initial = {b: loss.state_dict()[b].clone() for b in buffers}
    loss.eval()
    loss(x, y)
    assert all(torch.equal(loss.state_dict()[b], initial[b]) for b in buffers)
    loss.train()
    loss(x, y)
    trained = loss.state_dict()
    assert all(not torch.equal(trained[b], initial[b]) for b in buffers)
    fresh = make(name)
    fresh.load_state_dict(trained)
    fresh.eval()
    loss.eval()
    close(fresh(x, y), loss(x, y), rtol=0, atol=0)
