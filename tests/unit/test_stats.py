"""Bootstrap intervals and the power-law fit on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from edtrain.stats import (
    bootstrap,
    bootstrap_difference,
    fit_power_law,
    mean_stat,
    median_stat,
    q68_stat,
)


def test_mean_interval_matches_the_normal_theory_width():
    x = np.random.default_rng(1).normal(10.0, 2.0, 20_000)
    interval = bootstrap(x, statistic=mean_stat, n_boot=1000, seed=2)
    half_width = 1.959964 * 2.0 / np.sqrt(x.size)
    assert interval.value == pytest.approx(x.mean())
    assert interval.lo < interval.value < interval.hi
    assert (interval.hi - interval.lo) / 2 == pytest.approx(half_width, rel=0.1)


def test_median_interval_matches_the_asymptotic_width():
    # the median of N(0, σ) has standard error σ·sqrt(π / 2n)
    x = np.random.default_rng(3).normal(0.0, 1.0, 20_000)
    interval = bootstrap(x, statistic=median_stat, n_boot=1000, seed=4)
    half_width = 1.959964 * np.sqrt(np.pi / (2 * x.size))
    assert (interval.hi - interval.lo) / 2 == pytest.approx(half_width, rel=0.15)


def test_intervals_cover_the_true_value_about_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    true_q68 = 68.0  # 68th percentile of U(0, 100)
    covered = 0
    trials = 200
    for seed in range(trials):
        x = rng.uniform(0, 100, 500)
        interval = bootstrap(x, statistic=q68_stat, n_boot=300, seed=seed)
        covered += interval.lo <= true_q68 <= interval.hi
    assert 0.88 <= covered / trials <= 0.99


def test_constant_data_gives_a_zero_width_interval():
    interval = bootstrap(np.full(100, 3.0), statistic=mean_stat, n_boot=50)
    assert (interval.value, interval.lo, interval.hi) == (3.0, 3.0, 3.0)


def test_paired_difference_cancels_shared_difficulty():
    rng = np.random.default_rng(6)
    difficulty = rng.exponential(50.0, 5000)
    a, b = difficulty + 1.0 + rng.normal(0, 0.5, 5000), difficulty
    paired = bootstrap_difference(a, b, mean_stat, paired=True, n_boot=500)
    unpaired = bootstrap_difference(a, b, mean_stat, paired=False, n_boot=500)
    assert paired.value == pytest.approx(1.0, abs=0.05)
    assert paired.excludes_zero and not unpaired.excludes_zero
    assert paired.hi - paired.lo < 0.1 * (unpaired.hi - unpaired.lo)


def test_paired_bootstrap_needs_equal_lengths():
    with pytest.raises(ValueError, match="equal length"):
        bootstrap(np.ones(3), np.ones(4), statistic=lambda a, b: a.mean(-1), n_boot=10)


def test_power_law_recovers_exact_parameters():
    n = np.array([1e4, 2e4, 5e4, 1e5])
    fit = fit_power_law(n, 200.0 * n**-0.12)
    assert fit.amplitude == pytest.approx(200.0)
    assert fit.exponent == pytest.approx(0.12)
    value, sigma = fit.predict(2e5)
    assert float(value) == pytest.approx(200.0 * 2e5**-0.12)
    assert float(sigma) == pytest.approx(0.0, abs=1e-9)


def test_power_law_uncertainty_matches_the_scatter():
    # many noisy realisations: the fitted exponent scatters as the fit says it does
    rng = np.random.default_rng(7)
    n = np.repeat([1e4, 3e4, 1e5, 3e5], 3)
    sigma = 0.01 * 60.0
    exponents, predicted_sigma, pulls = [], [], []
    for _ in range(300):
        error = 300.0 * n**-0.15 * (1 + rng.normal(0, 0.01, n.size))
        fit = fit_power_law(n, error, np.full(n.size, sigma) * error / 60.0)
        exponents.append(fit.exponent)
        predicted_sigma.append(fit.exponent_sigma)
        value, s = fit.predict(1e6)
        pulls.append((float(value) - 300.0 * 1e6**-0.15) / float(s))
    assert np.mean(exponents) == pytest.approx(0.15, abs=0.002)
    assert np.std(exponents) == pytest.approx(np.mean(predicted_sigma), rel=0.2)
    assert np.std(pulls) == pytest.approx(1.0, abs=0.2)


def test_power_law_needs_two_sizes():
    with pytest.raises(ValueError, match="two distinct"):
        fit_power_law(np.array([1e4, 1e4]), np.array([60.0, 61.0]))
