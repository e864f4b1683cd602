"""Multi-label losses: reference values, identities, gradients and extremes.

Where torch defines the loss (bce, multilabel_soft_margin) we compare with it;
sigmoid_focal with torchvision's formula, asymmetric with Alibaba-MIIL's
AsymmetricLoss, zlpr and two_way with their papers' formulas, each written out
here in plain Python floats over tiny inputs. The losses are built through the
catalogue's entries (the real factory path) on a registry private to this file.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from losszoo.catalog import multilabel as catalog
from losszoo.errors import InvalidParameterError
from losszoo.factory import build
from losszoo.registry import Registry

L = 4
ENTRIES = {e.name: e for e in catalog.LOSSES}
REGISTRY = Registry("loss", "losses", ())
for _entry in catalog.LOSSES:
    REGISTRY.add(_entry)


def make(name: str, num_classes: int = L, **kw):
    return build(REGISTRY, name, {"num_classes": num_classes, **kw})


def data(seed: int, n: int = 6, l: int = L, scale: float = 2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, l, generator=g, dtype=dtype)
    targets = (torch.rand(n, l, generator=g) < 0.4).to(dtype)
    return logits, targets


def close(actual: torch.Tensor, expected, rtol: float = 1e-7, atol: float = 1e-9) -> None:
    expected = torch.as_tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(actual.double(), expected, rtol=rtol, atol=atol)


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def reduced(values: list[list[float]] | list[float], reduction: str):
    flat = [v for row in values for v in row] if values and isinstance(values[0], list) else values
    if reduction == "none":
        return values
    return sum(flat) / len(flat) if reduction == "mean" else sum(flat)


def check_reductions(name, kw, logits, targets, per_element, **tolerance) -> None:
    for reduction in ("none", "mean", "sum"):
        close(make(name, reduction=reduction, **kw)(logits, targets), reduced(per_element, reduction), **tolerance)


# (name, hyperparameters) settings the shared tests run on
SETTINGS = [
    ("bce", {}),
    ("bce", {"pos_weight": 3.0}),
    ("bce", {"pos_weight": [0.5, 1.0, 2.0, 4.0]}),
    ("sigmoid_focal", {}),
    ("sigmoid_focal", {"alpha": None, "gamma": 0.5}),
    ("asymmetric", {}),
    ("asymmetric", {"clip": 0.0, "gamma_neg": 0.5, "gamma_pos": 0.0}),
    ("multilabel_soft_margin", {}),
    ("zlpr", {}),
    ("two_way", {}),
    ("two_way", {"pos_temperature": 0.5, "neg_temperature": 2.0}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(SETTINGS)]


def test_catalogue_entries_are_multilabel_losses_with_documented_parameters():
    assert set(ENTRIES) == {"bce", "sigmoid_focal", "asymmetric", "multilabel_soft_margin", "zlpr", "two_way"}
    for name, entry in ENTRIES.items():
        assert (entry.input, entry.target_kind, entry.context) == ("multilabel", "multilabel", ())
        assert entry.optional_context == ("num_classes",)  # L is read from the logits; checked when given
        assert entry.paper and entry.formula and entry.summary and entry.reference
        assert entry.elementwise == (name != "two_way")
        for p in entry.params:
            assert p.doc and p.short and p.problem(p.default) is None, (name, p.name)


# ----------------------------------------------------------------- bce and multilabel_soft_margin


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("pos_weight", [None, 2.5, [0.5, 1.0, 2.0, 4.0]])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_equals_torch(seed, pos_weight, reduction):
    logits, targets = data(seed)
    weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    expected = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight, reduction=reduction)
    close(make("bce", pos_weight=pos_weight, reduction=reduction)(logits, targets), expected)


def test_bce_pos_weight_multiplies_the_positive_term():
    logits, targets = data(2)
    per_element = [
        [-(w * t * math.log(sigmoid(z)) + (1 - t) * math.log(sigmoid(-z))) for z, t, w in zip(zr, tr, [1, 2, 3, 4],
                                                                                            strict=True)]
        for zr, tr in zip(logits.tolist(), targets.tolist(), strict=True)
    ]
    check_reductions("bce", {"pos_weight": [1.0, 2.0, 3.0, 4.0]}, logits, targets, per_element)


def test_bce_pos_weight_needs_one_weight_per_label():
    with pytest.raises(InvalidParameterError, match="pos_weight: has 3 entries for 4 labels"):
        make("bce", pos_weight=[1.0, 2.0, 3.0])
    with pytest.raises(InvalidParameterError, match="pos_weight"):
        make("bce", pos_weight=-1.0)


def test_binary_set_is_one_label():
    logits, targets = data(3, n=9, l=1)
    close(make("bce", num_classes=1)(logits, targets), F.binary_cross_entropy_with_logits(logits, targets))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_soft_margin_equals_torch(seed, reduction):
    logits, targets = data(seed)
    expected = F.multilabel_soft_margin_loss(logits, targets, reduction=reduction)
    close(make("multilabel_soft_margin", reduction=reduction)(logits, targets), expected)


def test_multilabel_soft_margin_mean_is_bce_mean():
    logits, targets = data(4)
    close(make("multilabel_soft_margin")(logits, targets), F.binary_cross_entropy_with_logits(logits, targets))


# ----------------------------------------------------------------- sigmoid_focal


def slow_sigmoid_focal(logits, targets, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss with reduction="none", element by element."""
    out = []
    for zr, tr in zip(logits.tolist(), targets.tolist(), strict=True):
        row = []
        for z, t in zip(zr, tr, strict=True):
            p = sigmoid(z)
            ce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
            p_t = p * t + (1 - p) * (1 - t)
            loss = ce * (1 - p_t) ** gamma
            if alpha is not None and alpha >= 0:
                loss *= alpha * t + (1 - alpha) * (1 - t)
            row.append(loss)
        out.append(row)
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_sigmoid_focal_matches_torchvision_formula(seed, alpha, gamma):
    logits, targets = data(seed)
    expected = slow_sigmoid_focal(logits, targets, alpha, gamma)
    check_reductions("sigmoid_focal", {"alpha": alpha, "gamma": gamma}, logits, targets, expected)


def test_sigmoid_focal_takes_soft_targets_as_torchvision():
    logits, _ = data(5)
    soft = torch.rand(logits.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = slow_sigmoid_focal(logits, soft, 0.25, 2.0)
    close(make("sigmoid_focal", reduction="none")(logits, soft), expected)


def test_sigmoid_focal_gamma_zero_without_alpha_is_bce():
    logits, targets = data(6)
    close(make("sigmoid_focal", alpha=None, gamma=0.0)(logits, targets),
          F.binary_cross_entropy_with_logits(logits, targets))


# ----------------------------------------------------------------- asymmetric


def slow_asymmetric(logits, targets, gamma_neg=4.0, gamma_pos=1.0, clip=0.05, eps=1e-8):
    """Alibaba-MIIL's AsymmetricLoss before its final -sum: one value per element."""
    out = []
    for zr, yr in zip(logits.tolist(), targets.tolist(), strict=True):
        row = []
        for z, y in zip(zr, yr, strict=True):
            xs_pos = sigmoid(z)
            xs_neg = 1 - xs_pos
            if clip is not None and clip > 0:
                xs_neg = min(xs_neg + clip, 1.0)
            loss = y * math.log(max(xs_pos, eps)) + (1 - y) * math.log(max(xs_neg, eps))
            if gamma_neg > 0 or gamma_pos > 0:
                pt = xs_pos * y + xs_neg * (1 - y)
                loss *= (1 - pt) ** (gamma_pos * y + gamma_neg * (1 - y))
            row.append(-loss)
        out.append(row)
    return out


ASL_SETTINGS = [
    {},
    {"clip": 0.0},
    {"gamma_neg": 0.0, "gamma_pos": 0.0, "clip": 0.0},
    {"gamma_neg": 2.0, "gamma_pos": 0.0, "clip": 0.2},
    {"gamma_neg": 0.0, "gamma_pos": 2.0},
    {"eps": 1e-3},
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kw", ASL_SETTINGS)
def test_asymmetric_matches_the_reference_and_its_sum(seed, kw):
    logits, targets = data(seed, scale=4.0)
    expected = slow_asymmetric(logits, targets, **kw)
    check_reductions("asymmetric", kw, logits, targets, expected, rtol=1e-6, atol=1e-9)
    # The reference returns -loss.sum(): our sum, and our mean times N L.
    reference = sum(sum(row) for row in expected)
    n, l = logits.shape
    close(make("asymmetric", **kw)(logits, targets) * n * l, reference, rtol=1e-6)


def test_asymmetric_floors_the_log_as_the_reference():
    # sigmoid(-30) < eps = 1e-8: the log is capped at log eps, as the reference, and only the weight (1 - p)
    # still moves: d/dz [-(1 - p) log eps] = p (1 - p) log eps.
    logits = torch.tensor([[-30.0, 30.0]], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    values = make("asymmetric", num_classes=2, reduction="none")(logits, targets)
    close(values, slow_asymmetric(logits.detach(), targets), rtol=1e-6)
    assert values[0, 0].item() == pytest.approx(-math.log(1e-8))
    values.sum().backward()
    p = sigmoid(-30.0)
    assert logits.grad[0, 0].item() == pytest.approx(p * (1 - p) * math.log(1e-8), rel=1e-9)
    assert torch.isfinite(logits.grad).all()


# ----------------------------------------------------------------- zlpr


def slow_zlpr(logits, targets):
    out = []
    for zr, tr in zip(logits.tolist(), targets.tolist(), strict=True):
        neg = sum(math.exp(z) for z, t in zip(zr, tr, strict=True) if t == 0)
        pos = sum(math.exp(-z) for z, t in zip(zr, tr, strict=True) if t == 1)
        out.append(math.log(1 + neg) + math.log(1 + pos))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zlpr_matches_formula(seed):
    logits, targets = data(seed, n=8)
    targets[0] = 0.0  # no positive
    targets[1] = 1.0  # no negative
    check_reductions("zlpr", {}, logits, targets, slow_zlpr(logits, targets))


def test_zlpr_on_one_label_is_bce():
    # log(1 + e^z) for a negative and log(1 + e^-z) for a positive: the logistic loss.
    logits, targets = data(7, n=10, l=1)
    close(make("zlpr", num_classes=1, reduction="none")(logits, targets),
          F.binary_cross_entropy_with_logits(logits, targets, reduction="none").squeeze(1))


# ----------------------------------------------------------------- two_way


def slow_two_way(logits, targets, tp=4.0, tn=1.0):
    def ell(pos: list[float], neg: list[float]) -> float:
        hard_pos = tp * math.log(sum(math.exp(-z / tp) for z in pos))
        hard_neg = tn * math.log(sum(math.exp(z / tn) for z in neg)) if neg else -math.inf
        s = hard_neg + hard_pos
        return 0.0 if s == -math.inf else math.log1p(math.exp(s))

    z, t = logits.tolist(), targets.tolist()
    n, l = len(z), len(z[0])
    rows = [(list(range(l)), i) for i in range(n)]
    samples = [ell([z[i][j] for j in js if t[i][j] == 1], [z[i][j] for j in js if t[i][j] == 0])
               for js, i in rows if any(t[i][j] == 1 for j in js)]
    labels = [ell([z[i][j] for i in range(n) if t[i][j] == 1], [z[i][j] for i in range(n) if t[i][j] == 0])
              for j in range(l) if any(t[i][j] == 1 for i in range(n))]
    return sum(samples) / len(samples) + sum(labels) / len(labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tp, tn", [(4.0, 1.0), (1.0, 1.0), (0.5, 3.0)])
def test_two_way_matches_formula(seed, tp, tn):
    logits, targets = data(seed, n=7)
    targets[0] = 0.0  # a sample without positives is left out of the sample-wise mean
    targets[1] = 1.0  # a sample without negatives costs 0 there
    targets[:, 2] = 0.0  # a label without positives is left out of the label-wise mean
    loss = make("two_way", pos_temperature=tp, neg_temperature=tn)
    close(loss(logits, targets), slow_two_way(logits, targets, tp, tn))


def test_two_way_takes_no_reduction():
    with pytest.raises(InvalidParameterError, match="takes no reduction"):
        make("two_way", reduction="sum")


# ----------------------------------------------------------------- shared properties


def extremes(dtype):
    logits, targets = data(8, n=8, dtype=dtype)
    sign = torch.where(torch.rand(logits.shape, generator=torch.Generator().manual_seed(1)) > 0.5, 1.0, -1.0)
    return {
        "+-1e4": (1e4 * sign.to(dtype), targets),
        "all 0": (torch.zeros_like(logits), targets),
        "confidently wrong": (1e4 * (1 - 2 * targets), targets),
        "no positives": (logits, torch.zeros_like(targets)),
        "all positives": (logits, torch.ones_like(targets)),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, kw", SETTINGS, ids=IDS)
def test_extreme_logits_give_finite_values_and_gradients(name, kw, dtype):
    loss = make(name, **kw)
    for case, (logits, targets) in extremes(dtype).items():
        logits = logits.clone().requires_grad_(True)
        value = loss(logits, targets)
        assert value.ndim == 0 and torch.isfinite(value), (case, value)
        value.backward()
        assert torch.isfinite(logits.grad).all(), case


@pytest.mark.parametrize("name, kw", SETTINGS, ids=IDS)
def test_gradcheck_float64(name, kw):
    logits, targets = data(9, n=5)
    logits.requires_grad_(True)
    loss = make(name, **kw)
    assert torch.autograd.gradcheck(lambda z: loss(z, targets), (logits,), eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("name, kw", SETTINGS, ids=IDS)
def test_bf16_autocast_runs_in_float32(name, kw):
    logits, targets = data(10, dtype=torch.float32)
    logits.requires_grad_(True)
    loss = make(name, **kw)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(logits.to(torch.bfloat16), targets)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    close(value, loss(logits.detach().to(torch.bfloat16).float(), targets), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kw", [s for s in SETTINGS if ENTRIES[s[0]].elementwise],
                         ids=[i for i, s in zip(IDS, SETTINGS, strict=True) if ENTRIES[s[0]].elementwise])
def test_reductions_agree(name, kw):
    logits, targets = data(11)
    none = make(name, reduction="none", **kw)(logits, targets)
    assert none.shape in ((6, L), (6,))
    close(make(name, reduction="sum", **kw)(logits, targets), none.sum())
    close(make(name, reduction="mean", **kw)(logits, targets), none.mean())


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_wrong_targets_raise_value_error(name):
    logits, targets = data(12)
    loss = make(name)
    with pytest.raises(ValueError, match="do not match"):
        loss(logits, torch.arange(6) % L)  # class labels, not 0/1 per label
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loss(logits, 2 * targets)
    with pytest.raises(ValueError, match="one logit per label"):
        make(name, num_classes=L + 1)(logits, targets)


def test_integer_and_bool_targets_are_read_as_floats():
    logits, targets = data(13)
    expected = make("bce")(logits, targets)
    close(make("bce")(logits, targets.long()), expected)
    close(make("bce")(logits, targets.bool()), expected)
