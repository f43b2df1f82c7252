"""insights.md: the seed report's sections, written from the computed tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from edtrain.insights.compare import Comparison
from edtrain.insights.datasets import DatasetSummary
from edtrain.insights.findings import SizeGroup, improvement, usable
from edtrain.insights.pointing import (
    FIXED_CONE_DEG,
    ISOTROPIC_Q68_DEG,
    MIN_POOL,
    PILEUP_CONE_DEG,
    Pointing,
)
from edtrain.insights.runs import Run, samples_label
from edtrain.insights.tables import NO_SCORE, Bootstrap, StatusRules
from edtrain.metrics import CONE_LEVELS, CONFIDENT_SHARES, FLIP_FOLDED_MAX_DEG, SIGN_MIN_ABS
from edtrain.stats import PowerLaw

# Losses built on arccos of the cosine: the ones whose naive gradient diverges at |cos| = 1.
ARCCOS_LOSSES = {"angular", "focal_angular", "hybrid"}
ORACLE_HEADER = ["Oracle samples", "Oracle 68 %", "Version 68 % (same samples)", "Version / oracle"]


@dataclass(frozen=True)
class Report:
    """Everything the text needs, computed elsewhere."""

    runs: list[Run]
    table: pd.DataFrame
    rules: StatusRules
    boot: Bootstrap
    architecture: list[Comparison]
    sizes: list[SizeGroup]
    fit: PowerLaw | None
    fit_versions: list[str]  # one architecture, loss and frame (findings.scaling_group)
    next_samples: int | None
    loss_groups: list[list[str]]
    pairs: list[Comparison]
    pointing: dict[str, Pointing]
    burst_size: int
    datasets: list[DatasetSummary]

    def run(self, name: str) -> Run:
        return next(r for r in self.runs if r.name == name)


def samples_cell(row: pd.Series) -> str:
    """Samples used; for a scaled run also the size it stands for, with the scaling's name
    (``scaling.name``: "2k (demo of 200k)", "1k (test of 100k)")."""
    label = samples_label(row["samples"])
    unscaled = row.get("samples_unscaled")
    if unscaled is not None and np.isfinite(unscaled) and unscaled != row["samples"]:
        return f"{label} ({row.get('scaling', 'scaled')} of {samples_label(unscaled)})"
    return label


def deg(value: float | None, decimals: int = 2) -> str:
    return f"{value:.{decimals}f}°" if value is not None and np.isfinite(value) else "—"


def with_interval(value: float, lo: float, hi: float) -> str:
    if not np.isfinite(value):
        return "—"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return deg(value)
    return f"{deg(value)} [{lo:.2f}, {hi:.2f}]"


def change_text(gain: float, positive: str) -> str:
    """A relative error reduction as the seed words it ("24% improvement"), or "9% worse"."""
    return f"{100 * gain:.0f}% {positive}" if gain >= 0 else f"{-100 * gain:.0f}% worse"


def verdict(c: Comparison) -> str:
    if c.significant is None:
        return "untested (no predictions)"
    return "significant" if c.significant else "not significant"


def delta_text(c: Comparison) -> str:
    interval = "" if c.interval is None else f" [{c.interval.lo:+.2f}, {c.interval.hi:+.2f}]"
    return f"{c.delta:+.2f}°{interval}"


def _version_cell(name: str, row: pd.Series) -> str:
    label = f"**{name}**" if row["best"] else name
    return f"{label}†" if row["imported"] else label


def performance_summary(r: Report) -> list[str]:
    lines = [
        "## Performance Summary",
        "",
        "| Version | Samples | Architecture | Loss Function | Mean Error | Median Error "
        "| 68 % Containment | Status |",
        "|---------|---------|--------------|---------------|------------|--------------"
        "|------------------|--------|",
    ]
    for name, row in r.table.iterrows():
        mean = with_interval(row["mean_deg"], row["mean_lo"], row["mean_hi"])
        if row["best"]:
            mean = f"**{mean}**"
        cells = [
            _version_cell(str(name), row),
            samples_cell(row),
            row["architecture"],
            row["loss"],
            mean,
            with_interval(row["median_deg"], row["median_lo"], row["median_hi"]),
            with_interval(row["q68_deg"], row["q68_lo"], row["q68_hi"]),
            row["status"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Intervals (where predictions were saved): bootstrap 95 %, {r.boot.n_boot} resamples "
        "of the test set. "
        "Sorted by mean error."
    )
    lines.append("")
    lines += [f"- ❌ {name}: {row['failed']}" for name, row in r.table.iterrows() if row["failed"]]
    lacking: dict[str, list[str]] = {}
    for name in r.table.index[r.table["imported"].astype(bool)]:
        lacks = ", ".join((r.run(str(name)).legacy or {}).get("missing", [])) or "nothing recorded"
        lacking.setdefault(lacks, []).append(str(name))
    for lacks, names in lacking.items():
        lines.append(f"- † imported legacy run ({', '.join(names)}); lacks {lacks}")
    scored = r.table[np.isfinite(r.table["mean_deg"].astype(float))]
    test_sets = scored["test_set"].unique()
    if len(test_sets) > 1:
        lines.append(
            f"- ⚠️ **Not one test set**: these versions were scored on {len(test_sets)} different "
            "sample sets (see Technical Notes); their order is indicative, not a ranking."
        )
    return lines


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines; a ``|`` inside a cell is escaped."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)]


def percent(value: float | None, decimals: int = 1) -> str:
    return f"{100 * value:.{decimals}f} %" if value is not None and np.isfinite(value) else "—"


def diagnostics_section(r: Report) -> list[str]:
    """68 %, folded 68 %, flips, sign agreement and the oracle on the same samples, per version.

    Frame and oracle columns appear only where some version has them (real data has no oracle).
    """
    lines = [
        "## Accuracy Diagnostics",
        "",
        "On each version's test samples: 68 % containment; sign-folded 68 % (error "
        "min(θ, 180° − θ): the axis alone); head–tail flips = fraction with θ > 90° while the "
        f"folded error is below {FLIP_FOLDED_MAX_DEG:g}° (θ > {180 - FLIP_FOLDED_MAX_DEG:g}°); "
        "sign agreement = per detector axis, the fraction of samples with |true component| > "
        f"{SIGN_MIN_ABS:g} whose predicted component has the same sign.",
        "",
    ]
    rows = r.table[np.isfinite(r.table["q68_deg"].astype(float))]
    if rows.empty:
        return [*lines, "No version with a 68 % containment."]
    frames = {run.name: run.frame for run in r.runs}
    show_frame = any(frames.values())
    show_oracle = bool((rows["oracle_n"].astype(float) > 0).any())
    header = [
        "Version",
        *(["Frame"] if show_frame else []),
        "68 %",
        "Folded 68 %",
        "Flips",
        "Sign agreement x / y / z",
        *(ORACLE_HEADER if show_oracle else []),
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for name, row in rows.iterrows():
        signs = [row.get(f"sign_agree_{axis}", np.nan) for axis in "xyz"]
        cells = [
            _version_cell(str(name), row),
            *([frames.get(str(name)) or "—"] if show_frame else []),
            deg(row["q68_deg"]),
            deg(row["folded_q68_deg"]),
            percent(row.get("flip_frac", np.nan)),
            " / ".join(percent(s, 0) for s in signs),
        ]
        if show_oracle:
            has = row["oracle_n"] > 0
            cells += [
                _number(row["oracle_n"]) if has else "—",
                deg(row["oracle_q68_deg"]),
                deg(row["oracle_version_q68_deg"]),
                _number(row["oracle_q68_ratio"], "{:.2f}") if has else "—",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    if show_oracle:
        lines += [
            "",
            "Oracle: the line fit on the electron's true path (synthetic production), for the test "
            "samples that are their event's main electron; the version's 68 % is recomputed on "
            "exactly those samples, and the ratio is version / oracle.",
        ]
    return lines


def uncertainty_section(r: Report) -> list[str]:
    """For versions that predict a per-event concentration κ (loss vmf or angular_vmf): are
    their cones right (share of test electrons inside the predicted 68 % / 90 % cone, overall
    and per energy), and what a cut on κ buys (68 % containment of the most confident shares)."""
    blocks = {run.name: run.uncertainty for run in r.runs if run.uncertainty}
    levels = [f"{100 * q:g} %" for q in CONE_LEVELS]
    shares = [f"{100 * s:g} %" for s in sorted(CONFIDENT_SHARES, reverse=True)]
    header = [
        "Version",
        "κ scale",
        "Median κ",
        *(f"Inside {level} cone" for level in levels),
        "68 % (all)",
        *(f"68 % (top {share} κ)" for share in shares),
    ]
    rows = [
        [
            name,
            _number(b.get("kappa_scale", 1.0), "{:.2f}"),
            _number(b["median_kappa"], "{:.1f}"),
            *(percent(b[f"cover_{round(100 * q)}"]) for q in CONE_LEVELS),
            deg(r.table.loc[name, "q68_deg"]),
            *(
                deg(b[f"q68_deg_top{round(100 * s)}"])
                for s in sorted(CONFIDENT_SHARES, reverse=True)
            ),
        ]
        for name, b in blocks.items()
    ]
    first = next(iter(blocks.values()))["by_energy"]
    counted = [
        i for i, row in enumerate(first) if any(b["by_energy"][i]["n"] for b in blocks.values())
    ]
    energy_rows = [
        [
            f"{first[i]['e_lo_mev']:g}–{first[i]['e_hi_mev']:g} MeV",
            *(
                f"{percent(b['by_energy'][i]['cover_68'], 0)} of {b['by_energy'][i]['n']}"
                for b in blocks.values()
            ),
        ]
        for i in counted
    ]
    return [
        "## Per-Event Uncertainty",
        "",
        "Versions trained with a κ loss (vmf, angular_vmf) predict a concentration κ per event: "
        "a cone around "
        "the predicted direction that should hold 68 % (90 %) of the test electrons. Far fewer "
        "inside means overconfident, far more underconfident. The network's κ is multiplied by "
        "one factor per version (κ scale), fitted on its validation samples so that their 68 % "
        "cones hold 68 % of them (docs/metrics.md).",
        "",
        *markdown_table(header, rows),
        "",
        "Inside the predicted 68 % cone, per cluster-energy bin (share of the bin's test samples):",
        "",
        *markdown_table(["Energy", *blocks], energy_rows),
    ]


def architecture_section(r: Report) -> list[str]:
    lines = ["### 1. Architecture Scaling", ""]
    if not r.architecture:
        return [*lines, "No scored version with another architecture than the baseline."]
    base = r.run(r.rules.baseline)
    base_mean = r.table.loc[base.name, "mean_deg"]
    for c in r.architecture:
        row = r.table.loc[c.version]
        gain = improvement(base_mean, row["mean_deg"])
        lines.append(
            f"- **{c.version} ({samples_label(row['samples'])}, {row['architecture']})**: "
            f"{deg(row['mean_deg'])} mean → **{change_text(gain, 'improvement')}** "
            f"{'over' if gain >= 0 else 'than'} {base.name} baseline ({deg(base_mean)}); "
            f"Δ {delta_text(c)}, {verdict(c)}"
            + (f"; also differs in {', '.join(c.confounded_by)}" if c.confounded_by else "")
        )
    better = sum(c.delta < 0 for c in r.architecture)
    archs = sorted({r.table.loc[c.version, "architecture"] for c in r.architecture})
    clean = [p for p in r.pairs if p.factor == "architecture"]
    lines += [
        "",
        f"**Conclusion**: {', '.join(archs)} beat the baseline's {base.architecture} in {better} "
        f"of {len(r.architecture)} comparisons. "
        + (
            f"{len(clean)} pair(s) differ in architecture alone (see Controlled Comparisons)."
            if clean
            else "No pair differs in architecture alone, so these gains include the other "
            "changes listed."
        ),
    ]
    return lines


def falls_with_data(fit: PowerLaw) -> bool:
    """The fitted exponent is positive by more than two standard deviations."""
    return fit.exponent > 2 * fit.exponent_sigma


def scaling_section(r: Report) -> list[str]:
    lines = ["### 2. Data Scaling", ""]
    if not r.sizes:
        return [*lines, "No scored versions."]
    for i, g in enumerate(r.sizes):
        gain = f" → **{change_text(g.improvement, 'better')}**" if i else ""
        lines.append(
            f"- **{samples_label(g.samples)} samples**: ~{g.quoted:.0f}° mean "
            f"({'/'.join(g.versions)}){gain}"
        )
    archs = {r.table.loc[v, "architecture"] for g in r.sizes for v in g.versions}
    if len(archs) > 1:
        lines.append(f"- Note: the sizes also differ in architecture ({', '.join(sorted(archs))}).")
    if r.fit is not None:
        first = r.table.loc[r.fit_versions[0]]
        frame = first["frame"] or "detector"
        recipe = f"{first['architecture']}, {first['loss']} loss, {frame} frame"
        lines.append(
            f"- Power-law fit over {', '.join(r.fit_versions)} ({recipe}): error(N) = "
            f"{r.fit.amplitude:.1f}° · N^(−b), b = {r.fit.exponent:.3f} ± "
            f"{r.fit.exponent_sigma:.3f}, "
            + (
                f"χ²/dof = {r.fit.chi2_dof:.2f}"
                if r.fit.weighted
                else "uncertainties from the scatter of the points (no intervals)"
            )
        )
        if r.next_samples and falls_with_data(r.fit):
            value, sigma = r.fit.predict(r.next_samples)
            lines.append(
                f"- Extrapolation to **{samples_label(r.next_samples)}**: "
                f"**{float(value):.1f}° ± {float(sigma):.1f}°** mean (1σ of the fit)"
            )
    if r.fit is None:
        trend = (
            "no scaling fit: it needs three versions of one architecture, loss and label frame "
            "at two or more sizes (across architectures it would mix their effects with the "
            "data's)"
        )
    elif falls_with_data(r.fit):
        trend = "error falls with more data"
    else:
        trend = "no significant trend with data size, so no extrapolation"
    return [*lines, "", f"**Conclusion**: {trend}."]


def loss_section(r: Report) -> list[str]:
    lines = ["### 3. Loss Function Comparison", ""]
    if not r.loss_groups:
        return [*lines, "No versions differ in the loss alone."]
    by_pair = {(p.reference, p.version): p for p in r.pairs}
    for group in r.loss_groups:
        first = r.table.loc[group[0]]
        lines.append(f"With {first['architecture']}, {samples_label(first['samples'])}:")
        for name in group:
            row = r.table.loc[name]
            c = by_pair.get((group[0], name))
            extra = f" ({delta_text(c)} vs {group[0]}, {verdict(c)})" if c else ""
            failed = " ❌ **FAILED**" if row["failed"] else ""
            lines.append(f"- {row['loss']} ({name}): {deg(row['mean_deg'])}{extra}{failed}")
        lines += ["", f"**Conclusion**: {loss_conclusion(r, group)}", ""]
    return lines[:-1]


def loss_conclusion(r: Report, group: list[str]) -> str:
    """Which loss did best in the group, whether that is established, and which failed."""
    rows = r.table.loc[group]
    ok = rows[rows["failed"] == ""].sort_values("mean_deg")
    by_pair = {(p.reference, p.version): p for p in r.pairs}
    parts = []
    if len(ok):
        best = ok.index[0]
        parts.append(f"lowest error with {ok.loc[best, 'loss']} ({best})")
        for other in ok.index[1:]:
            c = by_pair.get((best, other)) or by_pair.get((other, best))
            parts.append(
                f"{ok.loc[other, 'loss']} ({other}) differs by {abs(c.delta):.2f}°, {verdict(c)}"
            )
    failed = rows[rows["failed"] != ""]
    parts += [
        f"{failed.loc[v, 'loss']} ({v}) failed: {failed.loc[v, 'failed']}" for v in failed.index
    ]
    return "; ".join(parts) + "."


def pairs_section(r: Report) -> list[str]:
    lines = [
        "### 6. Controlled Comparisons",
        "",
        "Pairs that differ in at most one of architecture, samples, loss and label frame (Δ = "
        "mean error of the second minus the first; 95 % interval).",
        "",
        "| Pair | Factor | Change | Δ mean | Verdict | Also differs |",
        "|------|--------|--------|--------|---------|--------------|",
    ]
    if not r.pairs:
        return [
            *lines[:2],
            "No two scored versions differ in at most one of architecture, samples, loss and "
            "label frame.",
        ]
    for c in r.pairs:
        lines.append(
            f"| {c.reference} → {c.version} | {c.factor or c.change} | "
            f"{c.change if c.factor else '—'} | "
            f"{delta_text(c)} | {verdict(c)} | {'; '.join(c.also) or '—'} |"
        )
    return lines


def _number(value: object, fmt: str = "{:.0f}") -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    return fmt.format(value) if np.isfinite(value) else "NaN"


def stability_section(r: Report) -> list[str]:
    lines = [
        "### 4. Training Stability",
        "",
        "| Version | Status | NaN at epoch | Stopped at epoch | Best epoch | Best val_loss "
        "| Final val_loss |",
        "|---------|--------|--------------|------------------|------------|---------------"
        "|----------------|",
    ]
    for run in r.runs:
        row = r.table.loc[run.name]
        final = (
            run.history["val_loss"].iloc[-1]
            if run.history is not None and len(run.history) and "val_loss" in run.history
            else None
        )
        nan_at = run.training.get("nan_epoch")
        lines.append(
            f"| {run.name} | {run.training_status}{' ⚠️' if row['nan_issues'] else ''} | "
            f"{_number(nan_at) if nan_at is not None else '—'} | "
            f"{_number(run.training.get('epochs_run'))} | {_number(run.training.get('best_epoch'))}"
            f" | {_number(run.training.get('best_val_loss'), '{:.4f}')} | "
            f"{_number(final, '{:.4f}')} |"
        )
    nan_versions = [str(n) for n in r.table.index[r.table["nan_issues"].astype(bool)]]
    if nan_versions:
        lines += ["", f"**Problem**: {', '.join(nan_versions)} hit non-finite losses in training."]
    arccos = [v for v in nan_versions if r.table.loc[v, "loss"] in ARCCOS_LOSSES]
    if arccos:
        lines.append(
            f"**Likely cause** ({', '.join(arccos)}: arccos-based loss): the gradient of arccos is "
            "infinite at |cos| = 1 (a prediction exactly right or exactly reversed), and gradient "
            "clipping cannot repair an infinite gradient."
        )
    return lines


def trials_cell(h: dict) -> str:
    """Trials run (and failed) if the search ran, else how many were asked for."""
    if h.get("ran"):
        failed = f" ({h['n_failed']} failed)" if h.get("n_failed") else ""
        return f"{h.get('n_trials', '?')}{failed}"
    if h.get("enabled") and "rounds" in h and "trials_per_round" in h:
        return f"{h['rounds'] * h['trials_per_round']} requested"
    return "—"


def params_cell(best: dict | None) -> str:
    """Best parameters as `name = value` pairs, floats to 3 significant digits."""
    if not best:
        return "—"
    return ", ".join(
        f"{name} = {value:.3g}" if isinstance(value, float) else f"{name} = {value}"
        for name, value in best.items()
    )


def hyperopt_section(r: Report) -> list[str]:
    lines = [
        "### 5. Hyperopt Status",
        "",
        "| Version | Requested | Ran | Trials | Best parameters |",
        "|---------|-----------|-----|--------|-----------------|",
    ]
    not_run = []
    for run in r.runs:
        h = run.config.get("hyperopt") or {}
        requested, ran = bool(h.get("enabled")), bool(h.get("ran"))
        if requested and not ran:
            not_run.append(run.name)
        best = h.get("best_params")
        lines.append(
            f"| {run.name} | {'yes' if requested else 'no'} | "
            f"{'yes' if ran else ('**NO**' if requested else 'no')} | "
            f"{trials_cell(h)} | "
            f"{params_cell(best)} |"
        )
    if not_run:
        lines += [
            "",
            f"🚨 **{', '.join(not_run)} asked for a hyperparameter search that DID NOT RUN.** "
            "Those rows are plain training runs of the listed configuration; no best parameters "
            "exist, so no hyperopt insight can be drawn from them.",
        ]
    return lines


def pointing_section(r: Report) -> list[str]:
    lines = [
        "## Supernova Burst Pointing",
        "",
        f"Toy bursts of {r.burst_size} ES electrons drawn from each version's test predictions; "
        "burst direction = normalized sum of the predicted directions. 68 % containment of the "
        "burst-direction error ± its statistical spread; floor = the same bursts with perfect "
        "electron directions. *Turned*: each event turned to a random azimuth about its "
        "reference direction, which averages away errors that depend on the direction in the "
        f"detector. *Detector frame*: bursts along ±x, ±y and ±z from the events within "
        f"{FIXED_CONE_DEG:g}° of each (axes with at least {MIN_POOL} such events), turned only "
        "onto the axis, so such errors stay (spread from resampling those events: a small pool "
        "is itself off the axis by chance). *Pile-up*: predictions within "
        f"{PILEUP_CONE_DEG:g}° of the named detector axis ÷ true directions there (1 = none). "
        f"A burst direction drawn at random has a 68 % error of {ISOTROPIC_Q68_DEG:.1f}°: "
        "versions within 10 % of it do not point (🚫).",
        "",
    ]
    if not r.pointing:
        return [*lines, "No version saved predictions: no pointing estimate."]
    weighted = any(p.weighted_q68_deg is not None for p in r.pointing.values())
    header = ["Version", "Measured against", "Events", "Toys", "68 % burst error (turned)"]
    header += [*(["κ-weighted (maximum likelihood)"] if weighted else []), "Floor (perfect e⁻)"]
    header += ["Detector frame", "Floor (detector frame)", "Pile-up"]
    rows = []
    for name, p in r.pointing.items():
        ml = p.weighted_q68_deg
        rows.append(
            [
                name,
                f"{p.reference} direction",
                events_cell(p),
                str(p.toys),
                f"{p.q68_deg:.2f}° ± {p.q68_sigma_deg:.2f}°{blind(p.q68_deg)}",
                *(
                    [f"{ml:.2f}° ± {p.weighted_sigma_deg:.2f}°" if ml is not None else "—"]
                    if weighted
                    else []
                ),
                f"{p.floor_q68_deg:.2f}° ± {p.floor_sigma_deg:.2f}°",
                *fixed_cells(p),
            ]
        )
    lines += markdown_table(header, rows)
    if weighted:
        lines.append(
            "\nκ-weighted: the same bursts pointed by maximum likelihood, each electron weighted "
            "by its predicted concentration κ folded with the ES kinematic spread at its energy "
            "(1/κ′ = 1/κ + 1/κ_ES, κ_ES from the test set's own truth); versions without κ: —."
        )
    if any(p.events < p.burst_size for p in r.pointing.values()):
        lines.append(
            "\n⚠️ Fewer scored events than the burst size: bursts reuse events, so the spread "
            "is underestimated."
        )
    if any(p.events < p.test_events for p in r.pointing.values()):
        lines.append(
            '\nEvents "n of N": only n of the N scored test events carry a neutrino direction '
            "(files with 14 metadata columns have none); the bursts are drawn from those n."
        )
    if any(p.reference == "electron" for p in r.pointing.values()):
        lines.append(
            "\nMeasured against the electron direction where the data carry no neutrino "
            "direction: that ignores the ES kinematic spread, so the floor is 0° by construction."
        )
    return lines


def events_cell(p: Pointing) -> str:
    """Events the bursts draw from, "of N" where only some test events have a neutrino
    direction; ⚠️ below the burst size."""
    of = f" of {p.test_events}" if p.events < p.test_events else ""
    return f"{p.events}{of}{' ⚠️' if p.events < p.burst_size else ''}"


def blind(q68_deg: float) -> str:
    """🚫 where a burst error is within 10 % of a random direction's: no pointing."""
    return " 🚫" if q68_deg > 0.9 * ISOTROPIC_Q68_DEG else ""


def fixed_cells(p: Pointing) -> list[str]:
    """The detector-frame burst error (🚫 near the random direction's), its floor, the pile-up."""
    if p.fixed_q68_deg is None:
        fixed, floor = "— (too few events near the axes)", "—"
    else:
        fixed = f"{p.fixed_q68_deg:.2f}° ± {p.fixed_sigma_deg:.2f}°{blind(p.fixed_q68_deg)}"
        floor = f"{p.fixed_floor_q68_deg:.2f}°"
    pileup = "—" if p.pileup_ratio is None or not np.isfinite(p.pileup_ratio) else (
        f"{p.pileup_ratio:.2f} ({p.pileup_axis})"
    )  # fmt: skip
    return [fixed, floor, pileup]


def hit_epoch_cap(run: Run) -> bool:
    """Training ran to max_epochs without early stopping (demo caps excluded: intended)."""
    epochs, cap = run.training.get("epochs_run"), run.config.get("max_epochs")
    demo_cap = "max_epochs" in (run.config.get("scaling") or {})
    return bool(epochs and cap and epochs >= cap and not demo_cap)


def recommendations(r: Report) -> list[str]:
    t = r.table
    items = []
    best = t.index[t["best"].astype(bool)]
    if len(best):
        row = t.loc[best[0]]
        items.append(
            f"Start the next version from **{best[0]}** ({row['architecture']}, {row['loss']} "
            "loss)."
        )
    if r.fit is not None and r.next_samples and falls_with_data(r.fit):
        value, sigma = r.fit.predict(r.next_samples)
        measured = float(usable(t)["mean_deg"].min())
        largest = max(r.fit_versions, key=lambda v: float(t.loc[v, "samples"]))
        # only a gain beyond the fit's own 1σ: else it promises nothing the best has not done
        if float(value) + float(sigma) < measured:
            items.append(
                f"Train {largest}'s recipe at {samples_label(r.next_samples)} samples: "
                "expected mean error "
                f"{float(value):.1f}° ± {float(sigma):.1f}° from the data-scaling fit, "
                f"against {measured:.1f}° for the best measured version."
            )
    nan_versions = list(t.index[t["nan_issues"].astype(bool)])
    if nan_versions:
        items.append(
            f"Stop NaNs ({', '.join(nan_versions)}): use a loss with finite gradients everywhere "
            "(clip cos to ±(1 − ε) or use an atan2 angle), stop cleanly on NaN, keep clipnorm."
        )
    not_run = [
        run.name
        for run in r.runs
        if (run.config.get("hyperopt") or {}).get("enabled")
        and not (run.config.get("hyperopt") or {}).get("ran")
    ]
    if not_run:
        items.append(f"Run the requested hyperparameter search ({', '.join(not_run)}) or drop it.")
    capped = [run.name for run in r.runs if hit_epoch_cap(run)]
    if capped:
        items.append(
            f"Raise max_epochs for {', '.join(capped)}: training hit the cap before early stopping."
        )
    crashed = [str(n) for n in t.index if t.loc[n, "failed"] in NO_SCORE]
    if crashed:
        items.append(f"Find out why {', '.join(crashed)} left no score (see their logs).")
    blind = [str(n) for n in t.index if not t.loc[n, "has_predictions"] and str(n) not in crashed]
    if blind:
        items.append(
            f"Score {', '.join(blind)} on the common test set: without predictions there is no "
            "68 % containment, no interval and no paired comparison."
        )
    return ["## Recommendations", "", *[f"{i}. {item}" for i, item in enumerate(items, 1)]]


def reasons_cell(reasons: dict[str, int]) -> str:
    return "; ".join(f"{n} × {reason}" for reason, n in reasons.most_common()) or "none"


def datasets_section(r: Report) -> list[str]:
    """Per dataset: what was read, what each selection step left, what was skipped and why,
    and how many test samples can be measured against a neutrino direction."""
    lines = [
        "## Datasets",
        "",
        "What the versions were trained and scored on, from each dataset's manifest.json "
        "(which lists every input file and every skipped file and row).",
        "",
    ]
    if not r.datasets:
        return [*lines, "No version names a dataset with a manifest (imported runs only)."]
    rows = []
    for d in r.datasets:
        nu = "?" if d.test_with_nu is None else f"{d.test_with_nu} of {d.test_size}"
        rows.append(
            [
                d.path,
                ", ".join(d.versions),
                f"{d.input_files} ({'/'.join(map(str, d.metadata_widths))} columns)",
                " → ".join(f"{n} {step}" for step, n in d.chain),
                f"{d.test_size} of {d.samples}",
                nu,
                reasons_cell(d.skipped_files),
                reasons_cell(d.skipped_rows),
            ]
        )
    header = ["Dataset", "Versions", "Input files (metadata)", "Selection", "Test set"]
    header += ["Test samples with a ν direction", "Skipped files", "Skipped rows"]
    lines += markdown_table(header, rows)
    if any(d.test_with_nu is not None and d.test_with_nu < d.test_size for d in r.datasets):
        lines.append(
            "\nOnly files with 18 metadata columns carry the neutrino direction: burst pointing "
            "is measured on the test samples that have one."
        )
    return lines


def short(identity: str | None) -> str:
    """Hashes cut to 12 hex digits (enough to tell sets apart); other labels unchanged."""
    if not identity:
        return "—"
    is_hash = len(identity) > 12 and all(c in "0123456789abcdef" for c in identity)
    return identity[:12] if is_hash else identity


def technical_notes(r: Report) -> list[str]:
    lines = [
        "## Technical Notes",
        "",
        "### Metric definitions",
        "- Angular error = degrees(arccos(clip(p̂·t, −1, 1))), p̂ = prediction/|prediction|.",
        "- **68 % containment** = 68th percentile of the angular error (not the 32 % point).",
        "- Mean and median over the scored samples; intervals: percentile bootstrap, 95 %, "
        f"{r.boot.n_boot} resamples, seed {r.boot.seed}; differences are paired on a common "
        "test set.",
        "",
        "### Status rules",
        "- ❌ Failed: training crashed or left no score, or the mean error is more than "
        f"{100 * r.rules.fail_margin:.0f} % above baseline {r.rules.baseline}'s and (where both "
        "have predictions) the 95 % interval of the difference excludes zero.",
        "- ⚠️ NaN issues: any non-finite training or validation loss, or training status `nan`.",
        "- ⭐ BEST: lowest mean error among versions not failed (NaN issues allowed).",
        "- ✅ Stable: neither failed nor NaN-affected.",
        "",
        "### Dataset, test-set and code identity",
        "| Version | Dataset | Dataset hash | Scored on | edtrain | Commit | Missing |",
        "|---------|---------|--------------|-----------|---------|--------|---------|",
    ]
    for run in r.runs:
        missing = (run.legacy or {}).get("missing") or run.missing
        commit = run.training.get("git_commit")
        lines.append(
            f"| {run.name} | {run.config.get('dataset', '—')} | "
            f"{short(run.training.get('dataset_hash'))} | {short(run.test_set)} | "
            f"{run.training.get('edtrain_version', '—')} | {commit[:12] if commit else '—'}"
            f"{'-dirty' if commit and commit.endswith('-dirty') else ''} | "
            f"{', '.join(missing) or '—'} |"
        )
    return [*lines, "", *package_lines(r)]


def package_lines(r: Report) -> list[str]:
    """The libraries the versions trained with (training.json ``packages``), one line per
    distinct set, naming its versions."""
    sets: dict[str, list[str]] = {}
    for run in r.runs:
        found = run.training.get("packages")
        if found:
            label = ", ".join(f"{k} {v}" for k, v in sorted(found.items()))
            sets.setdefault(f"Python {run.training.get('python', '?')}, {label}", []).append(
                run.name
            )
    if not sets:
        return ["No training record names its packages (trained before edtrain recorded them)."]
    return [f"Trained with {label}: {', '.join(names)}." for label, names in sets.items()]


def render(r: Report) -> str:
    """The whole insights.md."""
    names = [run.name for run in r.runs]
    title = f"{names[0]}-{names[-1]}" if len(names) > 1 else names[0]
    header = [
        f"# Electron Direction Training Insights ({title})",
        "",
        f"**Date**: {dt.datetime.now(dt.UTC):%B %d, %Y}  ",
        f"**Analysis**: {len(names)} version{'s' if len(names) > 1 else ''}: {', '.join(names)}",
        "",
    ]
    sections = [
        performance_summary(r),
        diagnostics_section(r),
        *([uncertainty_section(r)] if any(run.uncertainty for run in r.runs) else []),
        ["## Key Insights"],
        architecture_section(r),
        scaling_section(r),
        loss_section(r),
        stability_section(r),
        hyperopt_section(r),
        pairs_section(r),
        pointing_section(r),
        recommendations(r),
        datasets_section(r),
        technical_notes(r),
    ]
    body: list[str] = []
    for section in sections:
        if section[0].startswith("## ") and body:
            body += ["---", ""]
        body += [*section, ""]
    return "\n".join(header + body).rstrip() + "\n"
