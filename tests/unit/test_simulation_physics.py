"""Kinematics, energy loss/range, multiple scattering, secondaries and the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from edtrain.simulation import kinematics as kin
from edtrain.simulation import transport as tr
from edtrain.simulation.oracle import oracle_directions


def _beam(n: int, kinetic: float) -> tr.Particles:
    return tr.Particles(
        np.zeros((n, 3)), np.tile([0.0, 0.0, 1.0], (n, 1)), np.full(n, kinetic), np.arange(n)
    )


@pytest.mark.parametrize("spectrum", kin.SPECTRA)
def test_es_events_obey_two_body_kinematics(spectrum):
    ev = kin.es_events(np.random.default_rng(1), 4000, spectrum)
    e_nu, t = ev["nu_energy"], ev["kinetic"]
    assert np.all((e_nu >= 2.0) & (e_nu <= 70.0))
    assert np.all(t >= kin.MIN_ELECTRON_KE_MEV - 1e-9)
    assert np.all(t <= kin.max_recoil_energy(e_nu) + 1e-9)
    cos_between = np.sum(ev["direction"] * ev["nu_dir"], axis=1)
    np.testing.assert_allclose(cos_between, kin.recoil_cos_theta(t, e_nu), atol=1e-9)
    # Neutrino directions cover the sphere.
    assert np.all(np.abs(ev["nu_dir"].mean(axis=0)) < 0.06)


def test_recoil_spectrum_follows_the_es_cross_section():
    # dσ/dy ∝ g1² + g2²(1 − y)², y = T/T_max (m_e term negligible at 60 MeV): ⟨y⟩ ≈ 0.491.
    g1, g2 = 0.5 + kin.SIN2_THETA_W, kin.SIN2_THETA_W
    expected = (g1**2 / 2 + g2**2 / 12) / (g1**2 + g2**2 / 3)
    e_nu = np.full(40000, 60.0)
    t = kin.es_electron_energies(np.random.default_rng(8), e_nu, t_min_mev=0.0)
    assert (t / kin.max_recoil_energy(e_nu)).mean() == pytest.approx(expected, abs=0.006)


def test_supernova_spectrum_is_softer_than_flat():
    rng = np.random.default_rng(2)
    flat = kin.neutrino_energies(rng, 20000, "flat").mean()
    sn = kin.neutrino_energies(rng, 20000, "supernova").mean()
    assert flat == pytest.approx(36.0, abs=0.5)
    assert 15.0 < sn < 25.0
    with pytest.raises(ValueError, match="spectrum"):
        kin.neutrino_energies(rng, 1, "bogus")


def test_recoil_is_forward_at_the_kinematic_edge():
    e = np.array([10.0, 40.0])
    np.testing.assert_allclose(kin.recoil_cos_theta(kin.max_recoil_energy(e), e), 1.0)


@pytest.mark.parametrize(
    ("kinetic", "table_range"), [(5, 2.33), (10, 4.30), (20, 7.43), (30, 9.88)]
)
def test_csda_range_matches_physics_table(kinetic, table_range):
    assert tr.csda_range_cm(np.array([kinetic]))[0] == pytest.approx(table_range, rel=0.10)


def test_stopping_powers_match_physics_table():
    assert tr.collisional_stopping_power(np.array([10.0]))[0] == pytest.approx(2.17, rel=1e-3)
    assert tr.radiative_stopping_power(np.array([20.0]))[0] == pytest.approx(1.39, rel=0.10)


def test_transport_conserves_energy_and_ranges_out():
    rng = np.random.default_rng(3)
    n = 300
    deposits, deltas, photons, _ = tr.transport(rng, _beam(n, 10.0))
    total = deposits.energy.sum() + deltas.kinetic.sum() + photons.kinetic.sum()
    assert total == pytest.approx(10.0 * n, rel=1e-9)
    end = np.zeros((n, 3))
    end[deposits.source] = deposits.position  # deposits are in step order: last one wins
    assert np.median(np.linalg.norm(end, axis=1)) == pytest.approx(2.9, rel=0.15)


def test_multiple_scattering_lateral_spread_follows_highland():
    rng = np.random.default_rng(4)
    _, _, _, trajectory = tr.transport(rng, _beam(3000, 10.0), record_trajectory=True)
    at = np.abs(trajectory.path - 0.99) < 0.005
    lateral = trajectory.position[at][:, :2]
    expected = 0.99 * np.sqrt(tr.highland_variance(np.array(0.99), np.array(10.0))) / np.sqrt(3)
    assert lateral.std(axis=0) == pytest.approx([expected, expected], rel=0.08)


def test_highland_variance_is_the_physics_table_figure():
    theta0 = np.degrees(np.sqrt(tr.highland_variance(np.array([1.0]), np.array([10.0]))))[0]
    assert theta0 == pytest.approx(18.0, abs=1.5)


def test_bremsstrahlung_and_delta_rates():
    rng = np.random.default_rng(5)
    _, deltas, photons, _ = tr.transport(rng, _beam(1500, 20.0))
    assert photons.kinetic.size / 1500 == pytest.approx(1.0, rel=0.15)
    assert np.all(photons.kinetic > tr.SECONDARY_CUT_MEV)
    assert np.all(deltas.kinetic > tr.SECONDARY_CUT_MEV)
    # Photons leave along the electron: forward on average.
    assert photons.direction[:, 2].mean() > 0.5


def test_compton_blips_are_detached_and_forward():
    rng = np.random.default_rng(6)
    n = 2000
    photons = tr.Particles(
        np.zeros((n, 3)), np.tile([0.0, 0.0, 1.0], (n, 1)), np.full(n, 3.0), np.arange(n)
    )
    electrons = tr.compton_electrons(rng, photons)
    assert np.median(electrons.position[:, 2]) > 5.0
    assert np.all(electrons.kinetic <= kin.max_recoil_energy(np.array(3.0)) + 1e-12)
    assert electrons.direction[:, 2].mean() > 0.5


def test_oracle_recovers_straight_tracks():
    rng = np.random.default_rng(7)
    n = 200
    direction = kin.isotropic_directions(rng, n)
    vertex = rng.uniform(-50, 50, (n, 3))
    steps = np.arange(0, 110)
    path = np.tile(steps * tr.STEP_CM, n)
    electron = np.repeat(np.arange(n), steps.size)
    position = vertex[electron] + path[:, None] * direction[electron]
    trajectory = tr.Trajectory(electron, path, position)
    result = oracle_directions(rng, trajectory, n, vertex, direction, np.full(n, 30.0))
    assert np.all(result["length_cm"] == 3.0)
    assert np.all(result["n_points"] == 11)  # 0 … 3 cm every 0.3 cm
    assert np.percentile(result["error_deg"], 68) < 8.0
    assert np.all(np.sum(result["direction"] * direction, axis=1) > 0)  # sign known
