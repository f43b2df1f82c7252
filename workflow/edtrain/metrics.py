"""Angular-error statistics, defined once (see docs/metrics.md).

The 68 % containment is the 68th percentile of the 3-D angular error
(equivalently arccos of the 32nd percentile of the cosines); the upstream
"25° @ 68 %" figure used the 32 % point by mistake.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ENERGY_BINS_MEV = np.array([*range(2, 32, 2), 35, 40, 50, 70], dtype=float)
# what the bins bin: `energy_mev`, the cluster energy the metadata carries, not the true one
ENERGY_BINNED = "cluster energy from ADC (metadata column 10)"
# A head–tail flip: the axis is right within this (sign-folded error below it) but the sense is
# reversed (error above 90°), i.e. an error above 180° − FLIP_FOLDED_MAX_DEG. Fixed, not a
# version's own folded 68 %, so the fraction compares across versions.
FLIP_FOLDED_MAX_DEG = 30.0
# Sign agreement counts a component only where the true direction clearly has a sense along it.
SIGN_MIN_ABS = 0.5


def unit(vectors: np.ndarray, zero: float = 0.0) -> np.ndarray:
    """Rows scaled to unit length; rows with a NaN or infinite component have no direction and
    become NaN (no score, rather than a made-up one). Zero rows become ``zero``: 0 for
    predictions (a zero prediction scores as 90°), NaN for truth (a zero momentum has no
    direction, so the sample has no label)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    out = np.where(np.isfinite(norm), zero, np.nan) * np.ones_like(vectors)
    return np.divide(vectors, norm, out=out, where=np.isfinite(norm) & (norm > 0))


def cosines(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """cos of the angle between each predicted and true direction, clipped to [−1, 1]."""
    return np.clip(np.sum(unit(pred) * unit(true), axis=-1), -1.0, 1.0)


def angular_error_deg(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Angle between prediction and truth in degrees, in [0, 180]."""
    return np.degrees(np.arccos(cosines(pred, true)))


def _fraction(selected: np.ndarray, errors: np.ndarray) -> float:
    """Fraction of samples selected; NaN if any error is undefined (like every other statistic)."""
    return float(np.where(np.isnan(errors), np.nan, selected).mean())


def summarize(errors_deg: np.ndarray) -> dict[str, float]:
    """The metric set of metrics.json, from per-sample angular errors in degrees."""
    e = np.asarray(errors_deg, dtype=np.float64)
    if e.size == 0:
        raise ValueError("cannot summarize an empty set of angular errors")
    folded = np.minimum(e, 180.0 - e)
    flipped = (e > 90.0) & (folded < FLIP_FOLDED_MAX_DEG)
    p25, median, q68, p75, p90 = np.percentile(e, [25, 50, 68, 75, 90])
    return {
        "n": int(e.size),
        "mean_deg": float(e.mean()),
        "median_deg": float(median),
        "q68_deg": float(q68),
        "p25_deg": float(p25),
        "p75_deg": float(p75),
        "p90_deg": float(p90),
        "mean_cos": float(np.cos(np.radians(e)).mean()),
        "frac_over_90": _fraction(e > 90.0, e),
        "folded_q68_deg": float(np.percentile(folded, 68)),
        "folded_mean_deg": float(folded.mean()),
        "flip_frac": _fraction(flipped, e),
    }


def sign_agreement(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Per axis, the fraction of samples with |true component| > SIGN_MIN_ABS whose predicted
    component has the same sign: shows which axis's sense a network misses (e.g. the drift
    coordinate x when the two faces look alike). NaN where no sample counts or a prediction
    is undefined."""
    p, t = unit(pred), unit(true)
    counted = np.abs(t) > SIGN_MIN_ABS
    agree = np.where(np.isnan(p), np.nan, np.sign(p) == np.sign(t))
    hits = np.where(counted, agree, 0.0).sum(axis=0)
    n = counted.sum(axis=0)
    frac = np.divide(hits, n, out=np.full(3, np.nan), where=n > 0)
    return {f"sign_agree_{axis}": float(v) for axis, v in zip("xyz", frac, strict=True)}


def oracle_comparison(
    pred: np.ndarray, true: np.ndarray, oracle: np.ndarray, energy_mev: np.ndarray
) -> dict[str, Any]:
    """The oracle and the version on exactly the samples that have an oracle direction.

    The oracle (a line fit on the electron's true path, synthetic productions only) is the
    reference a network could approach; comparing on the same samples keeps the ratio of the
    68 % containments free of sample-selection effects. Without any oracle sample only the
    counts are given.
    """
    oracle = np.asarray(oracle, dtype=np.float64)
    has = np.isfinite(oracle).all(axis=-1)
    block: dict[str, Any] = {"n": int(has.sum()), "fraction": _ratio(has.sum(), has.size)}
    if not has.any():
        return block
    pred, true = np.asarray(pred)[has], np.asarray(true)[has]
    oracle_errors = angular_error_deg(oracle[has], true)
    block["oracle"] = summarize(oracle_errors) | sign_agreement(oracle[has], true)
    block["version"] = summarize(angular_error_deg(pred, true)) | sign_agreement(pred, true)
    block["q68_ratio"] = _ratio(block["version"]["q68_deg"], block["oracle"]["q68_deg"])
    block["by_energy"] = by_energy(oracle_errors, np.asarray(energy_mev)[has])
    return block


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else float("nan")


def by_energy(
    errors_deg: np.ndarray, energy_mev: np.ndarray, edges: np.ndarray = ENERGY_BINS_MEV
) -> list[dict[str, float]]:
    """Median, 68 % and count of the error per energy bin (the predecessor's bins)."""
    errors_deg = np.asarray(errors_deg, dtype=np.float64)
    which = np.digitize(np.asarray(energy_mev, dtype=np.float64), edges) - 1
    rows = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        e = errors_deg[which == i]
        rows.append(
            {
                "e_lo_mev": float(lo),
                "e_hi_mev": float(hi),
                "n": int(e.size),
                "mean_deg": float(e.mean()) if e.size else float("nan"),
                "median_deg": float(np.median(e)) if e.size else float("nan"),
                "q68_deg": float(np.percentile(e, 68)) if e.size else float("nan"),
            }
        )
    return rows


# The predicted cones whose coverage is checked, and the most confident shares whose 68 %
# containment is reported, for versions with a per-event concentration κ (the vmf loss).
CONE_LEVELS = (0.68, 0.90)
CONFIDENT_SHARES = (0.5, 0.8)


def vmf_cone_deg(kappa: np.ndarray, level: float) -> np.ndarray:
    """Half-angle of the cone around the mean holding ``level`` of a von Mises–Fisher
    distribution on the sphere: cos θ = 1 + ln(1 − level·(1 − e^{−2κ}))/κ (κ → 0: the
    uniform sphere's 1 − 2·level)."""
    k = np.maximum(np.asarray(kappa, dtype=np.float64), 1e-12)
    cos = 1.0 + np.log1p(level * np.expm1(-2.0 * k)) / k
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def kappa_scale(errors_deg: np.ndarray, kappa: np.ndarray, level: float = CONE_LEVELS[0]) -> float:
    """The factor s whose cones of s·κ hold ``level`` of these (validation) errors.

    The vmf loss fits κ to the whole error distribution, whose tails (head–tail flips,
    misread tracks) are heavier than a vMF's, so its cones come out wider than they need be
    (temperature scaling, Guo et al. 2017, for a direction): one factor, fitted on held-out
    samples, makes the ``level`` cone hold ``level`` of them. Coverage falls as s grows, so
    the factor is found by bisection in log s between 1/100 and 100.
    """
    errors_deg = np.asarray(errors_deg, dtype=np.float64)
    kappa = np.asarray(kappa, dtype=np.float64)
    usable = np.isfinite(errors_deg) & np.isfinite(kappa)
    if not usable.any():
        return float("nan")
    errors_deg, kappa = errors_deg[usable], kappa[usable]
    lo, hi = -2.0, 2.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        inside = np.mean(errors_deg <= vmf_cone_deg(10.0**mid * kappa, level))
        lo, hi = (mid, hi) if inside > level else (lo, mid)
    return float(10.0 ** (0.5 * (lo + hi)))


# κ is calibrated per cluster energy on at most this many validation bins of equal counts,
# each of at least CALIBRATION_MIN_BIN samples (fewer bins on a small validation set, down to
# one: a single factor)
CALIBRATION_BINS = 12
CALIBRATION_MIN_BIN = 1000


@dataclass(frozen=True)
class KappaCalibration:
    """The factor κ is multiplied by, as a function of the cluster energy.

    One factor (``kappa_scale``) leaves the cones of the lowest and highest energies too
    narrow and those in between too wide: the tails beyond a vMF (flips, misread tracks) are
    not the same share at every energy. So the factor is fitted on validation bins of equal
    counts in cluster energy and interpolated between the bins' median energies in log
    energy (held constant beyond the first and the last), as temperature scaling conditioned
    on the one covariate the insights check calibration against. ``energy_mev`` holds the
    knots (increasing), ``scale`` the factors; one knot is a single factor.
    """

    energy_mev: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(
        cls, errors_deg: np.ndarray, kappa: np.ndarray, energy_mev: np.ndarray
    ) -> KappaCalibration:
        """The calibration of these (validation) samples; NaN factor where none is usable."""
        errors_deg, kappa, energy_mev = (
            np.asarray(a, dtype=np.float64) for a in (errors_deg, kappa, energy_mev)
        )
        usable = np.isfinite(errors_deg) & np.isfinite(kappa) & (energy_mev > 0)
        if not usable.any():
            return cls.constant(np.nan)
        e, err, k = energy_mev[usable], errors_deg[usable], kappa[usable]
        bins = int(np.clip(e.size // CALIBRATION_MIN_BIN, 1, CALIBRATION_BINS))
        parts = np.array_split(np.argsort(e, kind="stable"), bins)
        return cls(
            np.array([np.median(e[i]) for i in parts]),
            np.array([kappa_scale(err[i], k[i]) for i in parts]),
        )

    @classmethod
    def constant(cls, scale: float = 1.0) -> KappaCalibration:
        """One factor at every energy."""
        return cls(np.ones(1), np.full(1, float(scale)))

    @classmethod
    def saved(cls, record: Mapping[str, Any]) -> KappaCalibration | None:
        """The calibration saved in predictions.npz or in metrics.json's ``uncertainty``
        block (None where none is); a lone factor without energies (what versions scored
        before the per-energy calibration saved) is kept as one factor."""
        if record.get("kappa_scale") is None:
            return None
        scale = np.atleast_1d(np.asarray(record["kappa_scale"], dtype=np.float64))
        energy = record.get("kappa_scale_energy_mev")
        if energy is None:
            if scale.size != 1:
                raise ValueError(f"{scale.size} κ factors without kappa_scale_energy_mev")
            return cls.constant(scale[0])
        return cls(np.atleast_1d(np.asarray(energy, dtype=np.float64)), scale)

    def __call__(self, kappa: np.ndarray, energy_mev: np.ndarray) -> np.ndarray:
        """Calibrated κ of samples with these cluster energies."""
        energy = np.maximum(np.asarray(energy_mev, dtype=np.float64), 1e-3)
        factor = np.interp(np.log(energy), np.log(self.energy_mev), self.scale)
        return np.asarray(kappa, dtype=np.float64) * factor

    def record(self) -> dict[str, list[float]]:
        """The JSON form (metrics.json's ``uncertainty`` block)."""
        return {
            "kappa_scale": self.scale.tolist(),
            "kappa_scale_energy_mev": self.energy_mev.tolist(),
        }


def _coverage(errors_deg: np.ndarray, kappa: np.ndarray) -> dict[str, float]:
    """Share of samples inside their predicted cone, per level (NaN: none, or undefined)."""
    return {
        f"cover_{round(100 * level)}": _fraction(
            errors_deg <= vmf_cone_deg(kappa, level), errors_deg
        )
        if errors_deg.size
        else float("nan")
        for level in CONE_LEVELS
    }


def uncertainty(
    errors_deg: np.ndarray,
    kappa: np.ndarray,
    energy_mev: np.ndarray,
    edges: np.ndarray = ENERGY_BINS_MEV,
    calibration: KappaCalibration | None = None,
) -> dict[str, Any]:
    """How far the per-event κ can be trusted: the observed share of test electrons inside
    each predicted cone (a calibrated κ gives the cone's level), overall and per energy bin,
    and the 68 % containment of the most confident shares (what a cut on κ buys).
    ``calibration`` is the one already applied to ``kappa`` (recorded; none: a factor 1)."""
    errors_deg = np.asarray(errors_deg, dtype=np.float64)
    kappa = np.asarray(kappa, dtype=np.float64)
    calibration = calibration or KappaCalibration.constant()
    block: dict[str, Any] = {
        **calibration.record(),
        "median_kappa": float(np.median(kappa)),
        **_coverage(errors_deg, kappa),
    }
    for share in CONFIDENT_SHARES:  # none kept where κ is undefined (a failed version)
        kept = kappa >= np.quantile(kappa, 1.0 - share)
        q68 = np.percentile(errors_deg[kept], 68) if kept.any() else np.nan
        block[f"q68_deg_top{round(100 * share)}"] = float(q68)
    which = np.digitize(np.asarray(energy_mev, dtype=np.float64), edges) - 1
    block["by_energy"] = [
        {
            "e_lo_mev": float(lo),
            "e_hi_mev": float(hi),
            "n": int((which == i).sum()),
            **_coverage(errors_deg[which == i], kappa[which == i]),
        }
        for i, (lo, hi) in enumerate(itertools.pairwise(edges))
    ]
    return block
