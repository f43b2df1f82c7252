"""The report's figures, one function per figure, a fixed set of file names.

Every file in PLOT_FILES is always written, so the workflow can declare them as outputs: a
figure whose input no version has (e.g. predictions, for imported legacy runs) says so. The
layout they share (colours, panels, the placeholder) is ``edtrain.figure``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter, MaxNLocator

from edtrain.figure import (
    COLORS,
    DPI,
    colors,
    label_edges,
    placeholder,
    small_multiples,
    subplots,
)
from edtrain.insights.findings import usable
from edtrain.metrics import cosines, unit

if TYPE_CHECKING:
    from edtrain.insights.report import Report
    from edtrain.insights.runs import Run

MIN_BIN_COUNT = 10  # energy bins with fewer scored samples are not drawn
# the overlaid curves' line style, one per round of the COLORS versions' colours
LINE_STYLES = ("-", "--", ":")
STAT_STYLE = {  # statistic → (label, marker)
    "mean": ("mean", "o"),
    "median": ("median", "s"),
    "q68": ("68 % containment", "^"),
}


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
    # labels in a column right of each size, in the order of the errors and at least a line
    # apart, so that close values do not print their names over each other
    gap = 0.045 * (float((mean + err[1]).max() - (mean - err[0]).min()) or 1.0)
    for _, idx in rows.reset_index().groupby("samples").indices.items():
        order = idx[np.argsort(mean[idx])]
        spread = mean[order] - gap * np.arange(len(order))
        y = np.maximum.accumulate(spread) + gap * np.arange(len(order))
        y -= max(0.0, float((y - mean[order]).mean()))  # centre the column on its points
        for i, yi in zip(order, y, strict=True):
            ax.annotate(
                str(rows.index[i]),
                (n[i], mean[i]),
                xytext=(n[i] * 1.07, yi),
                textcoords="data",
                va="center",
                fontsize=8,
                arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0},
            )
    if report.fit is not None:
        fitted = table.loc[report.fit_versions, "samples"].astype(float)
        top = max(fitted.max(), report.next_samples or 0)
        grid = np.geomspace(fitted.min() / 1.2, top * 1.2, 200)
        value, sigma = report.fit.predict(grid)
        label = (
            f"fit over {', '.join(report.fit_versions)}: "
            f"{report.fit.amplitude:.0f}° · N^(−{report.fit.exponent:.3f})"
        )
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


# what each loss's value is, for the panels' y labels: the losses do not share units
LOSS_LABELS = {
    "cosine": "1 − cos θ",
    "angular": "θ [rad]",
    "focal_angular": "(θ/π)²·θ [rad]",
    "hybrid": "θ [rad] + 1 − cos θ",
    "angular_axial": "θ + min(θ, π − θ) [rad]",
    "axial_sense": "min(θ, π − θ) [rad] + head–tail cross-entropy [nats]",
    "axial_direction": "axis min(θ, π − θ) + direction θ [rad]",
    "axial_bins": "axis-bin cross-entropy [nats] + direction θ [rad]",
    "vmf": "vMF −log-likelihood [nats]",
    "angular_vmf": "θ [rad] + κ's vMF −log-likelihood [nats]",
}
HISTORY_LINES = {  # key → (label, style); one legend for the figure
    "loss": ("training loss", {"color": "C0", "ls": "-"}),
    "val_loss": ("validation loss", {"color": "C1", "ls": "--"}),
    "best": ("best epoch (weights kept)", {"color": "g", "ls": ":", "lw": 1}),
    "nan": ("first NaN", {"color": "r", "lw": 1.5}),
    "lr": ("learning rate (right axis)", {"color": "0.6", "lw": 1}),
}


def _history_panel(ax: Axes, run: Run) -> set[str]:
    """One version's curves; returns the HISTORY_LINES keys it drew."""
    h = run.history
    epoch = np.arange(1, len(h) + 1)
    drawn = set()
    for col in ("loss", "val_loss"):
        if col in h:
            ax.plot(epoch, h[col], **HISTORY_LINES[col][1])
            drawn.add(col)
    for key, field in (("best", "best_epoch"), ("nan", "nan_epoch")):
        if run.training.get(field):
            ax.axvline(run.training[field], **HISTORY_LINES[key][1])
            drawn.add(key)
    ax.set_title(f"{run.name} ({run.loss} loss)", fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel(LOSS_LABELS.get(run.loss, f"{run.loss} loss"), fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    lr_col = next((c for c in ("learning_rate", "lr") if c in h), None)
    if lr_col:
        twin = ax.twinx()
        twin.plot(epoch, h[lr_col], zorder=0, **HISTORY_LINES["lr"][1])
        twin.set_yscale("log")
        twin.set_ylabel("learning rate", color="0.4", fontsize=8)
        twin.tick_params(labelsize=7, colors="0.4")
        drawn.add("lr")
    return drawn


def histories(report: Report) -> Figure:
    """Training and validation loss per version (each in its loss's unit), best epoch, NaN
    epoch, learning rate."""
    runs = [r for r in report.runs if r.history is not None and len(r.history)]
    if not runs:
        return placeholder("no training histories")
    ncols = min(3, len(runs))
    nrows = -(-len(runs) // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows + 0.6), squeeze=False)
    drawn: set[str] = set()
    for ax, run in zip(axes.flat, runs, strict=False):
        drawn |= _history_panel(ax, run)
    for ax in axes.flat[len(runs) :]:
        ax.set_axis_off()
    keys = [key for key in HISTORY_LINES if key in drawn]
    handles = [Line2D([], [], **HISTORY_LINES[key][1]) for key in keys]
    labels = [HISTORY_LINES[key][0] for key in keys]
    fig.legend(handles, labels, loc="outside lower center", ncol=len(keys), fontsize=9)
    fig.suptitle("Training history per version (each panel in its own loss's unit)")
    return fig


def error_cdf(report: Report) -> Figure:
    runs = with_predictions(report)
    if not runs:
        return placeholder("no saved predictions: no error CDF")
    fig, ax = subplots(figsize=(8.5, 4.5))
    names = [r.name for r in report.runs]
    color = colors(names)
    for run in runs:
        e = np.sort(run.errors)
        ax.plot(
            e,
            np.arange(1, e.size + 1) / e.size,
            color=color[run.name],
            ls=LINE_STYLES[names.index(run.name) // COLORS % len(LINE_STYLES)],
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
    fig.legend(fontsize=8, loc="outside right upper")
    return fig


def cosine(report: Report) -> Figure:
    """Per version, the distribution of cos(predicted, true); the flipped side (cos < 0) shaded."""
    runs = with_predictions(report)
    if not runs:
        return placeholder("no saved predictions: no cosine distribution")
    fig, axes = small_multiples(len(runs), panel=(3.2, 2.4))
    color = colors([r.name for r in report.runs])
    bins = np.linspace(-1, 1, 41)
    for ax, run in zip(axes, runs, strict=True):
        c = cosines(run.predictions["test_predictions"], run.predictions["test_true"])
        ax.hist(c, bins=bins, density=True, color=color[run.name], alpha=0.85)
        ax.axvspan(-1, 0, color="0.85", zorder=0)
        ax.set_title(f"{run.name}: {100 * (c < 0).mean():.1f} % flipped", fontsize=9)
        ax.set_xlim(-1, 1)
        ax.grid(alpha=0.3)
    label_edges(axes, "cos(predicted, true)", "density")
    fig.suptitle(
        "Cosine between predicted and true direction (grey: cos < 0, head and tail swapped)"
    )
    return fig


ENERGY_LINES = {  # (label, style) of the energy panels' curves; versions add their colour
    "median": ("median", {"ls": "-", "lw": 1.6}),
    "q68": ("68 % containment", {"ls": "--", "lw": 1.6}),
    "oracle_median": ("oracle median (same samples)", {"ls": "-", "lw": 1.2, "color": "k"}),
    "oracle_q68": ("oracle 68 % (same samples)", {"ls": "--", "lw": 1.2, "color": "k"}),
}


def _stairs(ax: Axes, rows: pd.DataFrame, prefix: str, **style: object) -> bool:
    """Median (solid) and 68 % (dashed) of one curve over the bins, sparse bins left out;
    False when no bin has enough samples."""
    edges = np.append(rows["e_lo_mev"].to_numpy(), rows["e_hi_mev"].iloc[-1])
    counts = rows.get(f"{prefix}n", pd.Series(0, index=rows.index)).to_numpy(dtype=float)
    sparse = counts < MIN_BIN_COUNT
    if sparse.all():
        return False
    for stat in ("median", "q68"):
        values = np.where(sparse, np.nan, rows[f"{prefix}{stat}_deg"].to_numpy(dtype=float))
        ax.stairs(values, edges, baseline=None, **{**ENERGY_LINES[prefix + stat][1], **style})
    return True


def error_vs_energy(report: Report, energy: pd.DataFrame) -> Figure:
    """Per version, median and 68 % per energy bin drawn over each bin's width, with the
    oracle's on the same samples where the predictions carry one; sparse bins left out."""
    if energy.empty or not (energy["n"] >= MIN_BIN_COUNT).any():
        return placeholder(f"no energy bin with ≥ {MIN_BIN_COUNT} scored samples")
    groups = [(str(name), rows) for name, rows in energy.groupby("version", sort=False)]
    fig, axes = small_multiples(len(groups))
    color = colors([r.name for r in report.runs])
    with_oracle = False
    for ax, (name, rows) in zip(axes, groups, strict=True):
        _stairs(ax, rows, "", color=color.get(name, "C0"))
        with_oracle |= _stairs(ax, rows, "oracle_")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    drawn = energy.loc[energy["n"] >= MIN_BIN_COUNT, "e_hi_mev"]
    axes[0].set_xlim(0, float(drawn.max()))  # up to the last bin with data, not the last bin
    axes[0].set_ylim(bottom=0)
    label_edges(axes, "cluster energy [MeV]", "angular error [deg]")
    keys = ["median", "q68"] + (["oracle_median", "oracle_q68"] if with_oracle else [])
    handles = [Line2D([], [], color="0.3", **ENERGY_LINES[key][1]) for key in keys[:2]]
    handles += [Line2D([], [], **ENERGY_LINES[key][1]) for key in keys[2:]]
    fig.legend(handles, [ENERGY_LINES[k][0] for k in keys], loc="outside lower center", ncol=4)
    fig.suptitle(
        "Angular error vs cluster energy (from ADC, metadata column 10: not the true electron"
        f" energy); bins with < {MIN_BIN_COUNT} samples not drawn"
    )
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
