"""Kendall's tau with a bootstrap interval, against scipy.stats.kendalltau and scipy.stats.bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from losszoo.landscape.correlate import kendall_tau_with_ci


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_tau_is_scipys_tau_b(seed, ties):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=25)
    y = 0.5 * x + rng.normal(size=25)
    if ties:  # rounded: many ties in both variables
        x, y = np.round(x), np.round(y * 2) / 2
    result = kendall_tau_with_ci(x, y, n_boot=50, seed=seed)
    assert result.tau == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert result.n == 25 and result.n_boot == 50


def test_the_interval_is_scipys_percentile_bootstrap_over_pairs():
    rng = np.random.default_rng(7)
    x = rng.normal(size=30)
    y = 0.6 * x + rng.normal(size=30)
    ours = kendall_tau_with_ci(x, y, n_boot=4000, seed=0)
    theirs = stats.bootstrap((x, y), lambda a, b: stats.kendalltau(a, b).statistic, paired=True, vectorized=False,
                             n_resamples=4000, method="percentile", confidence_level=0.95,
                             random_state=np.random.default_rng(1)).confidence_interval
    # two independent draws of 4000 resamples: the quantiles agree to a few hundredths
    assert ours.low == pytest.approx(theirs.low, abs=0.04)
    assert ours.high == pytest.approx(theirs.high, abs=0.04)
    assert ours.low < ours.tau < ours.high


def test_the_interval_is_reproducible_and_narrows_with_more_pairs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    wide = kendall_tau_with_ci(x[:20], y[:20], n_boot=500, seed=4)
    assert wide == kendall_tau_with_ci(x[:20], y[:20], n_boot=500, seed=4)
    narrow = kendall_tau_with_ci(x, y, n_boot=500, seed=4)
    assert narrow.high - narrow.low < wide.high - wide.low


def test_a_perfect_ranking_has_tau_one_and_a_degenerate_interval():
    result = kendall_tau_with_ci([1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60], n_boot=200)
    assert (result.tau, result.low, result.high) == (1.0, 1.0, 1.0)
    reversed_ = kendall_tau_with_ci([1, 2, 3, 4], [4, 3, 2, 1], n_boot=200)
    assert reversed_.tau == -1.0


def test_missing_values_are_left_out_and_too_few_pairs_give_nan():
    x = [1.0, 2.0, float("nan"), 4.0, 5.0]
    y = [2.0, 1.0, 3.0, float("inf"), 6.0]
    result = kendall_tau_with_ci(x, y, n_boot=100)
    assert result.n == 3
    assert result.tau == pytest.approx(stats.kendalltau([1, 2, 5], [2, 1, 6]).statistic)
    assert math.isnan(kendall_tau_with_ci([1.0], [2.0]).tau)
    constant = kendall_tau_with_ci([1, 1, 1, 1], [1, 2, 3, 4], n_boot=100)
    assert math.isnan(constant.tau) and math.isnan(constant.low)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="paired"):
        kendall_tau_with_ci([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="confidence"):
        kendall_tau_with_ci([1, 2, 3], [1, 2, 3], confidence=1.5)
