"""The Hessian's spectrum against exact answers: a dense Hessian from ``torch.autograd.functional.hessian``
and its eigenvalues from ``numpy.linalg.eigvalsh`` on a tiny network.

- top-k (Lanczos) and lambda_max (power iteration) against eigvalsh, within 1%;
- stochastic Lanczos quadrature: its moments against ``v^T H^p v``, its nodes against the exact
  eigenvalues when it runs to the full dimension, the density's integral and mean, the negative share
  against the exact fraction of eigenvalues below the threshold;
- the plan with ``--top-k`` stays inside the budget.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from losszoo.landscape import NEGATIVE_FRACTION, is_saddle
from losszoo.landscape.hessian import extreme_eigenvalues, hessian_products, hutchinson_trace
from losszoo.landscape.measure import Plan, Timing, estimated_seconds, measure_surface, plan_for
from losszoo.landscape.spectrum import lanczos, quadrature, spectral_density, top_eigenvalues
from losszoo.landscape.surface import Surface


def small_network(seed: int, hidden: int = 6, dtype=torch.float64):
    """A 4-hidden-3 tanh network with cross-entropy on random data, away from any minimum (both signs of
    curvature), in ``dtype``, and its dense Hessian (always computed in float64)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 3)).double()
    x = torch.randn(60, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (60,))
    names = [n for n, _ in net.named_parameters()]
    space64 = Surface(list(net.parameters()), lambda: None).space

    def loss_at(flat: torch.Tensor) -> torch.Tensor:
        params = dict(zip(names, space64.split(flat), strict=True))
        return nn.functional.cross_entropy(functional_call(net, params, (x,)), y)

    hessian = torch.autograd.functional.hessian(loss_at, space64.get()).numpy()
    net, x = net.to(dtype), x.to(dtype)
    surface = Surface(list(net.parameters()), lambda: (nn.functional.cross_entropy(net(x), y), None))
    return surface, hessian


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_top_k_and_lambda_max_agree_with_the_dense_hessian(seed, dtype):
    surface, hessian = small_network(seed, dtype=dtype)
    exact = np.linalg.eigvalsh(hessian)[::-1]  # largest first
    with hessian_products(surface.loss, surface.space) as (hvp, _):
        top = top_eigenvalues(hvp, surface.space, 5, torch.Generator().manual_seed(0))
        largest, _ = extreme_eigenvalues(hvp, surface.space, torch.Generator().manual_seed(1), 200, 1e-6)
    assert top.converged and top.products > 0
    np.testing.assert_allclose(top.values, exact[:5], rtol=0.01)
    assert largest.value == pytest.approx(exact[0], rel=0.01)
    assert top.values[0] == pytest.approx(largest.value, rel=0.01)


def test_top_k_must_be_smaller_than_the_dimension():
    from losszoo.errors import LosszooError

    surface, _ = small_network(0)
    with hessian_products(surface.loss, surface.space) as (hvp, _), pytest.raises(LosszooError, match="--top-k"):
        top_eigenvalues(hvp, surface.space, surface.space.dim, torch.Generator())


def test_quadrature_moments_equal_the_hessian_powers():
    """Gauss quadrature from m Lanczos steps is exact for polynomials of degree < 2m:
    sum_j tau_j theta_j^p = v^T H^p v / v^T v."""
    surface, hessian = small_network(2)
    start = surface.space.gaussian_unit(torch.Generator().manual_seed(4))
    v = start.numpy()
    with hessian_products(surface.loss, surface.space) as (hvp, _):
        nodes, weights = quadrature(*lanczos(hvp, surface.space, start, steps=6))
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    power = np.eye(len(v))
    for p in range(12):
        assert (weights * nodes ** p).sum() == pytest.approx(v @ power @ v / (v @ v), rel=1e-8, abs=1e-12), p
        power = power @ hessian


def test_lanczos_to_the_full_dimension_finds_every_eigenvalue():
    """A Krylov space sees each distinct eigenvalue once (cross-entropy's shift invariance makes 0 a
    repeated one), so the nodes are the distinct eigenvalues."""
    surface, hessian = small_network(3, hidden=3)
    exact = np.linalg.eigvalsh(hessian)
    tol = 1e-7 * np.abs(exact).max()
    distinct = [exact[0]] + [b for a, b in zip(exact, exact[1:], strict=False) if b - a > tol]
    with hessian_products(surface.loss, surface.space) as (hvp, _):
        nodes, _ = quadrature(*lanczos(hvp, surface.space, surface.space.gaussian_unit(
            torch.Generator().manual_seed(0)), steps=surface.space.dim))
    assert len(distinct) < len(exact)  # the repeated eigenvalue the test is about
    assert len(nodes) == len(distinct)
    np.testing.assert_allclose(np.sort(nodes), distinct, atol=tol)


def test_the_density_integrates_to_one_and_its_mean_is_the_trace_over_n():
    surface, hessian = small_network(0, hidden=8)
    n = surface.space.dim
    with hessian_products(surface.loss, surface.space) as (hvp, _):
        density = spectral_density(hvp, surface.space, torch.Generator().manual_seed(0), probes=40, steps=20)
        trace = hutchinson_trace(hvp, surface.space, torch.Generator().manual_seed(2), samples=200)
    grid, values = np.asarray(density.grid), np.asarray(density.density)
    assert np.trapezoid(values, grid) == pytest.approx(1.0, abs=1e-6)
    mean = np.trapezoid(grid * values, grid)
    assert mean == pytest.approx(density.mean, rel=1e-6, abs=1e-9)
    exact = np.trace(hessian) / n
    assert abs(density.mean - exact) <= 3 * density.mean_se
    # and it agrees with Hutchinson's estimate within the two standard errors
    assert abs(density.mean - trace.mean / n) <= 3 * math.hypot(density.mean_se, trace.se / n)
    for w in density.weights:
        assert sum(w) == pytest.approx(1.0, abs=1e-9)


def test_the_negative_share_is_the_fraction_of_eigenvalues_below_the_threshold():
    surface, hessian = small_network(1, hidden=5)
    exact = np.linalg.eigvalsh(hessian)
    threshold = -NEGATIVE_FRACTION * exact.max()
    assert (exact < threshold).any()  # the test needs some negative curvature
    with hessian_products(surface.loss, surface.space) as (hvp, _):
        density = spectral_density(hvp, surface.space, torch.Generator().manual_seed(0), probes=120,
                                   steps=surface.space.dim, lambda_max=float(exact.max()))
    assert density.threshold == pytest.approx(threshold)
    want = (exact < threshold).mean()
    # each probe weighs eigenvalue i by (v . u_i)^2, whose mean is 1/n: the share is unbiased, with a
    # spread of about sqrt(want * 2 / n / probes) for Gaussian probes; 5 of those is plenty
    spread = math.sqrt(2 * want / len(exact) / 120)
    assert density.negative_share == pytest.approx(want, abs=5 * spread)


def test_a_saddle_is_below_one_percent_of_lambda_max():
    assert is_saddle(-0.02, 1.0) and not is_saddle(-0.005, 1.0) and not is_saddle(0.0, 1.0)


def test_the_plan_with_top_k_stays_inside_the_budget_and_grows_with_it():
    timing = Timing(forward=0.01, hvp=0.03)
    small, large = plan_for(timing, 10, top_k=5), plan_for(timing, 120, top_k=5)
    assert small.top_k == large.top_k == 5
    assert (small.spectrum_probes, small.lanczos_steps) <= (large.spectrum_probes, large.lanczos_steps)
    assert large.spectrum_probes * large.lanczos_steps > 90
    for budget in (10, 30, 60, 120):
        assert estimated_seconds(plan_for(timing, budget, top_k=5), timing) <= 0.85 * budget
    assert plan_for(timing, 60).top_k == 0 and plan_for(timing, 60).spectrum_probes == 0


def test_measure_surface_with_top_k_keeps_the_weights_and_reports_the_spectrum():
    surface, hessian = small_network(0, dtype=torch.float32)
    before = surface.space.get()
    measured = measure_surface(surface, Plan(trace_samples=4, profile_points=3, top_k=3, spectrum_probes=4,
                                             lanczos_steps=12))
    assert torch.equal(surface.space.get(), before)
    exact = np.linalg.eigvalsh(hessian)[::-1]
    np.testing.assert_allclose(measured["spectrum"]["top_k"]["values"], exact[:3], rtol=0.01)
    assert 0 <= measured["summary"]["negative_share"] <= 1
    assert measured["saddle"] == is_saddle(measured["summary"]["lambda_min"], measured["summary"]["lambda_max"])
