"""``edtrain hyperopt-select``: the best trial, the trial table and the search plots.

Failed and NaN trials stay in the table and the plots (marked), so the record shows
the whole search; only a search in which no trial scored is an error, because
training the version on unsearched defaults is exactly the silent skip this replaces.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from edtrain.figure import DPI
from edtrain.hyperopt import record
from edtrain.hyperopt.propose import search_settings


def best(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The lowest-scoring trial; ties go to the earliest (round, trial)."""
    scored = [r for r in records if r["score"] is not None and math.isfinite(r["score"])]
    if not scored:
        reasons = "; ".join(f"{r['id']}: {r['reason']}" for r in records)
        raise RuntimeError(f"no hyperopt trial produced a score ({reasons})")
    return min(scored, key=lambda r: (r["score"], r["round"], r["trial"]))


def table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per trial: id, status, score, the parameters, epochs and the failure reason."""
    rows = []
    for r in records:
        training = r.get("training") or {}
        rows.append(
            {
                "id": r["id"],
                "round": r["round"],
                "trial": r["trial"],
                "status": r["status"],
                "score": r["score"],
                **r["params"],
                "epochs_run": training.get("epochs_run"),
                "best_epoch": training.get("best_epoch"),
                "reason": r["reason"],
            }
        )
    return pd.DataFrame(rows).astype({"epochs_run": "Int64", "best_epoch": "Int64"})


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """best_params.json: what the final training takes over, plus every trial for the record."""
    top = best(records)
    return {
        "objective": top["objective"],
        "best_trial": top["id"],
        "best_score": top["score"],
        "best_params": top["params"],
        "n_trials": len(records),
        "n_failed": sum(r["score"] is None for r in records),
        "trials": [
            {k: r[k] for k in ("id", "round", "trial", "status", "score", "params", "reason")}
            for r in records
        ],
    }


def _mark(ax: Axes, x: pd.Series, df: pd.DataFrame, top: str) -> None:
    """Scored trials coloured by round, failed ones as red crosses at the worst score."""
    ok = df["score"].notna()
    for round_, group in df[ok].groupby("round"):
        ax.scatter(x[group.index], group["score"], color=f"C{round_ % 10}", label=f"round {round_}")
    worst = df.loc[ok, "score"].max() if ok.any() else 0.0
    ax.scatter(x[~ok], [worst] * int((~ok).sum()), marker="x", c="red", label="failed / NaN")
    winner = df["id"] == top
    ax.scatter(
        x[winner], df.loc[winner, "score"], s=160, facecolors="none", edgecolors="k", label="best"
    )


def plot_trials(df: pd.DataFrame, objective: str, top: str, path: Path) -> None:
    """Score per trial in run order, with the best score so far."""
    fig = Figure(figsize=(max(6, 0.3 * len(df)), 4))
    ax = fig.subplots()
    _mark(ax, pd.Series(range(len(df)), index=df.index), df, top)
    ax.plot(range(len(df)), df["score"].cummin(), color="grey", lw=1, label="best so far")
    ax.set_xticks(range(len(df)), df["id"], rotation=90, fontsize=7)
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def plot_params(
    df: pd.DataFrame, space_: dict[str, dict[str, Any]], objective: str, top: str, path: Path
) -> None:
    """Score against each parameter, one panel each: choices on a category axis, log ranges
    on a log axis, as the sampler saw them."""
    ncols = min(3, len(space_))
    nrows = math.ceil(len(space_) / ncols)
    fig = Figure(figsize=(4 * ncols, 3 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (name, spec) in zip(axes.flat, space_.items(), strict=False):
        x = df[name]
        if "choices" in spec:
            labels = [str(c) for c in spec["choices"]]
            x = x.astype(str).map(labels.index)
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        elif spec.get("log"):
            lo, hi = spec.get("int") or spec["float"]
            pad = (hi / lo) ** 0.03
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(lo / pad, hi * pad)
        else:
            lo, hi = spec.get("int") or spec["float"]
            ax.set_xlim(lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo))
        _mark(ax, x, df, top)
        ax.set_xlabel(name)
        ax.set_ylabel(objective)
    for ax in axes.flat[len(space_) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncols=len(labels))
    title = f"{objective} (lower is better) against each searched parameter"
    fig.suptitle(title, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=DPI)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", type=Path, required=True, help="the version's base config.json")
    parser.add_argument(
        "--results", type=Path, nargs="+", required=True, help="result.json of every trial"
    )
    parser.add_argument("--best", type=Path, required=True, help="best_params.json to write")
    parser.add_argument("--table", type=Path, required=True, help="trials.csv to write")
    parser.add_argument("--plot-trials", type=Path, required=True, help="score per trial (PNG)")
    parser.add_argument(
        "--plot-params", type=Path, required=True, help="score against each parameter (PNG)"
    )


def main(args: argparse.Namespace) -> int:
    records = record.load(args.results)
    result = summary(records)
    df = table(records)
    args.best.parent.mkdir(parents=True, exist_ok=True)
    args.best.write_text(json.dumps(result, indent=2) + "\n")
    df.to_csv(args.table, index=False)
    args.plot_trials.parent.mkdir(parents=True, exist_ok=True)
    plot_trials(df, result["objective"], result["best_trial"], args.plot_trials)
    hopt = search_settings(json.loads(args.base.read_text()))
    plot_params(df, hopt["space"], result["objective"], result["best_trial"], args.plot_params)
    return 0
