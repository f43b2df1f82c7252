"""Metric definitions of PHYSICS.md §5 on inputs with known answers."""

import numpy as np

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
