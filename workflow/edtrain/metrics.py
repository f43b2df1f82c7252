"""Angular-error statistics, defined once (see docs/metrics.md).

The 68 % containment is the 68th percentile of the 3-D angular error
(equivalently arccos of the 32nd percentile of the cosines); the upstream
"25° @ 68 %" figure used the 32 % point by mistake.
"""

from __future__ import annotations

import itertools

import numpy as np

ENERGY_BINS_MEV = np.array([*range(2, 32, 2), 35, 40, 50, 70], dtype=float)


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero (and score as 90°); rows with a NaN or
    infinite component have no direction and become NaN (no score, rather than a made-up one)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    out = np.where(np.isfinite(norm), 0.0, np.nan) * np.ones_like(vectors)
    return np.divide(vectors, norm, out=out, where=np.isfinite(norm) & (norm > 0))


def cosines(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """cos of the angle between each predicted and true direction, clipped to [−1, 1]."""
    return np.clip(np.sum(unit(pred) * unit(true), axis=-1), -1.0, 1.0)


def angular_error_deg(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Angle between prediction and truth in degrees, in [0, 180]."""
    return np.degrees(np.arccos(cosines(pred, true)))


def summarize(errors_deg: np.ndarray) -> dict[str, float]:
    """The metric set of metrics.json, from per-sample angular errors in degrees."""
    e = np.asarray(errors_deg, dtype=np.float64)
    if e.size == 0:
        raise ValueError("cannot summarize an empty set of angular errors")
    folded = np.minimum(e, 180.0 - e)
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
        "frac_over_90": float((e > 90.0).mean()),
        "folded_q68_deg": float(np.percentile(folded, 68)),
        "folded_mean_deg": float(folded.mean()),
    }


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
