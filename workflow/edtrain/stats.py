"""Uncertainties for the insights report: bootstrap intervals and the data-scaling fit.

The version table is only useful with error bars: two versions that differ by 1.5° may be
the same network (docs/predecessor.md §1: run-to-run noise ~0.4° at 20k). Percentile
bootstrap is used because the 68 % containment and the median have no simple closed-form error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Statistic = Callable[..., np.ndarray]
"""Maps k arrays of shape (B, n) to B values, one per resample (vectorized along axis -1)."""

_CHUNK_ELEMENTS = 4_000_000  # resample indices held at once: bounds memory for large test sets


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    value: float
    lo: float
    hi: float

    @property
    def excludes_zero(self) -> bool:
        return bool(self.lo > 0.0 or self.hi < 0.0)


def mean_stat(e: np.ndarray) -> np.ndarray:
    return np.mean(e, axis=-1)


def median_stat(e: np.ndarray) -> np.ndarray:
    return np.median(e, axis=-1)


def q68_stat(e: np.ndarray) -> np.ndarray:
    return np.percentile(e, 68, axis=-1)


STATISTICS: dict[str, Statistic] = {"mean": mean_stat, "median": median_stat, "q68": q68_stat}


def _replicates(
    arrays: tuple[np.ndarray, ...], statistic: Statistic, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """n_boot bootstrap values of statistic; the same resample indices for every array (paired)."""
    n = arrays[0].shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = statistic(*(a[idx] for a in arrays))
    return out


def _interval(value: float, replicates: np.ndarray, level: float) -> Interval:
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(replicates, [tail, 100.0 - tail])
    return Interval(float(value), float(lo), float(hi))


def bootstrap(
    *arrays: np.ndarray,
    statistic: Statistic,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile-bootstrap interval of statistic(*arrays), resampling rows jointly.

    Several arrays of equal length are resampled with the same indices, which is what a
    paired comparison of two versions on one test set needs.
    """
    arrays = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    if not arrays or arrays[0].size == 0:
        raise ValueError("bootstrap needs at least one non-empty array")
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("paired bootstrap needs arrays of equal length")
    value = float(statistic(*arrays))
    reps = _replicates(arrays, statistic, n_boot, np.random.default_rng(seed))
    return _interval(value, reps, level)


def bootstrap_difference(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Statistic,
    paired: bool,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Interval of statistic(a) − statistic(b).

    Paired (same test samples, aligned rows) resamples both with one set of indices so the
    sample-to-sample difficulty cancels; unpaired resamples each independently.
    """
    if paired:
        return bootstrap(
            a,
            b,
            statistic=lambda x, y: statistic(x) - statistic(y),
            n_boot=n_boot,
            seed=seed,
            level=level,
        )
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(seed)
    reps = _replicates((a,), statistic, n_boot, rng) - _replicates((b,), statistic, n_boot, rng)
    return _interval(float(statistic(a) - statistic(b)), reps, level)


@dataclass(frozen=True)
class PowerLaw:
    """error(N) = amplitude · N^(−exponent), fitted as a straight line in log-log."""

    amplitude: float
    exponent: float
    cov: np.ndarray  # covariance of (ln amplitude, −exponent)
    n_points: int
    chi2_dof: float  # NaN when unweighted: the scatter itself set the uncertainties
    weighted: bool

    def predict(self, n: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fitted error at n and its 1σ uncertainty (delta method in log space)."""
        x = np.log(np.asarray(n, dtype=np.float64))
        value = self.amplitude * np.exp(-self.exponent * x)
        var_log = self.cov[0, 0] + 2.0 * x * self.cov[0, 1] + x * x * self.cov[1, 1]
        return value, value * np.sqrt(np.maximum(var_log, 0.0))

    @property
    def exponent_sigma(self) -> float:
        return float(np.sqrt(self.cov[1, 1]))


def fit_power_law(n: np.ndarray, error: np.ndarray, sigma: np.ndarray | None = None) -> PowerLaw:
    """Weighted least squares of ln error = ln a − b ln N.

    Without per-point uncertainties the scatter of the points sets them. With them, the
    covariance is inflated by the reduced χ² when that exceeds 1 (Birge ratio), because
    training noise between runs is usually larger than the test-set noise the points carry.
    """
    x = np.log(np.asarray(n, dtype=np.float64))
    y = np.log(np.asarray(error, dtype=np.float64))
    if x.size < 2 or np.unique(x).size < 2:
        raise ValueError("a power-law fit needs at least two distinct sample sizes")
    w = np.ones_like(y) if sigma is None else (np.asarray(error) / np.asarray(sigma)) ** 2
    design = np.column_stack([np.ones_like(x), x])
    normal = design.T @ (design * w[:, None])
    cov = np.linalg.inv(normal)
    coef = cov @ (design.T @ (w * y))
    dof = x.size - 2
    chi2 = float(np.sum(w * (y - design @ coef) ** 2))
    chi2_dof = chi2 / dof if dof > 0 else float("nan")
    if sigma is None:
        cov = cov * chi2_dof if dof > 0 else np.full_like(cov, np.nan)
    elif dof > 0 and chi2_dof > 1.0:
        cov = cov * chi2_dof
    return PowerLaw(
        float(np.exp(coef[0])),
        float(-coef[1]),
        cov,
        int(x.size),
        chi2_dof if sigma is not None else float("nan"),
        sigma is not None,
    )
