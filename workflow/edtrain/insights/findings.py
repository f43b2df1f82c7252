"""The Key Insights: architecture, data scaling and loss comparisons, computed from the table.

Only versions that did not fail enter a finding. Percent improvements are computed from the
values as the report quotes them, so a reader can check every figure from the text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from edtrain.insights.compare import Comparison, compare, other_settings, primary_factors
from edtrain.insights.runs import Run
from edtrain.insights.version_table import Bootstrap
from edtrain.stats import PowerLaw, fit_power_law

# Group means of the data-scaling section are quoted to whole degrees: the spread between
# versions of one size (and the run-to-run noise) makes further digits meaningless.
GROUP_MEAN_DECIMALS = 0
Z_95 = 1.959964


def usable(table: pd.DataFrame) -> pd.DataFrame:
    """Rows that did not fail and have a mean error."""
    return table[(table["failed"] == "") & np.isfinite(table["mean_deg"].astype(float))]


def improvement(reference: float, value: float) -> float:
    """Relative reduction of the error, (reference − value) / reference."""
    return (reference - value) / reference


def _means(table: pd.DataFrame) -> dict[str, float]:
    return table["mean_deg"].astype(float).to_dict()


def architecture_gains(
    runs: list[Run], table: pd.DataFrame, baseline: str | None, boot: Bootstrap
) -> list[Comparison]:
    """Best version of each other architecture and size, against the baseline version."""
    by_name = {r.name: r for r in runs}
    if baseline not in by_name or baseline not in table.index:
        return []
    base = by_name[baseline]
    others = usable(table)
    others = others[others["architecture"] != base.architecture]
    best = others.sort_values("mean_deg").groupby(["architecture", "samples"], sort=False).head(1)
    best = best.sort_values("mean_deg")
    means = _means(table)
    return [compare(by_name[v], base, means, boot.n_boot, boot.seed) for v in best.index]


@dataclass(frozen=True)
class SizeGroup:
    samples: int
    versions: list[str]
    mean: float
    quoted: float
    improvement: float  # of the quoted mean over the smallest size's quoted mean


def size_groups(table: pd.DataFrame) -> list[SizeGroup]:
    """Average mean error per training size over the versions that did not fail."""
    rows = usable(table).dropna(subset=["samples"])
    groups = []
    for samples, group in sorted(rows.groupby("samples"), key=lambda item: item[0]):
        mean = float(group["mean_deg"].mean())
        groups.append(
            SizeGroup(int(samples), list(group.index), mean, round(mean, GROUP_MEAN_DECIMALS), 0.0)
        )
    if not groups:
        return []
    ref = groups[0].quoted
    return [
        SizeGroup(g.samples, g.versions, g.mean, g.quoted, improvement(ref, g.quoted))
        for g in groups
    ]


def scaling_group(runs: list[Run], table: pd.DataFrame) -> list[str]:
    """The versions a scaling fit may pool: one architecture, loss and label frame at two or
    more sizes, at least three of them (a fit across architectures would mix their effects
    with the data's). Of several such recipes, the one with most versions, then the best."""
    rows = usable(table).dropna(subset=["samples"])
    groups: dict[str, list[str]] = {}
    for run in runs:
        if run.name in rows.index:
            factors = primary_factors(run)
            del factors["samples"]
            groups.setdefault(json.dumps(factors, sort_keys=True), []).append(run.name)
    fits = [g for g in groups.values() if len(g) >= 3 and rows.loc[g, "samples"].nunique() >= 2]
    if not fits:
        return []
    return min(fits, key=lambda g: (-len(g), float(rows.loc[g, "mean_deg"].min())))


def scaling_fit(table: pd.DataFrame, versions: list[str]) -> PowerLaw | None:
    """error(N) over ``versions`` (``scaling_group``), weighted by their intervals when all
    have one. Two points always fit exactly and say nothing about a power law: three needed."""
    if len(versions) < 3:
        return None
    rows = table.loc[versions]
    width = (rows["mean_hi"] - rows["mean_lo"]).astype(float).to_numpy()
    sigma = width / (2 * Z_95) if np.all(np.isfinite(width) & (width > 0)) else None
    return fit_power_law(
        rows["samples"].astype(float).to_numpy(), rows["mean_deg"].astype(float).to_numpy(), sigma
    )


def next_size(table: pd.DataFrame, requested: int | None, versions: list[str]) -> int | None:
    """The size to extrapolate to: as requested, else twice the largest the fit saw."""
    if requested:
        return requested
    samples = table.loc[versions, "samples"].dropna() if versions else pd.Series(dtype=float)
    return int(2 * samples.max()) if len(samples) else None


def loss_groups(runs: list[Run], table: pd.DataFrame) -> list[list[str]]:
    """Sets of scored versions identical in everything but the loss, with ≥ 2 distinct losses."""
    scored = [
        r for r in runs if r.name in table.index and np.isfinite(table.loc[r.name, "mean_deg"])
    ]
    groups: dict[str, list[Run]] = {}
    for run in scored:
        factors = primary_factors(run)
        key = repr(
            (
                factors["architecture"],
                factors["samples"],
                factors["frame"],
                sorted(other_settings(run).items()),
            )
        )
        groups.setdefault(key, []).append(run)
    return [
        [r.name for r in members]
        for members in groups.values()
        if len({r.loss for r in members}) > 1
    ]
