"""The report's figures, one function per figure, a fixed set of file names.

Every file in PLOT_FILES is always written, so the workflow can declare them as outputs: a
figure whose input no version has (e.g. predictions, for imported legacy runs) says so.
Figures are built with matplotlib's object API (no pyplot), so no GUI backend or global
figure state is involved and PNGs are rendered by Agg.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, MaxNLocator

from edtrain.insights.findings import usable
from edtrain.metrics import cosines, unit

if TYPE_CHECKING:
    from edtrain.insights.runs import Run
    from edtrain.insights.text import Report

DPI = 120
MIN_BIN_COUNT = 10  # energy bins with fewer scored samples are not drawn
STAT_STYLE = {  # statistic → (label, marker)
    "mean": ("mean", "o"),
    "median": ("median", "s"),
    "q68": ("68 % containment", "^"),
}


def colors(names: list[str]) -> dict[str, tuple[float, ...]]:
    """One stable colour per version, in report order."""
    cmap = matplotlib.colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: object) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=kwargs.pop("figsize", (6.5, 4.5)), layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def placeholder(message: str) -> Figure:
    fig, ax = subplots(figsize=(6, 2.5))
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True)
    ax.set_axis_off()
    return fig


def with_predictions(report: Report) -> list[Run]:
    return [r for r in report.runs if r.errors is not None and r.errors.size]


def status_tag(row: pd.Series) -> str:
    if row["failed"]:
        return "Failed"
    tags = (["BEST"] if row["best"] else []) + (["NaN"] if row["nan_issues"] else [])
    return "+".join(tags)


def performance(report: Report) -> Figure:
    """Mean, median and 68 % per version with their intervals, in the table's order."""
    table = report.table
    if not np.isfinite(table["mean_deg"].astype(float)).any():
        return placeholder("no scored versions")
    fig, ax = subplots(figsize=(max(6.0, 1.1 * len(table) + 2), 4.5))
    x = np.arange(len(table))
    for k, (stat, (label, marker)) in enumerate(STAT_STYLE.items()):
        value = table[f"{stat}_deg"].astype(float).to_numpy()
        if not np.isfinite(value).any():
            continue
        lo = table[f"{stat}_lo"].astype(float).to_numpy()
        hi = table[f"{stat}_hi"].astype(float).to_numpy()
        yerr = np.nan_to_num(np.vstack([value - lo, hi - value]), nan=0.0)
        ax.errorbar(x + (k - 1) * 0.22, value, yerr=yerr, fmt=marker, capsize=3, label=label)
    ticks = [
        f"{name}{'*' if row['imported'] else ''}\n{status_tag(row)}"
        for name, row in table.iterrows()
    ]
    ax.set_xticks(x, ticks)
    ax.set_ylabel("angular error [deg]")
    ax.set_title("Angular error per version (bars: bootstrap 95 % intervals)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left")
    if table["imported"].any():
        ax.text(
            0.99,
            0.02,
            "* imported legacy run, scored on its own validation split",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.35",
        )
    return fig


def scaling(report: Report) -> Figure:
    """Mean error vs training samples, with the power-law fit and its extrapolation."""
    table = report.table
    rows = usable(table)
    if rows.empty:
        return placeholder("no scored versions")
    fig, ax = subplots(figsize=(6.5, 4.5))
    n = rows["samples"].astype(float).to_numpy()
    mean = rows["mean_deg"].astype(float).to_numpy()
    err = np.nan_to_num(
        np.vstack([mean - rows["mean_lo"].astype(float), rows["mean_hi"].astype(float) - mean]),
        nan=0.0,
    )
    for k, (arch, idx) in enumerate(rows.groupby("architecture", sort=False).indices.items()):
        ax.errorbar(
            n[idx],
            mean[idx],
            yerr=err[:, idx],
            fmt="os^v"[k % 4],
            color=f"C{k + 1}",
            capsize=3,
            label=f"versions, {arch}",
        )
    above = rows["mean_deg"] >= rows.groupby("samples")["mean_deg"].transform("median")
    for name, ni, mi, up in zip(rows.index, n, mean, above, strict=True):
        ax.annotate(
            str(name),
            (ni, mi),
            xytext=(6, 4 if up else -10),
            textcoords="offset points",
            fontsize=8,
        )
    if report.fit is not None:
        top = max(n.max(), report.next_samples or 0)
        grid = np.geomspace(n.min() / 1.2, top * 1.2, 200)
        value, sigma = report.fit.predict(grid)
        label = f"fit: {report.fit.amplitude:.0f}° · N^(−{report.fit.exponent:.3f})"
        ax.plot(grid, value, color="C0", label=label)
        ax.fill_between(grid, value - sigma, value + sigma, color="C0", alpha=0.2, label="fit ±1σ")
        if report.next_samples:
            v, s = report.fit.predict(report.next_samples)
            ax.errorbar(
                report.next_samples,
                v,
                yerr=s,
                fmt="D",
                color="C3",
                capsize=3,
                label=f"extrapolation: {float(v):.1f}° ± {float(s):.1f}°",
            )
    ax.set_xscale("log")
    ax.set_xlabel("training + validation samples")
    ax.set_ylabel("mean angular error [deg]")
    ax.set_title("Data scaling")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def _history_panel(ax: Axes, run: Run) -> None:
    h = run.history
    epoch = np.arange(1, len(h) + 1)
    for col, style in (("loss", "-"), ("val_loss", "--")):
        if col in h:
            ax.plot(epoch, h[col], style, color="C0" if col == "loss" else "C1", label=col)
    best = run.training.get("best_epoch")
    if best:
        ax.axvline(best, color="g", lw=1, ls=":", label=f"best epoch {best}")
    nan_epoch = run.training.get("nan_epoch")
    if nan_epoch:
        ax.axvline(nan_epoch, color="r", lw=1.5, label=f"first NaN, epoch {nan_epoch}")
    ax.set_title(f"{run.name} ({run.loss} loss)", fontsize=10)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    lr_col = next((c for c in ("learning_rate", "lr") if c in h), None)
    if lr_col:
        twin = ax.twinx()
        twin.plot(epoch, h[lr_col], color="0.6", lw=1, zorder=0)
        twin.set_yscale("log")
        twin.set_ylabel("learning rate", color="0.4", fontsize=8)
        twin.tick_params(labelsize=7, colors="0.4")
    ax.legend(fontsize=7, loc="upper right")


def histories(report: Report) -> Figure:
    """Training and validation loss per version, best epoch, NaN epoch, learning rate (grey)."""
    runs = [r for r in report.runs if r.history is not None and len(r.history)]
    if not runs:
        return placeholder("no training histories")
    ncols = min(3, len(runs))
    nrows = -(-len(runs) // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    for ax, run in zip(axes.flat, runs, strict=False):
        _history_panel(ax, run)
    for ax in axes.flat[len(runs) :]:
        ax.set_axis_off()
    fig.suptitle("Training (solid) and validation (dashed) loss; grey, right axis: learning rate")
    return fig


def error_cdf(report: Report) -> Figure:
    runs = with_predictions(report)
    if not runs:
        return placeholder("no saved predictions: no error CDF")
    fig, ax = subplots(figsize=(6.5, 4.5))
    color = colors([r.name for r in report.runs])
    for run in runs:
        e = np.sort(run.errors)
        ax.plot(
            e,
            np.arange(1, e.size + 1) / e.size,
            color=color[run.name],
            label=f"{run.name} (68 %: {np.percentile(e, 68):.1f}°)",
        )
    for level in (0.5, 0.68):
        ax.axhline(level, color="0.4", ls=":", lw=1)
        ax.text(2, level + 0.01, f"{100 * level:.0f} %", fontsize=8, color="0.3")
    ax.set_xlim(0, 180)
    ax.set_ylim(0, 1)
    ax.set_xticks(range(0, 181, 30))
    ax.set_xlabel("angular error [deg]")
    ax.set_ylabel("fraction of test samples")
    ax.set_title("Cumulative angular error")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def cosine(report: Report) -> Figure:
    runs = with_predictions(report)
    if not runs:
        return placeholder("no saved predictions: no cosine distribution")
    fig, ax = subplots(figsize=(6.5, 4.5))
    color = colors([r.name for r in report.runs])
    bins = np.linspace(-1, 1, 51)
    for run in runs:
        c = cosines(run.predictions["test_predictions"], run.predictions["test_true"])
        ax.hist(
            c,
            bins=bins,
            histtype="step",
            density=True,
            lw=1.5,
            color=color[run.name],
            label=f"{run.name}: flipped (cos < 0) {100 * (c < 0).mean():.1f} %",
        )
    ax.axvline(0, color="0.4", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("cos(predicted, true)")
    ax.set_ylabel("density")
    ax.set_title("Cosine between predicted and true direction")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def oracle_curves(energy: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(version, its rows) once per distinct oracle binning: one curve when the versions share
    a test set, as they normally do."""
    if "oracle_q68_deg" not in energy:
        return []
    curves: dict[bytes, tuple[str, pd.DataFrame]] = {}
    for name, rows in energy.groupby("version", sort=False):
        values = rows[["oracle_n", "oracle_q68_deg"]].to_numpy(dtype=float)
        if (values[:, 0] > 0).any():
            curves.setdefault(np.nan_to_num(values, nan=-1.0).tobytes(), (str(name), rows))
    return list(curves.values())


def _stairs(ax: Axes, rows: pd.DataFrame, prefix: str, label: str, **style: object) -> None:
    """Median (solid) and 68 % (dashed) of one curve over the bins; sparse bins left out."""
    edges = np.append(rows["e_lo_mev"].to_numpy(), rows["e_hi_mev"].iloc[-1])
    sparse = rows[f"{prefix}n"].to_numpy(dtype=float) < MIN_BIN_COUNT
    for stat, ls, stat_label in (("median_deg", "-", "median"), ("q68_deg", "--", "68 %")):
        values = np.where(sparse, np.nan, rows[f"{prefix}{stat}"].to_numpy(dtype=float))
        ax.stairs(values, edges, baseline=None, ls=ls, label=f"{label} {stat_label}", **style)


def error_vs_energy(report: Report, energy: pd.DataFrame) -> Figure:
    """Median and 68 % per energy bin, drawn over each bin's width, with the oracle's on its
    samples where the predictions carry one; sparse bins left out."""
    if energy.empty or not (energy["n"] >= MIN_BIN_COUNT).any():
        return placeholder(f"no energy bin with ≥ {MIN_BIN_COUNT} scored samples")
    fig, ax = subplots(figsize=(8, 4.5))
    color = colors([r.name for r in report.runs])
    for name, rows in energy.groupby("version", sort=False):
        _stairs(ax, rows, "", str(name), color=color[name], lw=1.5)
    oracles = oracle_curves(energy)
    for i, (name, rows) in enumerate(oracles):  # black, then greys
        label = "oracle" if len(oracles) == 1 else f"oracle ({name}'s samples)"
        _stairs(ax, rows, "oracle_", label, color=f"{0.6 * i / len(oracles):.2f}", lw=2.2)
    ax.set_xlabel("cluster energy [MeV] (from ADC: metadata column 10, not the true energy)")
    ax.set_ylabel("angular error [deg]")
    drawn = energy.loc[energy["n"] >= MIN_BIN_COUNT, "e_hi_mev"]
    ax.set_xlim(0, float(drawn.max()))  # up to the last bin with data, not the last bin
    ax.set_ylim(bottom=0)
    oracle_note = "; black: oracle, on the samples that have one" if oracles else ""
    ax.set_title(
        "Angular error vs energy (solid: median, dashed: 68 % containment)\n"
        f"bins with < {MIN_BIN_COUNT} samples not drawn{oracle_note}",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def components(report: Report) -> Figure:
    """True vs predicted direction components of the best version with predictions."""
    runs = with_predictions(report)
    if not runs:
        return placeholder("no saved predictions: no component plot")
    order = list(report.table.index)
    run = min(runs, key=lambda r: order.index(r.name))
    pred = unit(run.predictions["test_predictions"])
    true = unit(run.predictions["test_true"])
    fig, axes = subplots(1, 3, figsize=(13, 3.5))
    edges = np.linspace(-1, 1, 41)
    for i, (ax, comp) in enumerate(zip(axes, "xyz", strict=True)):
        *_, image = ax.hist2d(
            true[:, i], pred[:, i], bins=[edges, edges], cmap="viridis", norm=LogNorm(vmin=1)
        )
        ax.plot([-1, 1], [-1, 1], color="k", lw=1, label="perfect")
        ax.plot([-1, 1], [1, -1], color="r", ls="--", lw=1, label="flipped")
        ax.set_xlabel(f"true {comp}")
        ax.set_ylabel(f"predicted {comp}")
        ax.set_aspect("equal")
        bar = fig.colorbar(image, ax=ax, fraction=0.046, label="samples")
        for axis_format in (bar.ax.yaxis.set_major_formatter, bar.ax.yaxis.set_minor_formatter):
            axis_format(LogFormatter(labelOnlyBase=False))  # "4", not "4×10⁰"; few minor labels
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    fig.suptitle(f"{run.name} (best with predictions): true vs predicted direction components")
    return fig


PLOTS: dict[str, Callable[..., Figure]] = {
    "performance.png": performance,
    "scaling.png": scaling,
    "histories.png": histories,
    "error_cdf.png": error_cdf,
    "cosine.png": cosine,
    "error_vs_energy.png": error_vs_energy,
    "components.png": components,
}
PLOT_FILES = tuple(PLOTS)


def write_all(report: Report, energy: pd.DataFrame, plots_dir: Path) -> list[Path]:
    """Write every figure of PLOT_FILES into plots_dir."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, make in PLOTS.items():
        fig = make(report, energy) if make is error_vs_energy else make(report)
        path = plots_dir / filename
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        written.append(path)
    return written
