"""The per-version table: metrics with bootstrap intervals, and the status of each version.

Status rules (docs/insights.md): ❌ Failed if training crashed or left no score, or if the
mean error is more than ``fail_margin`` worse than the baseline's and, where both versions
have predictions, the 95 % interval of that difference excludes zero; ⚠️ NaN issues if any
training or validation loss was non-finite; ⭐ BEST for the lowest mean error among versions
that did not fail (NaN-affected versions included: a NaN can strike after the best epoch);
✅ Stable for the rest. BEST and NaN issues can both apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from edtrain.insights.compare import mean_difference
from edtrain.insights.runs import Run
from edtrain.metrics import ENERGY_BINNED, by_energy, sign_agreement, summarize
from edtrain.stats import STATISTICS, bootstrap

STAT_KEYS = {"mean": "mean_deg", "median": "median_deg", "q68": "q68_deg"}
# summary column ← path in the oracle block of metrics.json (metrics.oracle_comparison)
ORACLE_KEYS = {
    "oracle_n": ("n",),
    "oracle_q68_deg": ("oracle", "q68_deg"),
    "oracle_version_q68_deg": ("version", "q68_deg"),
    "oracle_q68_ratio": ("q68_ratio",),
}


@dataclass(frozen=True)
class StatusRules:
    """The configurable part of the status rules."""

    baseline: str | None
    fail_margin: float = 0.10


@dataclass(frozen=True)
class Bootstrap:
    n_boot: int = 1000
    seed: int = 0


def oracle_columns(run: Run) -> dict[str, float]:
    """The oracle comparison's headline numbers as flat columns; NaN where there is none."""
    out = {}
    for column, path in ORACLE_KEYS.items():
        value = run.oracle or {}
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        out[column] = np.nan if value is None else float(value)
    return out


def version_metrics(run: Run, boot: Bootstrap) -> dict[str, float]:
    """summarize() and sign agreement of the test errors plus 95 % intervals, and the oracle
    comparison; metrics.json values without predictions."""
    errors = run.errors
    if errors is None or errors.size == 0:
        known = {k: float(v) for k, v in run.metrics.items() if isinstance(v, int | float)}
        out = {key: known.get(key, np.nan) for key in STAT_KEYS.values()} | known
        for stat in STAT_KEYS:
            out[f"{stat}_lo"] = out[f"{stat}_hi"] = np.nan
        return out | oracle_columns(run)
    predictions = run.predictions
    out = (
        summarize(errors)
        | sign_agreement(predictions["test_predictions"], predictions["test_true"])
        | oracle_columns(run)
    )
    for stat in STAT_KEYS:
        interval = bootstrap(errors, statistic=STATISTICS[stat], n_boot=boot.n_boot, seed=boot.seed)
        out[f"{stat}_lo"], out[f"{stat}_hi"] = interval.lo, interval.hi
    return out


# A version without a training record: a job of it failed (e.g. killed after its retries) or
# was never run, and the insights were written anyway (the workflow's onerror handler).
NO_OUTPUTS = "no outputs: a job of it failed or did not run"
NO_SCORE = ("crashed", "no score", NO_OUTPUTS)


def _failure(
    run: Run, mean: float, base: Run | None, base_mean: float, rules: StatusRules, boot: Bootstrap
) -> str:
    """Why a version counts as failed; empty if it does not."""
    if not run.training and not run.imported:
        return NO_OUTPUTS
    if run.training_status == "failed" or not np.isfinite(mean):
        return "crashed" if run.training_status == "failed" else "no score"
    if base is None or base.name == run.name or not np.isfinite(base_mean):
        return ""
    excess = (mean - base_mean) / base_mean
    if excess <= rules.fail_margin:
        return ""
    interval = mean_difference(run, base, boot.n_boot, boot.seed)
    reason = f"{100 * excess:.0f} % worse than baseline {base.name}"
    if interval is None:
        return f"{reason} (margin {100 * rules.fail_margin:.0f} %; no predictions to test it)"
    return reason if interval.lo > 0.0 else ""


def status_label(failed: str, nan: bool, best: bool) -> str:
    if failed:
        return "❌ Failed"
    parts = (["⭐ BEST"] if best else []) + (["⚠️ NaN issues"] if nan else [])
    return " · ".join(parts) if parts else "✅ Stable"


def summary_table(runs: list[Run], rules: StatusRules, boot: Bootstrap) -> pd.DataFrame:
    """One row per version (index: version), sorted by mean error ascending, statuses set."""
    rows = {}
    for run in runs:
        rows[run.name] = {
            "imported": run.imported,
            "training_status": run.training_status,
            "samples": run.samples,
            "samples_unscaled": ((run.config.get("scaling") or {}).get("unscaled") or {}).get(
                "samples", np.nan
            ),
            "scaling": (run.config.get("scaling") or {}).get("name") or "scaled",
            "architecture": run.architecture,
            "loss": run.loss,
            "frame": run.frame,
            "test_set": run.test_set,
            "has_predictions": run.predictions is not None,
            "epochs_run": run.training.get("epochs_run"),
            "best_epoch": run.training.get("best_epoch"),
            "nan_epoch": run.training.get("nan_epoch"),
            "best_val_loss": run.training.get("best_val_loss"),
            **version_metrics(run, boot),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "version"
    by_name = {run.name: run for run in runs}
    base = by_name.get(rules.baseline) if rules.baseline else None
    base_mean = table.loc[base.name, "mean_deg"] if base else np.nan
    table["failed"] = [
        _failure(run, table.loc[run.name, "mean_deg"], base, base_mean, rules, boot) for run in runs
    ]
    table["nan_issues"] = [run.training_status == "nan" or run.history_nonfinite() for run in runs]
    candidates = table[(table["failed"] == "") & np.isfinite(table["mean_deg"])]
    table["best"] = table.index == (candidates["mean_deg"].idxmin() if len(candidates) else None)
    table["status"] = [status_label(r.failed, r.nan_issues, r.best) for r in table.itertuples()]
    return table.sort_values("mean_deg", kind="stable", na_position="last")


def energy_table(runs: list[Run]) -> pd.DataFrame:
    """Error per energy bin and version: from predictions, else from metrics.json by_energy;
    with an oracle, its count, median and 68 % on the version's oracle samples per bin. Its
    ``energy`` column names the energy binned, so the CSV says it without the docs."""
    frames = []
    for run in runs:
        errors = run.errors
        if errors is not None and "energy_mev" in run.predictions:
            rows = by_energy(errors, run.predictions["energy_mev"])
        else:
            rows = run.metrics.get("by_energy") or []
        if not rows:
            continue
        frame = pd.DataFrame(rows).assign(version=run.name)
        oracle_bins = (run.oracle or {}).get("by_energy")
        if oracle_bins:  # the same bins in the same order
            oracle = pd.DataFrame(oracle_bins)[["n", "median_deg", "q68_deg"]]
            frame = frame.join(oracle.add_prefix("oracle_"))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(
            columns=["version", "energy", "e_lo_mev", "e_hi_mev", "n", "mean_deg", "median_deg",
                     "q68_deg"]
        )  # fmt: skip
    table = pd.concat(frames, ignore_index=True).assign(energy=ENERGY_BINNED)
    first = ["version", "energy"]
    return table[[*first, *[c for c in table.columns if c not in first]]]
