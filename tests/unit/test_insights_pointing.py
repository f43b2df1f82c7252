"""Supernova burst pointing toys against closed-form answers."""

from __future__ import annotations

import numpy as np
import pytest

from edtrain.insights.pointing import (
    axis_pileup,
    burst_pointing,
    frame_coordinates,
    kappa_from_mean_cosine,
    kinematic_kappa,
    rotate_onto,
)

RAYLEIGH_68 = np.sqrt(-2 * np.log(0.32))  # 68 % radius of a 2-D Gaussian, in units of σ


def cone(axis: np.ndarray, alpha_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors at a fixed angle alpha from each axis row, random azimuth."""
    local = np.zeros_like(axis)
    phi = rng.uniform(0, 2 * np.pi, len(axis))
    a = np.radians(alpha_deg)
    local[:, 0], local[:, 1], local[:, 2] = (
        np.sin(a) * np.cos(phi),
        np.sin(a) * np.sin(phi),
        np.cos(a),
    )
    helper = np.where(np.abs(axis[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(axis, e1)
    return local[:, :1] * e1 + local[:, 1:2] * e2 + local[:, 2:] * axis


def isotropic(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_frame_coordinates_put_the_axis_on_z():
    axis = isotropic(100, np.random.default_rng(0))
    assert np.allclose(frame_coordinates(axis, axis), [0, 0, 1])


@pytest.mark.parametrize("flips", [0.0, 0.2])
def test_burst_containment_matches_the_gaussian_limit(flips):
    # N events at angle α from the neutrino: the summed direction scatters by
    # σ = sin α / sqrt(2N) / ((1 − 2f) cos α) per axis, so its 68 % radius is 1.51 σ
    rng = np.random.default_rng(1)
    nu = isotropic(20_000, rng)
    true = cone(nu, 30.0, rng)
    pred = true.copy()
    pred[rng.random(len(pred)) < flips] *= -1
    p = burst_pointing({"test_predictions": pred, "test_true": true, "nu_dir": nu}, 239, 4000, 2)
    sigma = np.sin(np.radians(30)) / np.sqrt(2 * 239) / ((1 - 2 * flips) * np.cos(np.radians(30)))
    expected = np.degrees(RAYLEIGH_68 * sigma)
    assert p.reference == "neutrino" and p.events == 20_000
    assert p.q68_deg == pytest.approx(expected, rel=0.06)
    assert p.floor_q68_deg == pytest.approx(np.degrees(RAYLEIGH_68 * sigma * (1 - 2 * flips)),
                                            rel=0.06)  # fmt: skip
    assert 0 < p.q68_sigma_deg < 0.05 * p.q68_deg


def test_without_neutrino_direction_the_electron_is_the_reference():
    rng = np.random.default_rng(3)
    true = isotropic(5000, rng)
    pred = cone(true, 20.0, rng)
    nu = np.full_like(true, np.nan)
    p = burst_pointing({"test_predictions": pred, "test_true": true, "nu_dir": nu}, 100, 500, 0)
    assert (p.reference, p.floor_q68_deg) == ("electron", 0.0)
    assert p.q68_deg > 0


def vmf_around(axis: np.ndarray, kappa: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One von Mises–Fisher draw about each axis row with that row's concentration."""
    u = rng.random(len(axis))
    cos = 1.0 + np.log(u + (1.0 - u) * np.exp(-2.0 * kappa)) / kappa
    side = np.cross(axis, isotropic(len(axis), rng))
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    return cos[:, None] * axis + np.sqrt(1.0 - cos**2)[:, None] * side


def test_the_es_spread_is_measured_per_energy():
    rng = np.random.default_rng(4)
    nu = isotropic(60_000, rng)
    energy = rng.uniform(2.0, 70.0, len(nu))
    kappa_es = 2.0 + energy  # sharper at higher energy, as ES electrons are
    true = vmf_around(nu, kappa_es, rng)
    measured = kinematic_kappa(true, nu, energy)
    bin_mean = np.array([kappa_es[measured == k].mean() for k in np.unique(measured)])
    np.testing.assert_allclose(np.unique(measured), bin_mean, rtol=0.1)
    assert kappa_from_mean_cosine(np.array([1 / np.tanh(5.0) - 1 / 5.0]))[0] == pytest.approx(
        5.0, rel=1e-4
    )


def test_kappa_weighting_points_better_than_the_mean_vector():
    """Half the electrons precise (κ 200), half poor (κ 2): the maximum-likelihood sum,
    weighted by κ folded with the ES spread, beats the plain sum on the same bursts."""
    rng = np.random.default_rng(6)
    n = 20_000
    nu = isotropic(n, rng)
    energy = rng.uniform(5.0, 40.0, n)
    true = vmf_around(nu, np.full(n, 20.0), rng)
    kappa = np.where(rng.random(n) < 0.5, 200.0, 2.0)
    pred = vmf_around(true, kappa, rng)
    data = {"test_predictions": kappa[:, None] * pred, "test_true": true, "nu_dir": nu,
            "energy_mev": energy, "kappa": kappa}  # fmt: skip
    p = burst_pointing(data, 239, 2000, 3)
    assert p.weighted_q68_deg < 0.8 * p.q68_deg
    assert p.floor_q68_deg < p.weighted_q68_deg
    plain = burst_pointing({k: v for k, v in data.items() if k != "kappa"}, 239, 2000, 3)
    assert plain.weighted_q68_deg is None
    assert plain.q68_deg == p.q68_deg  # the same bursts


def test_sense_weighting_discounts_the_coin_tosses():
    """Electrons whose sense is right with probability p (half sure, p = 0.98; half coin
    tosses, p = 0.55), each flipped with probability 1 − p: counting each as (2p − 1) times
    its direction beats the plain sum, whose coin tosses add noise and no pull."""
    rng = np.random.default_rng(7)
    n = 20_000
    nu = isotropic(n, rng)
    true = vmf_around(nu, np.full(n, 20.0), rng)
    p_right = np.where(rng.random(n) < 0.5, 0.98, 0.55)
    flip = np.where(rng.random(n) < p_right, 1.0, -1.0)
    pred = flip[:, None] * vmf_around(true, np.full(n, 50.0), rng)
    data = {"test_predictions": pred, "test_true": true, "nu_dir": nu,
            "sense_probability": p_right}  # fmt: skip
    p = burst_pointing(data, 239, 2000, 3)
    assert p.weighted_q68_deg < 0.85 * p.q68_deg
    assert p.floor_q68_deg < p.weighted_q68_deg


def test_a_coherent_bias_shows_in_the_detector_frame_bursts_only():
    """Predictions pulled toward +y: turning each event to a random azimuth averages the pull
    away, the bursts along the detector axes keep it; unbiased ones agree in both."""
    rng = np.random.default_rng(8)
    nu = isotropic(30_000, rng)
    true = cone(nu, 30.0, rng)
    pred = cone(true, 25.0, rng)
    biased = pred + 0.4 * np.array([0.0, 1.0, 0.0])
    points = {}
    for name, p in (("unbiased", pred), ("biased", biased)):
        points[name] = burst_pointing(
            {"test_predictions": p, "test_true": true, "nu_dir": nu}, 239, 2000, 4
        )
    fair, pulled = points["unbiased"], points["biased"]
    assert fair.fixed_directions == pulled.fixed_directions == 6
    spread = 3 * np.hypot(fair.q68_sigma_deg, fair.fixed_sigma_deg)  # pools resampled
    assert abs(fair.fixed_q68_deg - fair.q68_deg) < spread
    assert pulled.fixed_q68_deg > 2 * pulled.q68_deg
    assert fair.fixed_floor_q68_deg == pytest.approx(fair.floor_q68_deg, rel=0.1)
    # predictions drawn toward the ±y axis (either sign) pile up near it
    piled = pred + 1.0 * np.sign(pred[:, 1:2]) * np.array([0.0, 1.0, 0.0])
    ratio, axis = axis_pileup(piled, true)
    assert ratio > 1.5 and axis == "y" and fair.pileup_ratio == pytest.approx(1.0, abs=0.15)


def test_rotate_onto_takes_each_source_to_the_target_and_keeps_angles():
    rng = np.random.default_rng(2)
    source, other = isotropic(500, rng), isotropic(500, rng)
    target = np.broadcast_to([0.0, 0.0, 1.0], source.shape)
    np.testing.assert_allclose(rotate_onto(source, source, target), target, atol=1e-12)
    turned = rotate_onto(other, source, target)
    np.testing.assert_allclose(np.sum(turned * target, 1), np.sum(other * source, 1), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(turned, axis=1), 1.0, atol=1e-12)
