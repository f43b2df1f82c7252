"""Supernova burst pointing from one version's test predictions (docs/insights.md).

A toy burst is N elastic-scattering electrons from one supernova. The test set's events come
from neutrinos in all directions, so each event is turned into the burst frame: rotated so its
reference direction (the neutrino's where the data carry it, else the true electron's) lies
along +z, with a random azimuth. The burst direction estimate is the normalized sum of the
predicted unit directions; its angle to +z is the pointing error. Head–tail flips pull the sum
backwards, which is why a few percent of flips cost pointing resolution.

Turning every event to a random azimuth erases what matters most for a real burst: errors
that depend on the direction in the detector (predictions piling up along an axis, a bias of
one component). So the toys are also drawn in the detector frame: for each of the six axis
directions ±x, ±y, ±z, bursts of the test events whose reference direction lies within
``FIXED_CONE_DEG`` of it, each event turned by the smallest rotation that takes its reference
onto the axis (at most that cone, so a direction-dependent error survives). The pile-up ratio
says how often predictions fall near a detector axis compared with the true directions.
An isotropic burst direction has a 68 % error of arccos(1 − 2·0.68) = 111.5°: a version near
that does not point at all.

Where the version predicts a concentration κ per event (vmf, angular_vmf), the same toys are
also pointed by maximum likelihood: each electron's direction is von Mises–Fisher distributed
about the burst direction with its κ folded with the ES kinematic spread at its energy, and the
likelihood of vMF terms peaks at the κ-weighted sum of the directions. Where it predicts the
probability p that each direction's sense is right (axial_sense), each electron counts as its
expected direction, (2p − 1) times the predicted one: a coin toss adds nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edtrain.metrics import ENERGY_BINS_MEV, unit

CONTAINMENT = 68.0
# the 68 % error of a direction drawn uniformly on the sphere: no pointing at all
ISOTROPIC_Q68_DEG = float(np.degrees(np.arccos(1.0 - 2.0 * CONTAINMENT / 100.0)))
FIXED_CONE_DEG = 25.0  # events whose reference lies this close to a fixed burst direction
MIN_POOL = 100  # events near an axis for its bursts (drawn with replacement)
PILEUP_CONE_DEG = 20.0  # "near an axis" for the pile-up ratio
AXES = np.concatenate([np.eye(3), -np.eye(3)])  # +x, +y, +z, −x, −y, −z


@dataclass(frozen=True)
class Pointing:
    """68 % containment of the burst-direction error (degrees) and its statistical spread."""

    reference: str  # "neutrino" or "electron"
    events: int
    burst_size: int
    toys: int
    q68_deg: float
    q68_sigma_deg: float
    floor_q68_deg: float  # the same toys with perfect electron directions
    floor_sigma_deg: float
    weighted_q68_deg: float | None = None  # the same toys, weighted by κ or the sense
    weighted_sigma_deg: float | None = None
    # bursts along the six detector axes, not turned in azimuth (None: too few events near them)
    fixed_q68_deg: float | None = None
    fixed_sigma_deg: float | None = None
    fixed_floor_q68_deg: float | None = None
    fixed_directions: int = 0
    pileup_ratio: float | None = None  # predictions near a detector axis ÷ truth near it
    pileup_axis: str = "—"  # the axis with the largest ratio
    test_events: int = 0  # scored test events, of which `events` have the reference direction


def frame_coordinates(vectors: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Components of each vector in an orthonormal frame whose third axis is that row's axis."""
    axis = unit(axis)
    helper = np.where(np.abs(axis[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    e1 = unit(np.cross(axis, helper))
    e2 = np.cross(axis, e1)
    v = unit(vectors)
    return np.stack([np.sum(v * e1, -1), np.sum(v * e2, -1), np.sum(v * axis, -1)], axis=-1)


def draw_bursts(
    events: int, burst_size: int, toys: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Event indices (with replacement) and burst-frame azimuths of ``toys`` bursts."""
    idx = rng.integers(0, events, size=(toys, burst_size))
    return idx, rng.uniform(0.0, 2.0 * np.pi, size=(toys, burst_size))


def burst_errors(
    local: np.ndarray,
    bursts: tuple[np.ndarray, np.ndarray],
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Pointing error (degrees) of each burst: the angle to +z of the (weighted) sum of its
    events' burst-frame vectors, each turned by its azimuth."""
    idx, phi = bursts
    x, y, z = local[idx, 0], local[idx, 1], local[idx, 2]
    w = np.ones(idx.shape) if weights is None else weights[idx]
    c, s = np.cos(phi), np.sin(phi)
    total = np.stack(
        [(w * (c * x - s * y)).sum(1), (w * (s * x + c * y)).sum(1), (w * z).sum(1)], -1
    )
    return np.degrees(np.arccos(np.clip(unit(total)[:, 2], -1.0, 1.0)))


def rotate_onto(vectors: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each vector turned by the smallest rotation that takes its row's ``source`` unit
    vector onto the unit vector ``target`` (Rodrigues' formula)."""
    axis = np.cross(source, target)
    sin = np.linalg.norm(axis, axis=1, keepdims=True)
    cos = np.sum(source * target, axis=1, keepdims=True)
    k = np.divide(axis, sin, out=np.zeros_like(axis), where=sin > 1e-12)
    return (
        vectors * cos
        + np.cross(k, vectors) * sin
        + k * np.sum(k * vectors, axis=1, keepdims=True) * (1.0 - cos)
    )


def fixed_direction_pointing(
    pred: np.ndarray,
    true: np.ndarray,
    reference: np.ndarray,
    burst_size: int,
    toys: int,
    rng: np.random.Generator,
    n_boot: int = 20,
) -> tuple[float, float, float, int] | None:
    """68 % burst error along the detector axes (pooled over the axes with at least
    ``MIN_POOL`` events near them), its spread, the same with the true directions, and the
    number of axes; None if no axis has enough events.

    The bursts of one axis are drawn from a finite pool of events, whose own mean direction is
    off the axis by chance as a coherent bias would be: the spread therefore comes from
    resampling the pools (``n_boot`` times), not only the bursts.
    """
    reference = unit(reference)
    limit = np.cos(np.radians(FIXED_CONE_DEG))
    pools = []  # per axis: predictions and truth turned onto it, and the axis
    for target in AXES:
        near = np.flatnonzero(reference @ target >= limit)
        if len(near) >= MIN_POOL:
            goal = np.broadcast_to(target, (len(near), 3))
            turned = [rotate_onto(unit(v[near]), reference[near], goal) for v in (pred, true)]
            pools.append((*turned, target))
    if not pools:
        return None

    def q68(which: int, resample: bool) -> float:
        errors = []
        for *vectors, target in pools:
            n = len(vectors[which])
            members = rng.integers(0, n, n) if resample else np.arange(n)
            idx = members[rng.integers(0, n, size=(toys, burst_size))]
            total = unit(vectors[which][idx].sum(axis=1))
            errors.append(np.degrees(np.arccos(np.clip(total @ target, -1.0, 1.0))))
        return float(np.percentile(np.concatenate(errors), CONTAINMENT))

    spread = float(np.std([q68(0, True) for _ in range(n_boot)]))
    return q68(0, False), spread, q68(1, False), len(pools)


def axis_pileup(pred: np.ndarray, true: np.ndarray) -> tuple[float, str]:
    """The detector axis (x, y or z, either sign) with the most excess of predictions within
    ``PILEUP_CONE_DEG`` of it, and that excess: the share of predictions near it divided by
    the share of true directions near it (1: no pile-up; NaN if no truth is near any axis)."""
    limit = np.cos(np.radians(PILEUP_CONE_DEG))
    near_pred = np.mean(np.abs(unit(pred)) >= limit, axis=0)
    near_true = np.mean(np.abs(unit(true)) >= limit, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(near_true > 0, near_pred / near_true, np.nan)
    if np.isnan(ratio).all():
        return float("nan"), "—"
    worst = int(np.nanargmax(ratio))
    return float(ratio[worst]), "xyz"[worst]


def kappa_from_mean_cosine(mean_cos: np.ndarray) -> np.ndarray:
    """The vMF concentration whose mean cosine coth κ − 1/κ is ``mean_cos`` (≤ 0: ~0)."""
    grid = np.logspace(-3, 6, 4000)
    mean_of_grid = 1.0 / np.tanh(grid) - 1.0 / grid
    return np.interp(mean_cos, mean_of_grid, grid)


def kinematic_kappa(
    true: np.ndarray, nu: np.ndarray, energy_mev: np.ndarray, edges: np.ndarray = ENERGY_BINS_MEV
) -> np.ndarray:
    """Per event, the concentration of the electron's direction about the neutrino's at its
    energy (ES kinematics), measured on the test set's own truth per energy bin."""
    cos = np.sum(unit(true) * unit(nu), axis=-1)
    which = np.clip(np.digitize(energy_mev, edges) - 1, 0, len(edges) - 2)
    counts = np.bincount(which, minlength=len(edges) - 1)
    mean = np.bincount(which, cos, minlength=len(edges) - 1) / np.maximum(counts, 1)
    return kappa_from_mean_cosine(mean)[which]


def _q68_with_spread(
    errors: np.ndarray, rng: np.random.Generator, n_boot: int = 200
) -> tuple[float, float]:
    """68 % containment over the toys and its bootstrap standard deviation."""
    resampled = errors[rng.integers(0, len(errors), size=(n_boot, len(errors)))]
    return (
        float(np.percentile(errors, CONTAINMENT)),
        float(np.percentile(resampled, CONTAINMENT, axis=1).std()),
    )


def burst_pointing(
    predictions: dict[str, np.ndarray], burst_size: int, toys: int, seed: int
) -> Pointing:
    """Pointing of `toys` bursts of `burst_size` events, and the perfect-direction floor, all
    on the same bursts; with a κ per event also its maximum-likelihood pointing, with a sense
    probability per event the sum of the expected directions."""
    pred = np.asarray(predictions["test_predictions"], dtype=np.float64)
    true = np.asarray(predictions["test_true"], dtype=np.float64)
    nu = np.asarray(predictions.get("nu_dir", np.full_like(true, np.nan)), dtype=np.float64)
    kappa, sense = predictions.get("kappa"), predictions.get("sense_probability")
    has_nu = np.isfinite(nu).all(axis=1) & (np.linalg.norm(np.nan_to_num(nu), axis=1) > 0)
    if has_nu.any():
        reference, keep, axis = "neutrino", has_nu, nu[has_nu]
    else:
        reference, keep, axis = "electron", np.ones(len(true), bool), true
    pred, true = pred[keep], true[keep]
    rng = np.random.default_rng(seed)
    bursts = draw_bursts(len(pred), burst_size, toys, rng)
    q68, sigma = _q68_with_spread(burst_errors(frame_coordinates(pred, axis), bursts), rng)
    floor, floor_sigma = _q68_with_spread(burst_errors(frame_coordinates(true, axis), bursts), rng)
    pointing = Pointing(
        reference, len(pred), burst_size, toys, q68, sigma, floor, floor_sigma,
        test_events=len(keep),
    )  # fmt: skip
    fixed = fixed_direction_pointing(pred, true, axis, burst_size, toys, rng)
    if fixed is not None:
        names = ("fixed_q68_deg", "fixed_sigma_deg", "fixed_floor_q68_deg", "fixed_directions")
        pointing = dataclasses.replace(pointing, **dict(zip(names, fixed, strict=True)))
    ratio, pileup_axis = axis_pileup(pred, true)
    pointing = dataclasses.replace(pointing, pileup_ratio=ratio, pileup_axis=pileup_axis)
    if kappa is not None:
        weights = np.asarray(kappa, dtype=np.float64)[keep]
        if reference == "neutrino":  # the ES spread adds to the network's: 1/κ' = 1/κ + 1/κ_ES
            energy = np.asarray(predictions["energy_mev"], dtype=np.float64)[keep]
            weights = 1.0 / (1.0 / weights + 1.0 / kinematic_kappa(true, axis, energy))
    elif sense is not None:  # each electron as its expected direction
        weights = 2.0 * np.asarray(sense, dtype=np.float64)[keep] - 1.0
    else:
        return pointing
    weighted = burst_errors(frame_coordinates(pred, axis), bursts, weights)
    return dataclasses.replace(pointing, **dict(zip(
        ("weighted_q68_deg", "weighted_sigma_deg"), _q68_with_spread(weighted, rng), strict=True
    )))  # fmt: skip
