"""Cross-entropy variants: reference values, identities, gradients and extremes.

Where a library defines the loss (torch for cross_entropy, kornia's focal up to
its division by C) we compare with it; otherwise with a slow formula written
here from the paper, in plain Python floats over tiny inputs.
"""

from __future__ import annotations

import decimal
import math

import pytest
import torch
import torch.nn.functional as F

import losszoo
from losszoo.losses.classification import tempered_normaliser, tempered_softmax

C = 4
COUNTS = [3, 40, 7, 500]  # train counts per class for ldam and class_balanced
CONTEXT = {"ldam": {"class_counts": COUNTS}, "class_balanced": {"class_counts": COUNTS}}
NAMES = losszoo.list_losses(family="cross_entropy")
EXPECTED = {
    "cross_entropy", "focal", "poly1", "gce", "sce", "taylor_ce",
    "bi_tempered", "ldam", "class_balanced", "confidence_penalty",
}


def make(name: str, **kw):
    """The loss through the registry, with the trainer's context (``kw`` may override ``class_counts``)."""
    return losszoo.create_loss(name, num_classes=C, **{**CONTEXT.get(name, {}), **kw})


def data(seed: int, n: int = 6, c: int = C, scale: float = 2.0, shape: tuple[int, ...] = ()):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, *shape, generator=g, dtype=torch.float64)
    labels = torch.randint(c, (n, *shape), generator=g)
    return logits, labels


def close(actual: torch.Tensor, expected, rtol: float = 1e-7, atol: float = 1e-9) -> None:
    expected = torch.as_tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(actual.double(), expected, rtol=rtol, atol=atol)


def softmax_rows(logits: torch.Tensor) -> list[list[float]]:
    """Softmax of each row with python math (max-shifted)."""
    rows = []
    for row in logits.tolist():
        top = max(row)
        e = [math.exp(v - top) for v in row]
        rows.append([v / sum(e) for v in e])
    return rows


def reduced(values: list[float], reduction: str):
    if reduction == "none":
        return values
    return sum(values) / len(values) if reduction == "mean" else sum(values)


def check_reductions(name, kw, logits, labels, per_sample: list[float], **tolerance) -> None:
    """The loss under every reduction against slow per-sample values."""
    for reduction in ("none", "mean", "sum"):
        close(make(name, reduction=reduction, **kw)(logits, labels), reduced(per_sample, reduction), **tolerance)


# (name, hyperparameters) settings the shared tests below run on
SETTINGS = [
    ("cross_entropy", {}),
    ("cross_entropy", {"label_smoothing": 0.2, "weight": [0.5, 1.0, 2.0, 0.3]}),
    ("focal", {}),
    ("focal", {"gamma": 0.5, "alpha": [0.25, 0.5, 1.0, 2.0]}),
    ("poly1", {}),
    ("poly1", {"epsilon": -1.0}),
    ("gce", {}),
    ("gce", {"q": 1.0}),
    ("sce", {}),
    ("taylor_ce", {}),
    ("taylor_ce", {"order": 6}),
    ("bi_tempered", {}),
    ("bi_tempered", {"t1": 0.5, "t2": 0.6}),
    ("bi_tempered", {"t1": 1.0, "t2": 2.0}),
    ("ldam", {}),
    ("class_balanced", {}),
    ("class_balanced", {"base": "focal", "gamma": 0.5, "beta": 0.9}),
    ("class_balanced", {"base": "sigmoid"}),
    ("class_balanced", {"base": "sigmoid_focal", "gamma": 2.0, "beta": 0.99}),
    ("confidence_penalty", {}),
]
SETTING_IDS = [f"{n}-{i}" for i, (n, _) in enumerate(SETTINGS)]


def test_every_variant_is_registered_as_elementwise_logit_loss():
    assert set(NAMES) >= EXPECTED
    for name in EXPECTED:
        spec = losszoo.loss_spec(name)
        assert (spec.input, spec.target_kind, spec.elementwise) == ("logits", "labels", True)
        assert spec.paper and spec.formula
        for p in spec.params:
            assert p.doc and p.short and p.problem(p.default) is None, (name, p.name)
    for name in ("ldam", "class_balanced"):
        assert losszoo.loss_spec(name).context == ("num_classes", "class_counts")


# ----------------------------------------------------------------- cross_entropy


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.7])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_equals_torch(seed, label_smoothing, weighted, ignore):
    logits, labels = data(seed, n=8)
    weight = [0.2, 1.0, 3.0, 0.7] if weighted else None
    kw = {"ignore_index": 2} if ignore else {}
    for reduction in ("mean", "sum", "none"):
        loss = make("cross_entropy", label_smoothing=label_smoothing, weight=weight, reduction=reduction, **kw)
        expected = F.cross_entropy(
            logits, labels, weight=None if weight is None else torch.tensor(weight, dtype=torch.float64),
            label_smoothing=label_smoothing, reduction=reduction, ignore_index=2 if ignore else -100,
        )
        close(loss(logits, labels), expected, rtol=1e-7, atol=1e-12)


def test_cross_entropy_smoothing_and_weights_match_written_formula():
    # -sum_c w_c q_c log p_c, q = (1-ls) onehot + ls/C; mean divides by sum of w_y over kept samples.
    logits, labels = data(3, n=7)
    labels[1] = -100
    w, ls = [0.2, 1.0, 3.0, 0.7], 0.3
    probs = softmax_rows(logits)
    num = den = 0.0
    for row, y in zip(probs, labels.tolist(), strict=True):
        if y == -100:
            continue
        q = [(1 - ls) * (c == y) + ls / C for c in range(C)]
        num += -sum(w[c] * q[c] * math.log(row[c]) for c in range(C))
        den += w[y]
    close(make("cross_entropy", label_smoothing=ls, weight=w)(logits, labels), num / den)


def test_cross_entropy_per_pixel_and_ignored_label_outside_range():
    logits, labels = data(4, n=2, shape=(3, 5))
    labels[0, 1, 2] = 255
    loss = make("cross_entropy", ignore_index=255, reduction="none")
    out = loss(logits, labels)
    assert out.shape == (2, 3, 5) and out[0, 1, 2] == 0
    close(out, F.cross_entropy(logits, labels, ignore_index=255, reduction="none"))
    with pytest.raises(ValueError, match="outside"):
        make("cross_entropy")(logits, labels)


# ----------------------------------------------------------------- focal


def slow_focal(logits, labels, gamma, alpha):
    out = []
    for row, y in zip(softmax_rows(logits), labels.tolist(), strict=True):
        a = 1.0 if alpha is None else alpha if isinstance(alpha, float) else alpha[y]
        out.append(-a * (1 - row[y]) ** gamma * math.log(row[y]))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [None, 0.25, [0.1, 0.4, 1.0, 2.5]])
def test_focal_matches_formula(seed, gamma, alpha):
    logits, labels = data(seed)
    expected = slow_focal(logits, labels, gamma, alpha)
    check_reductions("focal", {"gamma": gamma, "alpha": alpha}, logits, labels, expected)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("gamma", [0.0, 1.5])
def test_focal_is_kornia_times_class_count(seed, gamma):
    kornia = pytest.importorskip("kornia")
    logits, labels = data(seed, n=2, shape=(3, 4))
    alpha = [0.1, 0.4, 1.0, 2.5]
    theirs = kornia.losses.focal_loss(
        logits, labels, alpha=None, gamma=gamma, reduction="none", weight=torch.tensor(alpha, dtype=torch.float64)
    )
    close(make("focal", gamma=gamma, alpha=alpha, reduction="none")(logits, labels), theirs.sum(1))
    mean = kornia.losses.focal_loss(logits, labels, alpha=None, gamma=gamma, reduction="mean")
    close(make("focal", gamma=gamma)(logits, labels), C * mean)


def test_focal_gamma_zero_is_cross_entropy():
    logits, labels = data(5, n=2, shape=(3,))
    close(make("focal", gamma=0.0)(logits, labels), F.cross_entropy(logits, labels))


@pytest.mark.parametrize("gamma", [0.2, 0.5, 1.0])
def test_focal_small_gamma_saturated_gradient_is_finite(gamma):
    # (1 - p_t)^gamma has an infinite slope at p_t = 1 for gamma < 1; the loss itself has slope 0 there.
    logits = torch.tensor([[30.0, 0.0, 0.0, 0.0], [0.0, 1e4, 0.0, 0.0]], requires_grad=True)
    value = make("focal", gamma=gamma)(logits, torch.tensor([0, 1]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    # p_t = 1 - 3e-13 rounds to 1 in float32, yet the loss keeps its tiny non-zero value
    assert value.item() > 0


# ----------------------------------------------------------------- poly1, gce, sce, taylor_ce, confidence_penalty


def slow_poly1(logits, labels, epsilon):
    rows = zip(softmax_rows(logits), labels.tolist(), strict=True)
    return [-math.log(p[y]) + epsilon * (1 - p[y]) for p, y in rows]


def slow_gce(logits, labels, q):
    return [(1 - p[y] ** q) / q for p, y in zip(softmax_rows(logits), labels.tolist(), strict=True)]


def slow_sce(logits, labels, alpha, beta, log_zero):
    out = []
    for p, y in zip(softmax_rows(logits), labels.tolist(), strict=True):
        ce = -math.log(p[y])
        log_label = [0.0 if c == y else log_zero for c in range(C)]  # log of the one-hot label, log 0 := A
        rce = -sum(p[c] * log_label[c] for c in range(C))
        out.append(alpha * ce + beta * rce)
    return out


def slow_taylor(logits, labels, order):
    rows = zip(softmax_rows(logits), labels.tolist(), strict=True)
    return [sum((1 - p[y]) ** k / k for k in range(1, order + 1)) for p, y in rows]


def slow_confidence_penalty(logits, labels, beta):
    out = []
    for p, y in zip(softmax_rows(logits), labels.tolist(), strict=True):
        entropy = -sum(pc * math.log(pc) for pc in p)
        out.append(-math.log(p[y]) - beta * entropy)
    return out


FORMULA_CASES = [
    ("poly1", {"epsilon": 1.0}, slow_poly1),
    ("poly1", {"epsilon": -1.0}, slow_poly1),
    ("poly1", {"epsilon": 5.5}, slow_poly1),
    ("gce", {"q": 0.7}, slow_gce),
    ("gce", {"q": 0.05}, slow_gce),
    ("gce", {"q": 1.0}, slow_gce),
    ("sce", {"alpha": 0.1, "beta": 1.0, "log_zero": -4.0}, slow_sce),
    ("sce", {"alpha": 1.0, "beta": 0.3, "log_zero": -9.2}, slow_sce),
    ("sce", {"alpha": 0.0, "beta": 2.0, "log_zero": -0.5}, slow_sce),
    ("taylor_ce", {"order": 1}, slow_taylor),
    ("taylor_ce", {"order": 2}, slow_taylor),
    ("taylor_ce", {"order": 7}, slow_taylor),
    ("confidence_penalty", {"beta": 0.1}, slow_confidence_penalty),
    ("confidence_penalty", {"beta": 2.0}, slow_confidence_penalty),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name,kw,slow", FORMULA_CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FORMULA_CASES)])
def test_matches_paper_formula(name, kw, slow, seed):
    logits, labels = data(seed)
    check_reductions(name, kw, logits, labels, slow(logits, labels, *kw.values()))


@pytest.mark.parametrize(
    "name,kw",
    [("poly1", {"epsilon": 0.0}), ("sce", {"alpha": 1.0, "beta": 0.0}), ("confidence_penalty", {"beta": 0.0})],
)
def test_reduces_to_cross_entropy(name, kw):
    logits, labels = data(7, n=3, shape=(2, 2))
    close(make(name, reduction="none", **kw)(logits, labels), F.cross_entropy(logits, labels, reduction="none"))


@pytest.mark.parametrize("q", [1e-3, 1e-2])
def test_gce_tends_to_cross_entropy_as_q_vanishes(q):
    # With L = log p_t <= 0: CE - GCE = (e^{qL} - 1 - qL) / q, and for x = qL <= 0,
    # x^2/2 + x^3/6 <= e^x - 1 - x <= x^2/2. So the gap is q L^2/2 up to q^2 |L|^3 / 6.
    logits, labels = data(8, n=10, scale=3.0)
    ce = F.cross_entropy(logits, labels, reduction="none")
    gap = ce - make("gce", q=q, reduction="none")(logits, labels)
    upper = q * ce**2 / 2
    assert torch.all(gap <= upper * (1 + 1e-9) + 1e-15)
    assert torch.all(gap >= upper - q**2 * ce**3 / 6 - 1e-15)
    assert gap.max() > 0  # not a vacuous check: the inputs do leave a gap


def test_gce_at_q_one_is_mean_absolute_error():
    logits, labels = data(9)
    p_t = logits.softmax(1).gather(1, labels[:, None]).squeeze(1)
    close(make("gce", q=1.0, reduction="none")(logits, labels), 1 - p_t)


@pytest.mark.parametrize("order", [5, 30, 200])
def test_taylor_ce_rises_to_cross_entropy(order):
    # -log p = sum_k x^k / k with x = 1 - p: the remainder after n terms lies in [0, x^{n+1} / ((n+1)(1-x))].
    logits, labels = data(10, n=10, scale=1.0)
    ce = F.cross_entropy(logits, labels, reduction="none")
    x = 1 - logits.softmax(1).gather(1, labels[:, None]).squeeze(1)
    gap = ce - make("taylor_ce", order=order, reduction="none")(logits, labels)
    assert torch.all(gap >= -1e-12)
    assert torch.all(gap <= x ** (order + 1) / ((order + 1) * (1 - x)) + 1e-12)


def test_sce_rejects_all_zero_weights():
    with pytest.raises(losszoo.InvalidParameterError):
        make("sce", alpha=0.0, beta=0.0)


# ----------------------------------------------------------------- bi_tempered


def slow_log_t(x: float, t: float) -> float:
    return math.log(x) if t == 1 else (x ** (1 - t) - 1) / (1 - t)


def slow_exp_t(x: float, t: float) -> float:
    if t == 1:
        return math.exp(x)
    base = 1 + (1 - t) * x
    return max(base, 0.0) ** (1 / (1 - t))


def slow_tempered_probs(row: list[float], t: float) -> list[float]:
    """exp_t(a - lambda) with lambda found by bisection on sum_c exp_t(a_c - lambda) = 1 (decreasing in lambda)."""

    def total(lam):
        return sum(slow_exp_t(a - lam, t) for a in row)

    lo = hi = max(row)  # total(max) >= 1
    while total(hi) > 1:
        hi = lo + 2 * (hi - lo) + 1
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(mid) > 1 else (lo, mid)
    return [slow_exp_t(a - (lo + hi) / 2, t) for a in row]


def slow_bi_tempered(logits, labels, t1, t2):
    """Bregman form of the paper: sum_c y(log_t1 y - log_t1 p) - (y^{2-t1} - p^{2-t1}) / (2-t1), 0 log_t1 0 = 0."""
    out = []
    for row, y in zip(logits.tolist(), labels.tolist(), strict=True):
        p = slow_tempered_probs(row, t2)
        value = 0.0
        for c in range(len(row)):
            yc = 1.0 if c == y else 0.0
            if yc:
                value += yc * (slow_log_t(yc, t1) - slow_log_t(p[c], t1))
            value -= (yc ** (2 - t1) - p[c] ** (2 - t1)) / (2 - t1)
        out.append(value)
    return out


BI_TEMPERED = [
    (0.8, 1.2), (0.5, 2.0), (0.2, 4.0), (1.0, 1.5), (0.9, 1.0), (0.7, 0.5), (0.0, 0.3), (0.3, 0.0), (1.0, 1.0),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("t1,t2", BI_TEMPERED)
def test_bi_tempered_matches_bisection_reference(seed, t1, t2):
    logits, labels = data(seed, n=5, scale=1.5)
    expected = slow_bi_tempered(logits, labels, t1, t2)
    check_reductions("bi_tempered", {"t1": t1, "t2": t2}, logits, labels, expected, rtol=1e-8, atol=1e-10)


def test_bi_tempered_at_unit_temperatures_is_cross_entropy():
    logits, labels = data(11, n=3, shape=(2, 3))
    close(make("bi_tempered", t1=1.0, t2=1.0, reduction="none")(logits, labels),
          F.cross_entropy(logits, labels, reduction="none"))
    # and the t -> 1 limit of the Newton-normalised tempered softmax is the softmax
    close(tempered_softmax(logits, 1.0 + 1e-7), logits.softmax(1), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("t", [0.0, 0.5, 0.9, 1.1, 2.0, 5.0])
def test_tempered_normaliser_solves_its_equation(t):
    logits, _ = data(12, n=8, c=50, scale=5.0)
    logits[0] = 0.0  # equal activations
    logits[1, 0] = 1e4  # one dominant class
    lam = tempered_normaliser(logits, t)
    probs = (1 + (1 - t) * (logits - lam)).clamp_min(0) ** (1 / (1 - t))
    close(probs.sum(1), torch.ones(8), rtol=0, atol=1e-12)
    for i in (0, 2):  # against bisection
        close(probs[i], slow_tempered_probs(logits[i].tolist(), t), rtol=1e-7, atol=1e-10)


# ----------------------------------------------------------------- ldam


def slow_ldam(logits, labels, counts, max_margin, scale):
    inv = [n ** -0.25 for n in counts]
    margins = [m * max_margin / max(inv) for m in inv]  # C / n_j^{1/4}, largest = max_margin
    out = []
    for row, y in zip(logits.tolist(), labels.tolist(), strict=True):
        z = [scale * (v - (margins[c] if c == y else 0.0)) for c, v in enumerate(row)]
        top = max(z)
        out.append(top + math.log(sum(math.exp(v - top) for v in z)) - z[y])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_margin,scale", [(0.5, 30.0), (0.1, 1.0), (2.0, 5.0)])
@pytest.mark.parametrize("counts", [COUNTS, [100, 100, 100, 100], [1, 2, 3, 10_000]])
def test_ldam_matches_formula(seed, max_margin, scale, counts):
    logits, labels = data(seed, scale=0.3)
    kw = {"class_counts": counts, "max_margin": max_margin, "scale": scale}
    check_reductions("ldam", kw, logits, labels, slow_ldam(logits, labels, counts, max_margin, scale))


def test_ldam_margin_of_rarest_class_is_max_margin():
    loss = make("ldam", max_margin=0.4)
    assert max(loss.margins) == pytest.approx(0.4)
    assert loss.margins[COUNTS.index(min(COUNTS))] == pytest.approx(0.4)
    assert loss.margins[3] == pytest.approx(0.4 * (3 / 500) ** 0.25)


# ----------------------------------------------------------------- class_balanced


def slow_cb_weights(counts, beta):
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    return [w / sum(raw) * len(counts) for w in raw]


def slow_class_balanced(logits, labels, counts, beta, base, gamma):
    w = slow_cb_weights(counts, beta)
    out = []
    for row, p, y in zip(logits.tolist(), softmax_rows(logits), labels.tolist(), strict=True):
        if base in ("cross_entropy", "focal"):
            g = gamma if base == "focal" else 0.0
            value = -(1 - p[y]) ** g * math.log(p[y])
        else:
            value = 0.0
            for c, z in enumerate(row):
                zt = z if c == y else -z
                pt = 1 / (1 + math.exp(-zt))
                value += -(1 - pt) ** (gamma if base == "sigmoid_focal" else 0.0) * math.log(pt)
        out.append(w[y] * value)
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("beta", [0.0, 0.9, 0.999, 0.9999])
@pytest.mark.parametrize("base", ["cross_entropy", "focal", "sigmoid", "sigmoid_focal"])
def test_class_balanced_matches_formula(seed, beta, base):
    logits, labels = data(seed)
    expected = slow_class_balanced(logits, labels, COUNTS, beta, base, 1.5)
    check_reductions("class_balanced", {"beta": beta, "base": base, "gamma": 1.5}, logits, labels, expected)


def test_class_balanced_weights_sum_to_class_count_and_tend_to_inverse_frequency():
    loss = make("class_balanced", beta=0.9999999)
    assert sum(loss.class_weights) == pytest.approx(C)
    inverse = [1 / n for n in COUNTS]
    assert loss.class_weights == pytest.approx([v / sum(inverse) * C for v in inverse], rel=1e-3)


def test_class_balanced_sigmoid_is_weighted_binary_cross_entropy():
    logits, labels = data(13)
    w = torch.tensor(slow_cb_weights(COUNTS, 0.99), dtype=torch.float64)
    bce = F.binary_cross_entropy_with_logits(logits, F.one_hot(labels, C).double(), reduction="none").sum(1)
    close(make("class_balanced", beta=0.99, base="sigmoid", reduction="none")(logits, labels), w[labels] * bce)


@pytest.mark.parametrize("base,plain", [("cross_entropy", {}), ("focal", {"gamma": 0.7})])
def test_class_balanced_with_beta_zero_is_its_base(base, plain):
    logits, labels = data(14, n=2, shape=(3,))
    ours = make("class_balanced", beta=0.0, base=base, gamma=0.7)(logits, labels)
    close(ours, make("focal" if base == "focal" else "cross_entropy", **plain)(logits, labels))


@pytest.mark.parametrize("name", ["ldam", "class_balanced"])
@pytest.mark.parametrize("counts", [[1, 2, 3], [5, 0, 7, 9], [5, -1, 7, 9]])
def test_class_counts_are_checked(name, counts):
    with pytest.raises(losszoo.InvalidParameterError, match="class_counts"):
        make(name, class_counts=counts)
    with pytest.raises(losszoo.InvalidParameterError, match="class_counts"):
        losszoo.create_loss(name, num_classes=C)


# ----------------------------------------------------------------- losses of p_t at the extremes
# focal, poly1, gce, sce, taylor_ce and class_balanced (focal base) compute -log p_t and 1 - p_t from one
# exp pass, with a hand-written gradient. Their reference here is the paper's formula in 400-digit decimal
# arithmetic, with 1 - p_t summed over the other classes and the gradient by central differences (enough
# digits to resolve a gradient of 1e-244 on a loss of 1.4).

D = decimal.Decimal
PT_LOSSES = {  # (name, hyperparameters): the loss of one sample as a function of p_t and 1 - p_t
    ("focal", 2.0): lambda p, rest: -(rest**2) * p.ln(),
    ("focal", 0.3): lambda p, rest: -(rest ** D("0.3")) * p.ln(),
    ("poly1", 1.0): lambda p, rest: -p.ln() + rest,
    ("poly1", -1.0): lambda p, rest: -p.ln() - rest,
    ("gce", 0.7): lambda p, rest: (1 - p ** D("0.7")) / D("0.7"),
    ("gce", 0.05): lambda p, rest: (1 - p ** D("0.05")) / D("0.05"),
    ("sce", 0.1): lambda p, rest: -D("0.1") * p.ln() + 4 * rest,  # alpha 0.1, beta 1, A = -4
    ("taylor_ce", 3): lambda p, rest: rest + rest**2 / 2 + rest**3 / 3,
}
PT_KW = {"focal": "gamma", "poly1": "epsilon", "gce": "q", "sce": "alpha", "taylor_ce": "order"}
# Where p_t is close to 1, poly1 at epsilon = -1 is -log p_t - (1 - p_t) ~ (1 - p_t)^2 / 2: two terms that cancel,
# so its value is exact only up to that cancellation (its gradient, (1 - p_t)(p - onehot), is exact).
CANCELLING = {("poly1", -1.0)}
PT_IDS = [f"{n}-{v}" for n, v in PT_LOSSES]
EXTREME_ROWS = [  # (logits, label): where the branches of the computation part
    ([30.0, 0.0, 0.0, 0.0], 0),  # p_t = 1 - 3e^-30: rounds to 1 in float32, -log p_t = 2.8e-13
    ([40.0, 38.5, -3.0, 2.0], 0),  # p_t near 1 with a close second class
    ([1.0, 1.0, -2.0, 0.5], 1),  # the target ties for the maximum
    ([math.log(3.0), 0.0, 0.0, 0.0], 0),  # p_t = 1/2
    ([0.3, -0.2, 1.0, 0.0], 2),  # nothing special
    ([0.0, 30.0, 0.0, 0.0], 0),  # p_t = e^-30
    ([-800.0, 0.0, 0.0, 0.0], 0),  # p_t = e^-800 / 3 underflows to 0 in float64: -log p_t is still exact
]


def decimal_loss(fn, row: list[float], label: int) -> D:
    with decimal.localcontext(prec=400):
        z = [D(v) for v in row]  # exact: every float is a decimal
        top = max(z)
        e = [(v - top).exp() for v in z]
        total = sum(e)
        rest = sum(v for c, v in enumerate(e) if c != label) / total
        return fn(e[label] / total, rest)


def decimal_gradient(fn, row: list[float], label: int) -> list[D]:
    h = D("1e-40")
    with decimal.localcontext(prec=400):
        grad = []
        for c in range(len(row)):
            up = [D(v) + (h if i == c else 0) for i, v in enumerate(row)]
            down = [D(v) - (h if i == c else 0) for i, v in enumerate(row)]
            grad.append((decimal_loss(fn, up, label) - decimal_loss(fn, down, label)) / (2 * h))
        return grad


def pt_loss(key, **kw):
    name, value = key
    return make(name, **{PT_KW[name]: value}, **kw)


@pytest.mark.parametrize("key", list(PT_LOSSES), ids=PT_IDS)
@pytest.mark.parametrize("row,label", EXTREME_ROWS)
def test_loss_of_p_t_matches_decimal_arithmetic_in_value_and_gradient(key, row, label):
    logits = torch.tensor([row], dtype=torch.float64, requires_grad=True)
    value = pt_loss(key, reduction="sum")(logits, torch.tensor([label]))
    (grad,) = torch.autograd.grad(value, logits)
    expected = decimal_loss(PT_LOSSES[key], row, label)
    assert value.item() == pytest.approx(float(expected), rel=1e-12, abs=1e-27 if key in CANCELLING else 1e-300)
    expected_grad = [float(g) for g in decimal_gradient(PT_LOSSES[key], row, label)]
    assert grad[0].tolist() == pytest.approx(expected_grad, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("key", list(PT_LOSSES), ids=PT_IDS)
def test_loss_of_p_t_keeps_its_digits_where_p_t_rounds_to_one_in_float32(key):
    row, label = [30.0, 0.0, 0.0, 0.0], 0
    logits = torch.tensor([row], requires_grad=True)
    labels = torch.tensor([label])
    assert F.cross_entropy(logits, labels).item() == 0.0  # what log_softmax gives: not a vacuous test
    value = pt_loss(key, reduction="sum")(logits, labels)
    (grad,) = torch.autograd.grad(value, logits)
    expected = float(decimal_loss(PT_LOSSES[key], row, label))
    assert value.item() == pytest.approx(expected, rel=1e-5, abs=1e-18 if key in CANCELLING else 0.0)
    expected_grad = [float(g) for g in decimal_gradient(PT_LOSSES[key], row, label)]
    assert grad[0].tolist() == pytest.approx(expected_grad, rel=1e-4, abs=1e-30)


@pytest.mark.parametrize("key", list(PT_LOSSES), ids=PT_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loss_of_p_t_where_every_other_class_underflows(key, dtype):
    # 1 - p_t is 0 to working precision: the loss and its gradient are 0 (and finite), as in decimal arithmetic.
    logits = torch.tensor([[1e4, 0.0, -5.0, 3.0]], dtype=dtype, requires_grad=True)
    value = pt_loss(key, reduction="sum")(logits, torch.tensor([0]))
    (grad,) = torch.autograd.grad(value, logits)
    assert value.item() == 0.0 and abs(decimal_loss(PT_LOSSES[key], logits[0].tolist(), 0)) < D("1e-4000")
    assert grad.abs().max().item() == 0.0


@pytest.mark.parametrize("key", list(PT_LOSSES), ids=PT_IDS)
def test_loss_of_p_t_second_derivative(key):
    # The Hessian-vector products of `losszoo landscape` differentiate the gradient: its create_graph path.
    logits, labels = data(17, n=3, scale=1.5)
    loss = pt_loss(key)
    assert torch.autograd.gradgradcheck(lambda z: loss(z, labels), (logits.requires_grad_(),))
    pixels, pixel_labels = data(18, n=2, shape=(2,), scale=1.5)
    loss = pt_loss(key, reduction="none")
    assert torch.autograd.gradgradcheck(lambda z: loss(z, pixel_labels), (pixels.requires_grad_(),))


def test_loss_of_p_t_backward_twice_on_a_retained_graph():
    logits, labels = data(19, n=4)
    logits.requires_grad_()
    value = make("focal", gamma=0.5)(logits, labels)
    first = torch.autograd.grad(value, logits, retain_graph=True)[0]
    torch.testing.assert_close(torch.autograd.grad(value, logits)[0], first, rtol=0, atol=0)


def test_class_balanced_focal_matches_decimal_arithmetic_at_the_extremes():
    weights = slow_cb_weights(COUNTS, 0.9)
    loss = make("class_balanced", beta=0.9, base="focal", gamma=0.3, reduction="none")
    rows = [row for row, _ in EXTREME_ROWS]
    labels = [label for _, label in EXTREME_ROWS]
    logits = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    values = loss(logits, torch.tensor(labels))
    (grad,) = torch.autograd.grad(values.sum(), logits)
    fn = PT_LOSSES[("focal", 0.3)]
    for i, (row, label) in enumerate(EXTREME_ROWS):
        w = D(weights[label])
        assert values[i].item() == pytest.approx(float(w * decimal_loss(fn, row, label)), rel=1e-12)
        expected = [float(w * g) for g in decimal_gradient(fn, row, label)]
        assert grad[i].tolist() == pytest.approx(expected, rel=1e-9, abs=1e-300)


# ----------------------------------------------------------------- shared: gradients, shapes, extremes, bf16


@pytest.mark.parametrize("name,kw", SETTINGS, ids=SETTING_IDS)
def test_gradcheck(name, kw):
    logits, labels = data(15, n=3, scale=1.0)
    loss = make(name, **kw)
    assert torch.autograd.gradcheck(lambda z: loss(z, labels), (logits.requires_grad_(),))


@pytest.mark.parametrize("name,kw", SETTINGS, ids=SETTING_IDS)
def test_per_pixel_equals_flattened(name, kw):
    logits, labels = data(16, n=2, shape=(3, 2))
    out = make(name, reduction="none", **kw)(logits, labels)
    assert out.shape == labels.shape
    flat_logits, flat_labels = logits.movedim(1, -1).reshape(-1, C), labels.reshape(-1)
    close(out.reshape(-1), make(name, reduction="none", **kw)(flat_logits, flat_labels))
    close(make(name, **kw)(logits, labels), make(name, **kw)(flat_logits, flat_labels))


@pytest.mark.parametrize("name,kw", SETTINGS, ids=SETTING_IDS)
def test_extreme_logits_give_finite_value_and_gradient(name, kw):
    base = torch.tensor([[1e4, -1e4, 0.0, 0.0], [-1e4, 1e4, -1e4, 1e4], [0.0, 0.0, 0.0, 0.0], [1e4, 1e4, 1e4, 1e4]])
    labels = torch.tensor([0, 0, 3, 2])
    for logits in (base, -base, base.double()):
        logits = logits.clone().requires_grad_()
        value = make(name, **kw)(logits, labels)
        value.backward()
        assert torch.isfinite(value), (name, value)
        assert torch.isfinite(logits.grad).all(), (name, logits.grad)


@pytest.mark.parametrize("name,kw", SETTINGS, ids=SETTING_IDS)
def test_bf16_autocast_forward_and_backward(name, kw):
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, C)
    x = torch.randn(8, 5)
    labels = torch.randint(C, (8,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        value = make(name, **kw)(logits, labels)
    assert logits.dtype == torch.bfloat16
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(layer.weight.grad).all()
    close(value, make(name, **kw)(logits.float(), labels), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_labels_and_shapes_raise_before_any_kernel(name):
    loss = make(name)
    logits = torch.zeros(2, C)
    for labels in (torch.tensor([0, C]), torch.tensor([-1, 0])):
        with pytest.raises(ValueError, match="outside"):
            loss(logits, labels)
    with pytest.raises(ValueError, match="num_classes"):
        loss(torch.zeros(2, C + 1), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        loss(logits, torch.tensor([[0, 1]]))


@pytest.mark.parametrize(
    "name,key,value",
    [
        ("poly1", "epsilon", -1.5), ("gce", "q", 0.0), ("gce", "q", 1.5), ("sce", "log_zero", 0.0),
        ("sce", "beta", -1.0), ("taylor_ce", "order", 0), ("taylor_ce", "order", 2.0), ("bi_tempered", "t1", 1.2),
        ("bi_tempered", "t2", -0.1), ("bi_tempered", "t2", 6.0), ("ldam", "max_margin", 0.0), ("ldam", "scale", 0.0),
        ("class_balanced", "beta", 1.0), ("class_balanced", "base", "softmax"), ("class_balanced", "gamma", -1.0),
        ("confidence_penalty", "beta", -0.1), ("focal", "gamma", -1.0), ("cross_entropy", "label_smoothing", 1.5),
    ],
)
def test_out_of_bounds_hyperparameters_are_rejected(name, key, value):
    with pytest.raises(losszoo.InvalidParameterError, match=key):
        make(name, **{key: value})
