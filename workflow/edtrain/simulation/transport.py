"""Electron transport in liquid argon (docs/physics.md §1): all electrons of a batch stepped
together.

Each step of length ≤ STEP_CM applies the restricted collisional loss, Highland multiple
scattering (variance accumulated along the path, so the non-additive log term is respected; each
step gets the increment plus the correlated lateral offset), and samples discrete bremsstrahlung
photons and Møller delta rays above 1 MeV. Photons travel an exponential free path and become
Compton electrons: the detached forward blips that carry head–tail information. Secondaries are
transported as the next generation with the same code. Dead electrons are dropped every step, so
the work follows the number of live electrons, not the longest track.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

import numpy as np

from edtrain.simulation.kinematics import (
    ELECTRON_MASS_MEV,
    max_recoil_energy,
    momentum_mev,
    perpendicular_basis,
    recoil_cos_theta,
    rotate_from,
)

DENSITY_G_CM3 = 1.39
RADIATION_LENGTH_CM = 14.0
STEP_CM = 0.03
STOP_MEV = 0.05  # below this the electron deposits what is left where it stands
SECONDARY_CUT_MEV = 1.0  # delta rays and photons above this are explicit particles
MOLLER_K_MEV_CM = 0.0966  # delta-ray rate constant: K·(1/T_cut − 1/T_max) per cm
GENERATIONS = 3
TRAJECTORY_CM = 3.3  # primaries' trajectory is recorded this far for the oracle

# Collisional stopping power of electrons in LAr [MeV/cm] (ESTAR × 1.39 g/cm³;
# docs/physics.md §1 table).
_T_TABLE = np.array([0.01, 0.05, 0.1, 0.2, 0.5, 1, 3, 5, 10, 20, 30, 50, 70, 100.0])
_S_COL_TABLE = np.array(
    [27.0, 9.3, 5.6, 3.8, 2.37, 1.91, 1.98, 2.06, 2.17, 2.28, 2.33, 2.40, 2.44, 2.48]
)


def collisional_stopping_power(kinetic_mev: np.ndarray) -> np.ndarray:
    """S_col(T) [MeV/cm], log-log interpolation of the table."""
    t = np.clip(kinetic_mev, _T_TABLE[0], _T_TABLE[-1])
    return np.exp(np.interp(np.log(t), np.log(_T_TABLE), np.log(_S_COL_TABLE)))


def radiative_stopping_power(kinetic_mev: np.ndarray) -> np.ndarray:
    """S_rad(T) ≈ (T + m_e)/X0 [MeV/cm] (matches docs/physics.md §1 within ~10 % above 5 MeV)."""
    return (kinetic_mev + ELECTRON_MASS_MEV) / RADIATION_LENGTH_CM


def csda_range_cm(kinetic_mev: np.ndarray) -> np.ndarray:
    """Continuous-slowing-down range [cm]: ∫ dT / (S_col + S_rad), trapezoid on a log grid."""
    kinetic = np.atleast_1d(np.asarray(kinetic_mev, dtype=np.float64))
    grid = np.geomspace(1e-3, max(float(kinetic.max()), 1e-3), 400)
    inv = 1.0 / (collisional_stopping_power(grid) + radiative_stopping_power(grid))
    cumulative = np.concatenate([[0.0], np.cumsum((inv[1:] + inv[:-1]) / 2 * np.diff(grid))])
    return np.interp(kinetic, grid, cumulative)


def highland_variance(path_cm: np.ndarray, kinetic_mev: np.ndarray) -> np.ndarray:
    """θ0² [rad²] of the projected angle after ``path_cm`` at the current energy (Highland)."""
    p = momentum_mev(kinetic_mev)
    beta = p / (kinetic_mev + ELECTRON_MASS_MEV)
    x = np.maximum(path_cm, 1e-12) / RADIATION_LENGTH_CM
    theta0 = 13.6 / (beta * p) * np.sqrt(x) * (1.0 + 0.038 * np.log(x / beta**2))
    return np.where(path_cm > 0, theta0**2, 0.0)


class _Columns:
    """A batch as equal-length numpy columns, one row per item (3-vectors as (n, 3))."""

    @classmethod
    def concatenate(cls, parts: list[Self]) -> Self:
        columns = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        for name in ("position", "direction"):
            if name in columns:  # stays (0, 3) when every part is empty
                columns[name] = columns[name].reshape(-1, 3)
        return cls(**columns)


@dataclass
class Deposits(_Columns):
    """Energy deposits (one per step): position [cm], energy [MeV], dE/dx [MeV/cm], source id."""

    position: np.ndarray
    energy: np.ndarray
    dedx: np.ndarray
    source: np.ndarray


@dataclass
class Particles(_Columns):
    """A batch of electrons to transport (or photons to convert)."""

    position: np.ndarray
    direction: np.ndarray
    kinetic: np.ndarray
    source: np.ndarray


@dataclass
class Trajectory:
    """Recorded step points of primary electrons: electron index, path length [cm], position."""

    electron: np.ndarray
    path: np.ndarray
    position: np.ndarray


def compton_electrons(rng: np.random.Generator, photons: Particles) -> Particles:
    """Compton electrons where photons interact (exponential free path, 12 cm at 1 MeV rising
    to 30 cm at 10 MeV); the electron takes T uniform up to the Compton edge, forward-peaked."""
    k = photons.kinetic
    mean_free_path = 12.0 + 18.0 * np.log10(np.clip(k, 1.0, 10.0))
    distance = rng.exponential(mean_free_path)
    position = photons.position + distance[:, None] * photons.direction
    kinetic = rng.uniform(0.0, 1.0, k.size) * max_recoil_energy(k)
    cos_t = recoil_cos_theta(np.maximum(kinetic, 1e-6), k)
    direction = rotate_from(photons.direction, cos_t, rng.uniform(0, 2 * np.pi, k.size))
    keep = kinetic > STOP_MEV
    return Particles(position[keep], direction[keep], kinetic[keep], photons.source[keep])


def _bremsstrahlung(rng, kinetic, ds):
    """Photon energy per electron this step (0 where none): rate (4/3)/X0·ln(T/k_cut), thinned
    by (4/3 − 4/3·y + y²)/(4/3) so k follows dN/dk ∝ (1/k)(4/3 − 4/3 y + y²)."""
    can = kinetic > SECONDARY_CUT_MEV
    log_ratio = np.log(np.where(can, kinetic / SECONDARY_CUT_MEV, 1.0))
    emit = can & (rng.random(kinetic.size) < (4.0 / 3.0) / RADIATION_LENGTH_CM * log_ratio * ds)
    k = SECONDARY_CUT_MEV * np.exp(rng.random(kinetic.size) * log_ratio)
    y = k / np.maximum(kinetic, 1e-9)
    keep = rng.random(kinetic.size) < (4.0 / 3.0 - 4.0 / 3.0 * y + y**2) / (4.0 / 3.0)
    return np.where(emit & keep, k, 0.0)


def _delta_rays(rng, kinetic, ds):
    """Delta-ray energy per electron this step (0 where none), dN/dk ∝ 1/k² on [T_cut, T/2]."""
    t_max = kinetic / 2.0
    can = t_max > SECONDARY_CUT_MEV
    inv_cut, inv_max = 1.0 / SECONDARY_CUT_MEV, 1.0 / np.where(can, t_max, SECONDARY_CUT_MEV)
    emit = can & (rng.random(kinetic.size) < MOLLER_K_MEV_CM * (inv_cut - inv_max) * ds)
    k = 1.0 / (inv_cut - rng.random(kinetic.size) * (inv_cut - inv_max))
    return np.where(emit, k, 0.0)


def transport(
    rng: np.random.Generator, electrons: Particles, record_trajectory: bool = False
) -> tuple[Deposits, Particles, Particles, Trajectory | None]:
    """Step a batch of electrons until they stop.

    Returns the deposits, the delta-ray electrons and bremsstrahlung photons they emitted, and
    (if asked) the trajectory points of the first TRAJECTORY_CM of every electron.
    """
    n = electrons.kinetic.size
    index = np.arange(n)
    pos = electrons.position.astype(np.float64).copy()
    direction = electrons.direction.astype(np.float64).copy()
    kinetic = electrons.kinetic.astype(np.float64).copy()
    path = np.zeros(n)
    deposits: list[Deposits] = []
    deltas: list[Particles] = []
    photons: list[Particles] = []
    track: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    source = electrons.source
    while index.size:
        if record_trajectory:
            near = path <= TRAJECTORY_CM
            track.append((index[near], path[near], pos[near]))
        s_col = collisional_stopping_power(kinetic)
        t_max_delta = kinetic / 2.0
        restricted = s_col - MOLLER_K_MEV_CM * np.log(
            np.maximum(t_max_delta / SECONDARY_CUT_MEV, 1.0)
        )
        soft_brems = (4.0 / 3.0) * np.minimum(kinetic, SECONDARY_CUT_MEV) / RADIATION_LENGTH_CM
        loss_rate = restricted + soft_brems
        ds = np.minimum(STEP_CM, kinetic / loss_rate)

        lost = np.minimum(loss_rate * ds, kinetic)
        k_brem = _bremsstrahlung(rng, kinetic, ds)
        k_brem = np.where(k_brem <= kinetic - lost, k_brem, 0.0)
        k_delta = _delta_rays(rng, kinetic - lost - k_brem, ds)

        variance = highland_variance(path + ds, kinetic) - highland_variance(path, kinetic)
        sigma = np.sqrt(np.maximum(variance, 0.0))
        z = rng.standard_normal((4, index.size))
        e1, e2 = perpendicular_basis(direction)
        offset1 = ds * sigma * (z[0] / np.sqrt(12.0) + z[1] / 2.0)
        offset2 = ds * sigma * (z[2] / np.sqrt(12.0) + z[3] / 2.0)
        new_pos = pos + ds[:, None] * direction + offset1[:, None] * e1 + offset2[:, None] * e2
        mid = (pos + new_pos) / 2.0

        remaining = kinetic - lost - k_brem - k_delta
        stopped = remaining < STOP_MEV
        deposit = lost + np.where(stopped, np.maximum(remaining, 0.0), 0.0)
        deposits.append(Deposits(mid, deposit, s_col, source[index]))

        made = k_brem > 0
        if made.any():
            photons.append(Particles(mid[made], direction[made], k_brem[made], source[index[made]]))
        made = k_delta > 0
        if made.any():
            k, t = k_delta[made], kinetic[made]
            cos_t = np.sqrt(k * (t + 2 * ELECTRON_MASS_MEV) / (t * (k + 2 * ELECTRON_MASS_MEV)))
            phi = rng.uniform(0, 2 * np.pi, k.size)
            d = rotate_from(direction[made], np.clip(cos_t, -1.0, 1.0), phi)
            deltas.append(Particles(mid[made], d, k, source[index[made]]))

        direction = direction + (sigma * z[1])[:, None] * e1 + (sigma * z[3])[:, None] * e2
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        alive = ~stopped
        index, pos, direction = index[alive], new_pos[alive], direction[alive]
        kinetic, path = remaining[alive], (path + ds)[alive]
    trajectory = None
    if record_trajectory:
        trajectory = Trajectory(
            np.concatenate([t[0] for t in track]),
            np.concatenate([t[1] for t in track]),
            np.concatenate([t[2] for t in track]).reshape(-1, 3),
        )
    empty = Particles(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, np.int64))
    return (
        Deposits.concatenate(deposits)
        if deposits
        else Deposits(np.zeros((0, 3)), np.zeros(0), np.zeros(0), np.zeros(0, np.int64)),
        Particles.concatenate(deltas) if deltas else empty,
        Particles.concatenate(photons) if photons else empty,
        trajectory,
    )


def shower(
    rng: np.random.Generator, electrons: Particles, photons: Particles | None = None
) -> tuple[Deposits, Trajectory, dict[str, np.ndarray]]:
    """Transport primaries (trajectory recorded) and GENERATIONS − 1 generations of secondaries.

    ``photons`` are extra primary photons (e.g. a capture γ cascade). Also returns per-source
    counts of bremsstrahlung photons and delta rays of the primaries (for the truth table).
    """
    deposits, deltas, brems, trajectory = transport(rng, electrons, record_trajectory=True)
    n_sources = int(electrons.source.max(initial=-1)) + 1
    counts = {
        "n_brems": np.bincount(brems.source, minlength=n_sources),
        "n_delta": np.bincount(deltas.source, minlength=n_sources),
    }
    parts = [deposits]
    pending_photons = [brems] + ([photons] if photons is not None else [])
    pending = Particles.concatenate(
        [deltas, compton_electrons(rng, Particles.concatenate(pending_photons))]
    )
    for _ in range(GENERATIONS - 1):
        if pending.kinetic.size == 0:
            break
        more, deltas, brems, _ = transport(rng, pending)
        parts.append(more)
        pending = Particles.concatenate([deltas, compton_electrons(rng, brems)])
    return Deposits.concatenate(parts), trajectory, counts
