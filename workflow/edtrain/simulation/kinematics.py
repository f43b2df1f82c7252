"""Neutrino–electron elastic-scattering kinematics (docs/physics.md §3), vectorized over events.

The electron direction carries the neutrino direction (cos θ_e is fixed by T and E_ν), so the
sample is drawn the way nature does it: E_ν from the spectrum, T from the ES cross-section, the
azimuth uniform, the neutrino direction isotropic.
"""

from __future__ import annotations

import numpy as np

ELECTRON_MASS_MEV = 0.51099895
SIN2_THETA_W = 0.2312
SPECTRA: tuple[str, ...] = ("supernova", "flat")
NU_ENERGY_RANGE_MEV = (2.0, 70.0)
# Pinched Fermi–Dirac (Keil–Raffelt) shape of a supernova νe-like flux.
SUPERNOVA_MEAN_MEV = 15.0
SUPERNOVA_PINCH = 2.5
# Electrons below this make no cluster over the 2 MeV cut; drawing them only wastes time.
MIN_ELECTRON_KE_MEV = 2.0


def isotropic_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    """n unit vectors uniform on the sphere, shape (n, 3)."""
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)


def perpendicular_basis(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors completing each row of ``direction`` (n, 3) to an orthonormal frame."""
    helper = np.zeros_like(direction)
    use_x = np.abs(direction[:, 0]) < 0.9
    helper[use_x, 0] = 1.0
    helper[~use_x, 1] = 1.0
    e1 = np.cross(direction, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(direction, e1)
    return e1, e2


def rotate_from(axis: np.ndarray, cos_theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit vectors at polar angle arccos(cos_theta) and azimuth phi around each row of ``axis``."""
    e1, e2 = perpendicular_basis(axis)
    sin_t = np.sqrt(np.clip(1.0 - cos_theta**2, 0.0, None))
    out = (
        cos_theta[:, None] * axis
        + (sin_t * np.cos(phi))[:, None] * e1
        + (sin_t * np.sin(phi))[:, None] * e2
    )
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def neutrino_energies(rng: np.random.Generator, n: int, spectrum: str) -> np.ndarray:
    """E_ν [MeV] of interacting neutrinos: flat 2–70 MeV (upstream MARLEY "flat"), or a pinched
    supernova flux weighted by the ES cross-section (σ ∝ E_ν), by rejection."""
    lo, hi = NU_ENERGY_RANGE_MEV
    if spectrum == "flat":
        return rng.uniform(lo, hi, n)
    if spectrum != "supernova":
        raise ValueError(f"unknown spectrum {spectrum!r}: expected one of {SPECTRA}")
    a = SUPERNOVA_PINCH
    grid = np.linspace(lo, hi, 2000)
    weight = grid ** (a + 1) * np.exp(-(a + 1) * grid / SUPERNOVA_MEAN_MEV)
    cdf = np.cumsum(weight)
    cdf /= cdf[-1]
    return np.interp(rng.uniform(0.0, 1.0, n), cdf, grid)


def max_recoil_energy(projectile_mev: np.ndarray) -> np.ndarray:
    """Largest kinetic energy a massless projectile of energy E gives an electron at rest."""
    return 2.0 * projectile_mev**2 / (ELECTRON_MASS_MEV + 2.0 * projectile_mev)


def recoil_cos_theta(kinetic_mev: np.ndarray, projectile_mev: np.ndarray) -> np.ndarray:
    """cos θ_e = (1 + m_e/E)·sqrt(T/(T + 2 m_e)) of the recoil electron (ES and Compton alike)."""
    m = ELECTRON_MASS_MEV
    return np.clip((1.0 + m / projectile_mev) * np.sqrt(kinetic_mev / (kinetic_mev + 2 * m)), -1, 1)


def es_electron_energies(
    rng: np.random.Generator, nu_energy_mev: np.ndarray, t_min_mev: float = MIN_ELECTRON_KE_MEV
) -> np.ndarray:
    """Electron T [MeV] from dσ/dT ∝ g1² + g2²(1 − T/E)² − g1·g2·m_e·T/E² (νe–e), T ≥ t_min.

    Inverse-CDF per event on a shared 256-point grid in T/T_max: exact enough for this sampler
    and free of rejection loops. Events whose T_max < t_min get T = T_max.
    """
    g1 = 0.5 + SIN2_THETA_W
    g2 = SIN2_THETA_W
    e = nu_energy_mev[:, None]
    t_max = max_recoil_energy(nu_energy_mev)
    lo = np.minimum(t_min_mev, t_max)
    u_grid = np.linspace(0.0, 1.0, 256)[None, :]
    t = lo[:, None] + u_grid * (t_max - lo)[:, None]
    density = g1**2 + g2**2 * (1.0 - t / e) ** 2 - g1 * g2 * ELECTRON_MASS_MEV * t / e**2
    density = np.clip(density, 0.0, None)
    cdf = np.cumsum((density[:, 1:] + density[:, :-1]) / 2.0, axis=1)
    cdf = np.concatenate([np.zeros((cdf.shape[0], 1)), cdf], axis=1)
    cdf /= np.where(cdf[:, -1:] > 0, cdf[:, -1:], 1.0)
    u = rng.uniform(0.0, 1.0, nu_energy_mev.size)
    index = np.clip((cdf < u[:, None]).sum(axis=1), 1, 255)
    c0 = cdf[np.arange(index.size), index - 1]
    c1 = cdf[np.arange(index.size), index]
    frac = np.where(c1 > c0, (u - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0)
    t_lo = t[np.arange(index.size), index - 1]
    t_hi = t[np.arange(index.size), index]
    return t_lo + frac * (t_hi - t_lo)


def es_events(rng: np.random.Generator, n: int, spectrum: str) -> dict[str, np.ndarray]:
    """n ES interactions: neutrino energy/direction, electron T and direction (detector frame)."""
    nu_energy = neutrino_energies(rng, n, spectrum)
    # Keep only neutrinos able to give a visible electron, redrawing the others (≤ a few rounds).
    short = max_recoil_energy(nu_energy) < MIN_ELECTRON_KE_MEV
    while short.any():
        nu_energy[short] = neutrino_energies(rng, int(short.sum()), spectrum)
        short = max_recoil_energy(nu_energy) < MIN_ELECTRON_KE_MEV
    nu_dir = isotropic_directions(rng, n)
    kinetic = es_electron_energies(rng, nu_energy)
    cos_t = recoil_cos_theta(kinetic, nu_energy)
    e_dir = rotate_from(nu_dir, cos_t, rng.uniform(0.0, 2.0 * np.pi, n))
    return {"nu_energy": nu_energy, "nu_dir": nu_dir, "kinetic": kinetic, "direction": e_dir}


def momentum_mev(kinetic_mev: np.ndarray) -> np.ndarray:
    """|p| [MeV/c] of an electron of kinetic energy T."""
    return np.sqrt(kinetic_mev**2 + 2.0 * kinetic_mev * ELECTRON_MASS_MEV)
