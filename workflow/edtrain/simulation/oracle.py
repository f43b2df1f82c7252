"""The ideal estimator of docs/physics.md §4, run on each simulated electron's own true trajectory.

A straight-line fit to the first 1–3 cm of the true path, sampled every 0.3 cm with 1.5 mm
smearing, sign assumed known: the physical limit a network could approach on the very same events
(a result better than it means the generator is too clean or the label leaks).
"""

from __future__ import annotations

import numpy as np

from edtrain.metrics import angular_error_deg
from edtrain.simulation.transport import STEP_CM, Trajectory, csda_range_cm

SAMPLE_EVERY_CM = 0.3
SMEAR_CM = 0.15
MIN_LENGTH_CM, MAX_LENGTH_CM = 1.0, 3.0
RANGE_FRACTION = 0.4  # fit length = this fraction of the CSDA range, clipped to 1–3 cm


def fit_length_cm(kinetic_mev: np.ndarray) -> np.ndarray:
    """Length of path the oracle fits: long enough to average hits, short enough to stay
    before the scattering of the slowing electron dominates."""
    return np.clip(RANGE_FRACTION * csda_range_cm(kinetic_mev), MIN_LENGTH_CM, MAX_LENGTH_CM)


def _principal_axis(moments: np.ndarray) -> np.ndarray:
    """Eigenvector of the largest eigenvalue of each 3×3 matrix in ``moments`` (n, 3, 3)."""
    _, vectors = np.linalg.eigh(moments)
    return vectors[:, :, -1]


def oracle_directions(
    rng: np.random.Generator,
    trajectory: Trajectory,
    n_electrons: int,
    vertex: np.ndarray,
    true_direction: np.ndarray,
    kinetic_mev: np.ndarray,
) -> dict[str, np.ndarray]:
    """Oracle fits for electrons 0..n_electrons−1 of ``trajectory``.

    Returns the vertex-free direction (``direction``), its angular error, the vertex-known
    error, the fit length and the number of points used.
    """
    length = fit_length_cm(kinetic_mev)
    step = np.rint(trajectory.path / STEP_CM).astype(np.int64)
    every = round(SAMPLE_EVERY_CM / STEP_CM)
    electron = trajectory.electron
    use = (electron < n_electrons) & (step % every == 0)
    use[use] &= trajectory.path[use] <= length[electron[use]] + 1e-6
    e = electron[use]
    points = trajectory.position[use] + SMEAR_CM * rng.standard_normal((e.size, 3))
    count = np.bincount(e, minlength=n_electrons).astype(np.float64)
    safe = np.maximum(count, 1.0)
    mean = (
        np.stack([np.bincount(e, points[:, k], n_electrons) for k in range(3)], 1) / safe[:, None]
    )

    def moments(centre: np.ndarray) -> np.ndarray:
        d = points - centre[e]
        outer = d[:, :, None] * d[:, None, :]
        return np.stack(
            [np.bincount(e, outer[:, i, j], n_electrons) for i in range(3) for j in range(3)], 1
        ).reshape(n_electrons, 3, 3)

    free = _principal_axis(moments(mean))
    known = _principal_axis(moments(vertex))
    free *= np.where(np.sum(free * true_direction, axis=1) < 0, -1.0, 1.0)[:, None]
    known *= np.where(np.sum(known * true_direction, axis=1) < 0, -1.0, 1.0)[:, None]
    return {
        "direction": free,
        "error_deg": angular_error_deg(free, true_direction),
        "vertex_known_error_deg": angular_error_deg(known, true_direction),
        "length_cm": length,
        "n_points": count.astype(np.int64),
    }
