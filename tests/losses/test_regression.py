"""Regression losses: reference values against torch.nn.functional, kornia, sklearn and slow formulas,
Barron's identities, gradcheck away from kinks, and extreme residuals."""

from __future__ import annotations

import math

import kornia.losses as KL
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate
from sklearn.metrics import mean_absolute_percentage_error, mean_squared_log_error

import losszoo
from losszoo.losses.regression import barron_log_partition, barron_loss, gaussian_nll_loss

f64 = torch.float64
REGRESSION = [
    "mse", "mae", "huber", "smooth_l1", "log_cosh", "quantile", "msle", "mape", "poisson_nll", "gaussian_nll",
    "charbonnier", "cauchy", "welsch", "geman_mcclure", "tukey", "barron",
]
VALUES = [n for n in REGRESSION if n != "gaussian_nll"]
REDUCTIONS = ("mean", "sum", "none")


def close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-7, atol=1e-10)


def pair(seed: int, n: int = 7, spread: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return spread * torch.randn(n, generator=g, dtype=f64), spread * torch.randn(n, generator=g, dtype=f64)


def per_element(fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A slow reference: ``fn(float x_i, float y_i)`` for every element, in Python floats."""
    return torch.tensor([fn(a, b) for a, b in zip(x.tolist(), y.tolist(), strict=True)], dtype=f64)


def test_every_regression_loss_is_registered_with_its_input_kind():
    assert set(REGRESSION) <= set(losszoo.list_losses(family="regression"))
    for name in REGRESSION:
        spec = losszoo.loss_spec(name)
        assert spec.elementwise and spec.target_kind == "values"
        assert spec.input == ("mean_var" if name == "gaussian_nll" else "values")


# ----------------------------------------------------------------------------- torch.nn.functional references

TORCH_CASES = [
    ("mse", {}, lambda x, y, r: F.mse_loss(x, y, reduction=r)),
    ("mae", {}, lambda x, y, r: F.l1_loss(x, y, reduction=r)),
    ("huber", {"delta": 0.5}, lambda x, y, r: F.huber_loss(x, y, delta=0.5, reduction=r)),
    ("huber", {"delta": 2.5}, lambda x, y, r: F.huber_loss(x, y, delta=2.5, reduction=r)),
    ("smooth_l1", {"beta": 0.0}, lambda x, y, r: F.smooth_l1_loss(x, y, beta=0.0, reduction=r)),
    ("smooth_l1", {"beta": 0.7}, lambda x, y, r: F.smooth_l1_loss(x, y, beta=0.7, reduction=r)),
    ("smooth_l1", {"beta": 3.0}, lambda x, y, r: F.smooth_l1_loss(x, y, beta=3.0, reduction=r)),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("name", "kw", "reference"), TORCH_CASES)
def test_equals_torch_functional(name, kw, reference, seed):
    x, y = pair(seed)
    for reduction in REDUCTIONS:
        close(losszoo.create_loss(name, reduction=reduction, **kw)(x, y), reference(x, y, reduction))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_nll_equals_torch(log_input, full, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(9, generator=g, dtype=f64)
    if not log_input:
        x = x.exp()
    y = torch.poisson(3.0 * torch.rand(9, generator=g, dtype=f64), generator=g)  # counts, several 0 and 1
    for reduction in REDUCTIONS:
        loss = losszoo.create_loss("poisson_nll", log_input=log_input, full=full, reduction=reduction)
        close(loss(x, y), F.poisson_nll_loss(x, y, log_input=log_input, full=full, reduction=reduction))


def test_poisson_nll_equals_torch_up_to_its_overflow_point_and_stays_finite_beyond():
    loss = losszoo.create_loss("poisson_nll", reduction="none")
    x32 = torch.tensor([40.0, 44.0, -80.0])
    y32 = torch.tensor([3.0, 0.0, 2.0])
    close(loss(x32, y32), F.poisson_nll_loss(x32, y32, reduction="none"))
    x = torch.tensor([1e4, 500.0], requires_grad=True)
    assert not torch.isfinite(F.poisson_nll_loss(x.detach(), torch.ones(2), reduction="none")).any()
    value = loss(x, torch.ones(2))
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(x.grad).all() and (x.grad > 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("eps", [1e-6, 0.3])
def test_gaussian_nll_equals_torch(seed, full, eps):
    g = torch.Generator().manual_seed(seed)
    output = 2.0 * torch.randn(8, 2, generator=g, dtype=f64)
    y = torch.randn(8, generator=g, dtype=f64)
    var = F.softplus(output[:, 1]) + eps
    for reduction in REDUCTIONS:
        loss = losszoo.create_loss("gaussian_nll", full=full, eps=eps, reduction=reduction)
        close(loss(output, y), F.gaussian_nll_loss(output[:, 0], y, var, full=full, eps=eps, reduction=reduction))
    torch.testing.assert_close(loss.predict(output), output[:, 0])
    torch.testing.assert_close(loss.variance(output), var)


@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_functional_equals_torch_in_value_and_gradient_below_eps(full):
    mean, y = pair(3, n=6)
    var = torch.tensor([1e-9, 0.05, 0.5, 1.0, 4.0, 1e-3], dtype=f64)
    m1, v1 = mean.clone().requires_grad_(), var.clone().requires_grad_()
    m2, v2 = mean.clone().requires_grad_(), var.clone().requires_grad_()
    ours = gaussian_nll_loss(m1, y, v1, full=full, eps=0.01)
    theirs = F.gaussian_nll_loss(m2, y, v2, full=full, eps=0.01)
    close(ours, theirs)
    ours.backward()
    theirs.backward()
    close(m1.grad, m2.grad)
    close(v1.grad, v2.grad)


# ----------------------------------------------------------------------------- kornia references

KORNIA = {
    "charbonnier": KL.charbonnier_loss,
    "cauchy": KL.cauchy_loss,
    "welsch": KL.welsch_loss,
    "geman_mcclure": KL.geman_mcclure_loss,
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("spread", [0.1, 3.0, 300.0])
@pytest.mark.parametrize("name", list(KORNIA))
def test_robust_losses_equal_kornia(name, spread, seed):
    x, y = pair(seed, spread=spread)
    for reduction in REDUCTIONS:
        close(losszoo.create_loss(name, reduction=reduction)(x, y), KORNIA[name](x, y, reduction=reduction))


@pytest.mark.parametrize("scale", [0.25, 3.0])
@pytest.mark.parametrize("name", list(KORNIA))
def test_robust_loss_scale_is_kornia_on_rescaled_inputs(name, scale):
    # kornia has no scale; its documented convention is to pass img1 / c and img2 / c.
    x, y = pair(4)
    loss = losszoo.create_loss(name, scale=scale, reduction="none")
    close(loss(x, y), KORNIA[name](x / scale, y / scale, reduction="none"))


# ----------------------------------------------------------------------------- slow formulas


def slow_log_cosh(a, b):
    return math.log(math.cosh(a - b))


def test_log_cosh_keeps_float64_precision_for_negative_residuals():
    # r + softplus(-2r) - log 2 with softplus linear only above 40: log1p(e^-40) is below float64's precision.
    r = torch.linspace(-45.0, 45.0, 181, dtype=f64)
    value = losszoo.create_loss("log_cosh", reduction="none")(r, torch.zeros_like(r))
    torch.testing.assert_close(value, per_element(slow_log_cosh, r, torch.zeros_like(r)), rtol=1e-14, atol=1e-300)


def test_charbonnier_keeps_its_digits_for_small_residuals():
    # sqrt(r^2 + 1) - 1 cancels to nothing in float32 below r ~ 3e-4; the loss is r^2 / 2 there.
    r = torch.tensor([1e-8, 1e-5, 3e-4, 0.1, 2.0, 1e3])
    for dtype in (torch.float32, f64):
        value = losszoo.create_loss("charbonnier", reduction="none")(r.to(dtype), torch.zeros(6, dtype=dtype))
        expected = per_element(lambda a, b: (a - b) ** 2 / (math.sqrt((a - b) ** 2 + 1) + 1), r.double(), r * 0)
        tolerance = 1e-6 if dtype == torch.float32 else 1e-14
        torch.testing.assert_close(value.double(), expected, rtol=tolerance, atol=0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("spread", [1e-3, 1.0, 30.0])
def test_log_cosh_equals_formula(seed, spread):
    x, y = pair(seed, spread=spread)
    close(losszoo.create_loss("log_cosh", reduction="none")(x, y), per_element(slow_log_cosh, x, y))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("q", [0.05, 0.5, 0.9])
def test_quantile_equals_pinball_formula(q, seed):
    def pinball(a, b):
        return q * (b - a) if b >= a else (1 - q) * (a - b)

    x, y = pair(seed)
    close(losszoo.create_loss("quantile", q=q, reduction="none")(x, y), per_element(pinball, x, y))


def test_quantile_at_one_half_is_half_the_absolute_error():
    x, y = pair(5)
    close(losszoo.create_loss("quantile", q=0.5)(x, y), 0.5 * F.l1_loss(x, y))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_msle_equals_formula_and_sklearn(seed):
    g = torch.Generator().manual_seed(seed)
    x, y = 5.0 * torch.rand(7, generator=g, dtype=f64), 5.0 * torch.rand(7, generator=g, dtype=f64)
    x[0] = -0.5  # still inside the domain (> -1)
    close(
        losszoo.create_loss("msle", reduction="none")(x, y),
        per_element(lambda a, b: (math.log(1 + a) - math.log(1 + b)) ** 2, x, y),
    )
    x[0] = 0.5  # sklearn takes non-negative values only
    close(losszoo.create_loss("msle")(x, y), torch.tensor(mean_squared_log_error(y.numpy(), x.numpy()), dtype=f64))


def test_msle_prediction_below_minus_one_is_finite_and_pushed_back():
    x = torch.tensor([-1.0, -5.0, -1e4], requires_grad=True)
    value = losszoo.create_loss("msle", reduction="sum")(x, torch.ones(3))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all() and (x.grad < 0).all()


def test_msle_target_outside_domain_raises():
    with pytest.raises(ValueError, match="> -1"):
        losszoo.create_loss("msle")(torch.zeros(2), torch.tensor([0.0, -1.0]))
    with pytest.raises(ValueError, match="> -1"):  # also when a prediction is outside too
        losszoo.create_loss("msle")(torch.tensor([-3.0, 0.0]), torch.tensor([0.0, -1.0]))


def test_msle_tangent_takes_over_just_below_its_point_and_only_there():
    # Predictions on both sides of -1 + 1e-6 in one batch: log1p above that point, its tangent line below it.
    x0 = -1.0 + 1e-6

    def log1p_extended(a):
        return math.log1p(a) if a >= x0 else math.log1p(x0) + (a - x0) / (1.0 + x0)

    def slope(a):
        return 1.0 / (1.0 + a) if a >= x0 else 1.0 / (1.0 + x0)

    pairs = [(x0 + 1e-9, 0.5), (x0 - 1e-9, 0.5), (-2.0, 2.0), (3.0, -0.5)]
    x = torch.tensor([a for a, _ in pairs], dtype=f64, requires_grad=True)
    value = losszoo.create_loss("msle", reduction="none")(x, torch.tensor([b for _, b in pairs], dtype=f64))
    value.sum().backward()
    expected = [(log1p_extended(a) - math.log1p(b)) ** 2 for a, b in pairs]
    expected_grad = [2 * (log1p_extended(a) - math.log1p(b)) * slope(a) for a, b in pairs]
    assert value.tolist() == pytest.approx(expected, rel=1e-12)
    assert x.grad.tolist() == pytest.approx(expected_grad, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mape_equals_formula_and_sklearn(seed):
    x, y = pair(seed)
    y[0] = 0.0  # the floor eps in the denominator, as in sklearn
    x[0] = 1e-300
    close(
        losszoo.create_loss("mape", reduction="none")(x, y),
        per_element(lambda a, b: abs(a - b) / max(abs(b), 2.220446049250313e-16), x, y),
    )
    expected = mean_absolute_percentage_error(y.numpy(), x.numpy())
    close(losszoo.create_loss("mape")(x, y), torch.tensor(expected, dtype=f64))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("c", [0.5, 4.685, 10.0])
def test_tukey_equals_biweight_formula(c, seed):
    def biweight(a, b):
        r = a - b
        return c * c / 6 * (1 - (1 - (r / c) ** 2) ** 3) if abs(r) <= c else c * c / 6

    x, y = pair(seed, spread=c)
    close(losszoo.create_loss("tukey", c=c, reduction="none")(x, y), per_element(biweight, x, y))


# ----------------------------------------------------------------------------- Barron


def slow_barron(r: float, alpha: float, c: float) -> float:
    """Barron (2019) eq. 1, written as in the paper (alpha not in {0, 2, -inf})."""
    b = abs(alpha - 2)
    return b / alpha * (((r / c) ** 2 / b + 1) ** (alpha / 2) - 1)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("alpha", [-7.0, -2.0, -0.5, 0.3, 1.0, 1.5, 1.9])
@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_barron_equals_paper_formula(alpha, scale, seed):
    x, y = pair(seed)
    loss = losszoo.create_loss("barron", alpha=alpha, scale=scale, reduction="none")
    close(loss(x, y), per_element(lambda a, b: slow_barron(a - b, alpha, scale), x, y))


# Barron's identities at scale 1. kornia's charbonnier, cauchy, geman_mcclure and welsch use Barron's scaling
# constants exactly (sqrt(r^2+1)-1, log(r^2/2+1), 2r^2/(r^2+4), 1-exp(-r^2/2)), so each identity is checked
# against the closed form here and against kornia (through our robust losses) below.
BARRON_LIMITS = {
    2.0: lambda r: 0.5 * r * r,
    1.0: lambda r: math.sqrt(r * r + 1) - 1,
    0.0: lambda r: math.log(0.5 * r * r + 1),
    -2.0: lambda r: 2 * r * r / (r * r + 4),
    -math.inf: lambda r: 1 - math.exp(-0.5 * r * r),
}


@pytest.mark.parametrize("spread", [0.01, 1.0, 50.0])
@pytest.mark.parametrize("alpha", list(BARRON_LIMITS))
def test_barron_identities_at_scale_one(alpha, spread):
    x, y = pair(6, spread=spread)
    value = losszoo.create_loss("barron", alpha=alpha, reduction="none")(x, y)
    close(value, per_element(lambda a, b: BARRON_LIMITS[alpha](a - b), x, y))


@pytest.mark.parametrize(("alpha", "name"), [(1.0, "charbonnier"), (0.0, "cauchy"), (-2.0, "geman_mcclure"),
                                             (-math.inf, "welsch")])
def test_barron_equals_kornia_robust_losses(alpha, name):
    x, y = pair(7)
    close(losszoo.create_loss("barron", alpha=alpha, reduction="none")(x, y), KORNIA[name](x, y))
    close(losszoo.create_loss("barron", alpha=alpha, scale=2.0)(x, y), losszoo.create_loss(name, scale=2.0)(x, y))


@pytest.mark.parametrize(("alpha", "near"), [(2.0, 2.0 - 1e-7), (0.0, 1e-9), (0.0, -1e-9), (-math.inf, -1e7)])
def test_barron_special_cases_are_the_limits(alpha, near):
    x, y = pair(8)
    limit = losszoo.create_loss("barron", alpha=alpha, reduction="none")(x, y)
    torch.testing.assert_close(losszoo.create_loss("barron", alpha=near, reduction="none")(x, y), limit,
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("alpha", "expected"), [
    (0.0, math.log(math.pi * math.sqrt(2))),
    (1.0, math.log(2 * math.e * torch.special.modified_bessel_k1(torch.tensor(1.0, dtype=f64)).item())),
    (2.0, 0.5 * math.log(2 * math.pi)),
])
def test_barron_log_partition_closed_forms(alpha, expected):
    close(barron_log_partition(torch.tensor(alpha, dtype=f64)), torch.tensor(expected, dtype=f64))


@pytest.mark.parametrize("alpha", [0.001, 0.3, 1.3, 1.99])
def test_barron_log_partition_equals_scipy_quadrature(alpha):
    def density(r):
        return math.exp(-slow_barron(r, alpha, 1.0))

    half, _ = integrate.quad(density, 0, math.inf, epsabs=0, epsrel=1e-12, limit=500)
    close(barron_log_partition(torch.tensor(alpha, dtype=f64)), torch.tensor(math.log(2 * half), dtype=f64))


def test_adaptive_barron_learns_alpha_inside_its_bounds():
    loss = losszoo.create_loss("barron", alpha=0.7, scale=1.5, adaptive=True, alpha_lo=0.2, alpha_hi=1.8)
    assert [name for name, _ in loss.named_parameters()] == ["latent_alpha"]
    assert abs(loss.alpha.item() - 0.7) < 1e-6
    x, y = pair(9)
    value = loss(x.float(), y.float())
    value.backward()
    assert loss.latent_alpha.grad is not None and torch.isfinite(loss.latent_alpha.grad)
    with torch.no_grad():
        for latent in (-1e4, 1e4):
            loss.latent_alpha.fill_(latent)
            assert torch.tensor(0.2) <= loss.alpha <= torch.tensor(1.8)  # the bounds as float32
            assert torch.isfinite(loss(x.float(), y.float()))


def test_adaptive_barron_is_a_normalised_negative_log_likelihood():
    loss = losszoo.create_loss("barron", alpha=1.3, scale=1.7, adaptive=True, reduction="none").double()
    r = torch.linspace(-200.0, 200.0, 40_001, dtype=f64)  # the density beyond |r| = 200 is below exp(-300)
    density = torch.exp(-loss(r, torch.zeros_like(r)))
    assert abs(torch.trapezoid(density, r).item() - 1.0) < 1e-7
    alpha = loss.alpha.item()
    log_z = barron_log_partition(torch.tensor(alpha, dtype=f64)).item()
    residuals = [-3.0, 0.5, 20.0]
    expected = torch.tensor([slow_barron(v, alpha, 1.7) + math.log(1.7) + log_z for v in residuals], dtype=f64)
    close(loss(torch.tensor(residuals, dtype=f64), torch.zeros(3, dtype=f64)), expected)


@pytest.mark.parametrize(("sampler", "direction"), [("normal", -1.0), ("cauchy", 1.0)])
def test_adaptive_barron_moves_alpha_toward_the_noise(sampler, direction):
    # Gaussian residuals are Barron's alpha = 2 at c = 1; Cauchy(0, sqrt 2) residuals are alpha = 0. Starting at
    # alpha = 1, the gradient on latent_alpha must point toward each; without log Z it would always raise the loss
    # by lowering alpha, whatever the data.
    g = torch.Generator().manual_seed(0)
    r = torch.randn(20_000, generator=g, dtype=f64)
    if sampler == "cauchy":
        r = math.sqrt(2) * torch.tan(math.pi * (torch.rand(20_000, generator=g, dtype=f64) - 0.5))
    loss = losszoo.create_loss("barron", alpha=1.0, adaptive=True).double()
    loss(r, torch.zeros_like(r)).backward()
    assert direction * loss.latent_alpha.grad.item() > 0.01


def test_adaptive_barron_rejects_inconsistent_bounds():
    with pytest.raises(losszoo.InvalidParameterError, match="alpha"):
        losszoo.create_loss("barron", alpha=1.95, adaptive=True, alpha_lo=0.5, alpha_hi=1.5)
    with pytest.raises(losszoo.InvalidParameterError, match="alpha_lo"):
        losszoo.create_loss("barron", alpha=1.0, adaptive=True, alpha_lo=1.5, alpha_hi=0.5)
    losszoo.create_loss("barron", alpha=-math.inf, alpha_lo=1.5, alpha_hi=0.5)  # bounds unused when fixed


# ----------------------------------------------------------------------------- gradcheck away from kinks

GRAD_CASES = [
    ("mse", {}),
    ("mae", {}),
    ("huber", {"delta": 0.8}),
    ("smooth_l1", {"beta": 0.8}),
    ("log_cosh", {}),
    ("quantile", {"q": 0.3}),
    ("msle", {}),
    ("mape", {}),
    ("poisson_nll", {}),
    ("poisson_nll", {"log_input": False, "full": True}),
    ("charbonnier", {"scale": 0.7}),
    ("cauchy", {}),
    ("welsch", {"scale": 2.0}),
    ("geman_mcclure", {}),
    ("tukey", {"c": 2.0}),
    ("barron", {"alpha": 2.0}),
    ("barron", {"alpha": 0.0, "scale": 0.5}),
    ("barron", {"alpha": -math.inf}),
    ("barron", {"alpha": -3.0}),
    ("barron", {"alpha": 1.4, "scale": 2.0}),
]


@pytest.mark.parametrize(("name", "kw"), GRAD_CASES, ids=lambda v: str(v))
def test_gradcheck(name, kw):
    # Residuals of magnitude 0.2 .. 1.5 with random signs: never 0 (mae, quantile), never at delta, beta or c.
    g = torch.Generator().manual_seed(0)
    r = (0.2 + 1.3 * torch.rand(6, generator=g, dtype=f64)) * torch.tensor([1, -1, 1, -1, 1, -1], dtype=f64)
    y = 1.0 + 2.0 * torch.rand(6, generator=g, dtype=f64)  # positive, for msle, mape and poisson counts
    x = (y + r).requires_grad_()
    loss = losszoo.create_loss(name, reduction="sum", **kw)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (x,))


@pytest.mark.parametrize("full", [False, True])
def test_gradcheck_gaussian_nll(full):
    g = torch.Generator().manual_seed(1)
    output = torch.randn(5, 2, generator=g, dtype=f64, requires_grad=True)
    y = torch.randn(5, generator=g, dtype=f64)
    loss = losszoo.create_loss("gaussian_nll", full=full)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (output,))


def test_gradcheck_adaptive_barron_in_input_and_alpha():
    loss = losszoo.create_loss("barron", alpha=0.6, scale=1.3, adaptive=True).double()
    x, y = pair(10, n=5)
    latent = loss.latent_alpha.detach().clone().requires_grad_()

    def value(inp, lat):
        with torch.no_grad():
            loss.latent_alpha.copy_(lat)
        alpha = loss.alpha_lo + (loss.alpha_hi - loss.alpha_lo) * torch.sigmoid(lat)
        return barron_loss(inp, y, alpha, 1.3) + math.log(1.3) + barron_log_partition(alpha)

    close(value(x, latent), loss(x, y))
    assert torch.autograd.gradcheck(value, (x.clone().requires_grad_(), latent))


# ----------------------------------------------------------------------------- extremes, bf16, shapes, bounds


def make(name: str, **kw):
    return losszoo.create_loss(name, **kw)


def model_output(name: str, values: torch.Tensor) -> torch.Tensor:
    return torch.stack([values, values.flip(0)], dim=1) if name == "gaussian_nll" else values


@pytest.mark.parametrize("dtype", [torch.float32, f64])
@pytest.mark.parametrize("name", REGRESSION + ["barron-adaptive"])
def test_extreme_inputs_give_finite_values_and_gradients(name, dtype):
    kw = {}
    if name == "barron-adaptive":
        name, kw = "barron", {"adaptive": True}
    loss = make(name, reduction="sum", **kw).to(dtype)
    x = model_output(name, torch.tensor([1e4, -1e4, 1e4, -1e4, 0.5], dtype=dtype)).requires_grad_()
    y = torch.tensor([0.0, 1.0, 1e4, 3.0, 2.0], dtype=dtype)
    value = loss(x, y)
    value.backward()
    assert torch.isfinite(value), name
    assert torch.isfinite(x.grad).all(), name
    for p in loss.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_log_cosh_is_linear_far_away():
    x = torch.tensor([1e4, -1e4], dtype=f64, requires_grad=True)
    value = make("log_cosh", reduction="none")(x, torch.zeros(2, dtype=f64))
    value.sum().backward()
    close(value, torch.full((2,), 1e4 - math.log(2), dtype=f64))
    close(x.grad, torch.tensor([1.0, -1.0], dtype=f64))


@pytest.mark.parametrize("name", REGRESSION + ["barron-adaptive"])
def test_bf16_autocast_forward_and_backward(name):
    kw = {}
    if name == "barron-adaptive":
        name, kw = "barron", {"adaptive": True}
    loss = make(name, **kw)
    layer = torch.nn.Linear(3, 2 if name == "gaussian_nll" else 1)
    g = torch.Generator().manual_seed(0)
    features, y = torch.randn(8, 3, generator=g), 1.0 + torch.rand(8, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(features)
        assert out.dtype == torch.bfloat16
        value = loss(out if name == "gaussian_nll" else out[:, 0], y)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", REGRESSION)
def test_reductions_agree(name):
    x, y = pair(11, n=6)
    y = y.abs() + 0.5
    x = model_output(name, x)
    none = make(name, reduction="none")(x, y)
    assert none.shape == (6,)
    close(make(name, reduction="sum")(x, y), none.sum())
    close(make(name, reduction="mean")(x, y), none.sum() / 6)


@pytest.mark.parametrize("name", VALUES)
def test_shape_mismatch_is_an_error_not_a_broadcast(name):
    with pytest.raises(ValueError, match="same shape"):
        make(name)(torch.ones(4, 1), torch.ones(4))


def test_gaussian_nll_needs_mean_and_variance_columns():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        make("gaussian_nll")(torch.ones(4), torch.ones(4))


def test_predict_gives_the_point_prediction():
    out = torch.tensor([0.0, math.log(3.0)])
    torch.testing.assert_close(make("mse").predict(out), out)
    torch.testing.assert_close(make("poisson_nll").predict(out), torch.tensor([1.0, 3.0]))
    torch.testing.assert_close(make("poisson_nll", log_input=False).predict(out), out)


@pytest.mark.parametrize(("name", "kw"), [
    ("huber", {"delta": 0.0}),
    ("smooth_l1", {"beta": -0.1}),
    ("quantile", {"q": 0.0}),
    ("quantile", {"q": 1.0}),
    ("mape", {"eps": 0.0}),
    ("poisson_nll", {"eps": 0.0}),
    ("gaussian_nll", {"eps": 0.0}),
    ("charbonnier", {"scale": 0.0}),
    ("cauchy", {"scale": -1.0}),
    ("welsch", {"scale": 0.0}),
    ("geman_mcclure", {"scale": 0.0}),
    ("tukey", {"c": 0.0}),
    ("barron", {"alpha": 2.5}),
    ("barron", {"scale": 0.0}),
    ("barron", {"alpha_lo": -0.1}),
    ("barron", {"alpha_hi": 2.1}),
    ("barron", {"adaptive": 1}),
])
def test_out_of_bounds_hyperparameters_are_rejected(name, kw):
    with pytest.raises(losszoo.InvalidParameterError) as info:
        make(name, **kw)
    assert info.value.parameter == next(iter(kw))
