"""Metric definitions of docs/physics.md §5 on inputs with known answers."""

import json

import numpy as np
import pytest

from edtrain import metrics


def test_angular_error_ignores_prediction_length_and_spans_0_to_180():
    true = np.array([[0, 0, 1.0], [0, 0, 1.0], [1.0, 0, 0]])
    pred = np.array([[0, 0, 5.0], [0, 0, -0.1], [1.0, 1.0, 0]])
    np.testing.assert_allclose(metrics.angular_error_deg(pred, true), [0.0, 180.0, 45.0], atol=1e-6)


def test_zero_prediction_scores_ninety_degrees():
    assert metrics.angular_error_deg(np.zeros((1, 3)), np.array([[0, 1.0, 0]]))[0] == 90.0


def test_q68_is_the_68th_percentile_not_the_32nd():
    errors = np.arange(0.0, 100.0)  # uniform 0..99
    summary = metrics.summarize(errors)
    assert summary["q68_deg"] == np.percentile(errors, 68)
    assert summary["q68_deg"] > summary["median_deg"]
    # the arccos of the 32nd percentile of the cosines is the same number
    cos = np.cos(np.radians(errors))
    assert np.isclose(np.degrees(np.arccos(np.percentile(cos, 32))), summary["q68_deg"], atol=0.6)


def test_sign_folding_and_head_tail_fraction():
    summary = metrics.summarize(np.array([10.0, 170.0, 100.0, 20.0]))
    assert summary["frac_over_90"] == 0.5
    assert summary["folded_mean_deg"] == np.mean([10.0, 10.0, 80.0, 20.0])


def test_energy_bins_follow_the_predecessor():
    assert metrics.ENERGY_BINS_MEV[:3].tolist() == [2, 4, 6]
    assert metrics.ENERGY_BINS_MEV[-5:].tolist() == [30, 35, 40, 50, 70]
    rows = metrics.by_energy(np.array([5.0, 15.0, 25.0]), np.array([3.0, 3.5, 60.0]))
    assert rows[0]["n"] == 2 and rows[0]["median_deg"] == 10.0
    assert rows[-1]["n"] == 1 and rows[-1]["e_lo_mev"] == 50


def test_flips_are_reversed_directions_with_the_axis_right():
    # folded: 10, 10, 80, 20, 25, 35 → flips: 170° and 155° (axis within 30°, sense reversed)
    summary = metrics.summarize(np.array([10.0, 170.0, 100.0, 20.0, 155.0, 145.0]))
    assert metrics.FLIP_FOLDED_MAX_DEG == 30.0
    assert summary["flip_frac"] == 2 / 6
    assert summary["frac_over_90"] == 4 / 6


def test_fractions_of_undefined_errors_are_undefined():
    summary = metrics.summarize(np.array([170.0, np.nan]))
    assert np.isnan(summary["flip_frac"]) and np.isnan(summary["frac_over_90"])


def test_sign_agreement_counts_only_clear_true_components():
    true = np.array([[1.0, 0, 0], [-0.8, 0.6, 0], [0.6, -0.8, 0], [0, 0.3, -1.0]])
    pred = np.array([[2.0, 0, 1], [0.8, 0.6, 0], [0.6, 0.8, 0], [0, 0, -1.0]])
    # x counts rows 0-2 (|x| > 0.5): row 1 disagrees; y counts rows 1-2: row 2 disagrees;
    # z counts row 3 only (normalized: |z| ≈ 0.96), which agrees
    agree = metrics.sign_agreement(pred, true)
    assert agree == {"sign_agree_x": 2 / 3, "sign_agree_y": 1 / 2, "sign_agree_z": 1.0}


def test_sign_agreement_is_undefined_without_counted_samples_or_predictions():
    true = np.array([[0.0, 0, 1], [0.0, 0, -1]])
    agree = metrics.sign_agreement(np.array([[0.1, 0, 1], [0.0, 0, 1]]), true)
    assert np.isnan(agree["sign_agree_x"]) and agree["sign_agree_z"] == 0.5
    undefined = metrics.sign_agreement(np.array([[np.nan, 0, 1], [0.0, 0, 1]]), true)
    assert np.isnan(undefined["sign_agree_z"])


def test_oracle_comparison_uses_only_samples_with_an_oracle():
    true = np.tile([0.0, 0, 1], (4, 1))
    pred = np.array([[0, 1.0, 1], [0, 0, 1.0], [0, 0, -1.0], [1.0, 0, 0]])  # 45°, 0°, 180°, 90°
    tilt = np.radians(10.0)
    oracle = np.array([[0, np.sin(tilt), np.cos(tilt)], [np.nan] * 3, [0, 0, 1.0], [np.nan] * 3])
    energy = np.array([3.0, 3.0, 15.0, 15.0])
    block = metrics.oracle_comparison(pred, true, oracle, energy)
    assert block["n"] == 2 and block["fraction"] == 0.5
    np.testing.assert_allclose(block["oracle"]["mean_deg"], 5.0)
    assert block["oracle"]["sign_agree_z"] == 1.0 and np.isnan(block["oracle"]["sign_agree_x"])
    np.testing.assert_allclose(block["version"]["mean_deg"], (45.0 + 180.0) / 2)
    assert block["version"]["flip_frac"] == 0.5 and block["version"]["sign_agree_z"] == 0.5
    np.testing.assert_allclose(
        block["q68_ratio"], block["version"]["q68_deg"] / block["oracle"]["q68_deg"]
    )
    bins = {row["e_lo_mev"]: row for row in block["by_energy"]}
    assert bins[2.0]["n"] == 1 and np.isclose(bins[2.0]["q68_deg"], 10.0)
    assert bins[14.0]["n"] == 1 and bins[14.0]["q68_deg"] == 0.0


def test_oracle_comparison_without_oracle_samples_gives_counts_only():
    block = metrics.oracle_comparison(
        np.ones((2, 3)), np.ones((2, 3)), np.full((2, 3), np.nan), [5, 6]
    )
    assert block == {"n": 0, "fraction": 0.0}


def vmf_errors_deg(kappa: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Angles from the mean of von Mises–Fisher draws on the sphere (inverse CDF of cos θ)."""
    u = rng.random(kappa.shape)
    cos = 1.0 + np.log(u + (1.0 - u) * np.exp(-2.0 * kappa)) / kappa
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def test_vmf_cones_hold_their_level_and_a_kappa_cut_sharpens():
    rng = np.random.default_rng(7)
    kappa = 10.0 ** rng.uniform(-0.5, 2.5, size=40_000)
    errors = vmf_errors_deg(kappa, rng)
    energy = rng.uniform(2.0, 60.0, size=kappa.size)
    block = metrics.uncertainty(errors, kappa, energy)
    assert block["cover_68"] == pytest.approx(0.68, abs=0.01)
    assert block["cover_90"] == pytest.approx(0.90, abs=0.01)
    counted = [row for row in block["by_energy"] if row["n"] > 500]
    assert counted and all(abs(row["cover_68"] - 0.68) < 0.05 for row in counted)
    q68 = np.percentile(errors, 68)
    assert block["q68_deg_top50"] < block["q68_deg_top80"] < q68
    # an overconfident κ (4×) covers far less than its level says
    assert metrics.uncertainty(errors, 4 * kappa, energy)["cover_68"] < 0.5
    # κ → 0 is the uniform sphere: the 68 % cone's cosine is 1 − 2·0.68
    assert metrics.vmf_cone_deg(np.array([0.0]), 0.68)[0] == pytest.approx(
        np.degrees(np.arccos(1 - 2 * 0.68))
    )


def test_kappa_scale_undoes_a_miscalibration_and_leaves_a_calibrated_kappa_alone():
    rng = np.random.default_rng(11)
    kappa = 10.0 ** rng.uniform(0.5, 2.5, size=20_000)
    errors = vmf_errors_deg(kappa, rng)
    assert metrics.kappa_scale(errors, kappa) == pytest.approx(1.0, abs=0.05)
    # κ the network made 3× too small (cones too wide): the factor is 3 and puts 68 % back
    scale = metrics.kappa_scale(errors, kappa / 3)
    assert scale == pytest.approx(3.0, rel=0.06)
    assert metrics.uncertainty(errors, scale * kappa / 3, kappa)["cover_68"] == pytest.approx(
        0.68, abs=0.005
    )
    # heavy tails (a share of flips): the 68 % cone still holds 68 %, the κ just grows less
    flipped = np.where(rng.random(kappa.size) < 0.1, 180.0 - errors, errors)
    tailed = metrics.kappa_scale(flipped, kappa)
    inside = np.mean(flipped <= metrics.vmf_cone_deg(tailed * kappa, 0.68))
    assert inside == pytest.approx(0.68, abs=0.005) and tailed < 1.0
    assert np.isnan(metrics.kappa_scale(np.full(3, np.nan), np.full(3, np.nan)))


def test_kappa_calibration_puts_68_percent_in_the_cones_at_every_energy():
    """A network whose κ is 2× too small at low energy and 2× too large at high energy: one
    factor leaves both ends wrong; the per-energy calibration, fitted on one half, puts 68 %
    inside the cones of every energy bin of the other half."""
    rng = np.random.default_rng(12)
    n = 24_000
    energy = 10.0 ** rng.uniform(np.log10(2.0), np.log10(60.0), size=n)
    kappa = 10.0 ** rng.uniform(0.5, 2.5, size=n)
    errors = vmf_errors_deg(kappa, rng)
    true_factor = np.interp(np.log(energy), np.log([3.0, 30.0]), [2.0, 0.5])
    network = kappa * true_factor
    fit, test = slice(0, n // 2), slice(n // 2, n)
    calibration = metrics.KappaCalibration.fit(errors[fit], network[fit], energy[fit])
    assert len(calibration.scale) == metrics.CALIBRATION_BINS
    assert np.all(np.diff(calibration.energy_mev) > 0)
    assert np.all(np.diff(calibration.scale) > 0)  # 1 / true_factor grows with energy
    one = metrics.kappa_scale(errors[fit], network[fit])

    def coverage(kappa_test):
        block = metrics.uncertainty(errors[test], kappa_test, energy[test])
        bins = [b["cover_68"] for b in block["by_energy"] if b["n"] >= 300]
        return block["cover_68"], min(bins), max(bins)

    overall, lowest, highest = coverage(one * network[test])
    assert overall == pytest.approx(0.68, abs=0.015) and lowest < 0.6 and highest > 0.76
    overall, lowest, highest = coverage(calibration(network[test], energy[test]))
    assert overall == pytest.approx(0.68, abs=0.015) and lowest > 0.64 and highest < 0.72
    # saved as metrics.json and predictions.npz save it, and read back the same
    record = json.loads(json.dumps(calibration.record()))
    back = metrics.KappaCalibration.saved(record)
    np.testing.assert_allclose(back(network, energy), calibration(network, energy))
    # a lone factor (what older versions saved) is one factor; nothing saved is None
    assert metrics.KappaCalibration.saved({"kappa_scale": 1.5})(
        np.ones(2), [2.0, 50.0]
    ).tolist() == [1.5, 1.5]
    assert metrics.KappaCalibration.saved({}) is None
    with pytest.raises(ValueError, match="kappa_scale_energy_mev"):
        metrics.KappaCalibration.saved({"kappa_scale": [1.0, 2.0]})
    # a small validation set: fewer bins, down to one factor
    small = metrics.KappaCalibration.fit(errors[:1500], network[:1500], energy[:1500])
    assert len(small.scale) == 1
    assert small.scale[0] == pytest.approx(metrics.kappa_scale(errors[:1500], network[:1500]))
