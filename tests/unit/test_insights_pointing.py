"""Supernova burst pointing toys against closed-form answers."""

from __future__ import annotations

import numpy as np
import pytest

from edtrain.insights.pointing import burst_pointing, frame_coordinates

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
