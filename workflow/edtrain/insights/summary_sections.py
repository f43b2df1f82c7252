"""The report's opening sections: performance summary, accuracy diagnostics, uncertainty."""

from __future__ import annotations

import numpy as np

from edtrain.insights.markdown import (
    deg,
    markdown_table,
    number,
    percent,
    samples_cell,
    version_cell,
    with_interval,
)
from edtrain.insights.report import Report
from edtrain.metrics import (
    CONE_LEVELS,
    CONFIDENT_SHARES,
    FLIP_FOLDED_MAX_DEG,
    SIGN_MIN_ABS,
    KappaCalibration,
)

ORACLE_HEADER = ["Oracle samples", "Oracle 68 %", "Version 68 % (same samples)", "Version / oracle"]


def performance_summary(r: Report) -> list[str]:
    lines = [
        "## Performance Summary",
        "",
    ]
    rows = []
    for name, row in r.table.iterrows():
        mean = with_interval(row["mean_deg"], row["mean_lo"], row["mean_hi"])
        if row["best"]:
            mean = f"**{mean}**"
        cells = [
            version_cell(str(name), row),
            samples_cell(row),
            row["architecture"],
            row["loss"],
            mean,
            with_interval(row["median_deg"], row["median_lo"], row["median_hi"]),
            with_interval(row["q68_deg"], row["q68_lo"], row["q68_hi"]),
            row["status"],
        ]
        rows.append(cells)
    header = ["Version", "Samples", "Architecture", "Loss Function", "Mean Error"]
    header += ["Median Error", "68 % Containment", "Status"]
    lines += [*markdown_table(header, rows), ""]
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
    table = []
    for name, row in rows.iterrows():
        signs = [row.get(f"sign_agree_{axis}", np.nan) for axis in "xyz"]
        cells = [
            version_cell(str(name), row),
            *([frames.get(str(name)) or "—"] if show_frame else []),
            deg(row["q68_deg"]),
            deg(row["folded_q68_deg"]),
            percent(row.get("flip_frac", np.nan)),
            " / ".join(percent(s, 0) for s in signs),
        ]
        if show_oracle:
            has = row["oracle_n"] > 0
            cells += [
                number(row["oracle_n"]) if has else "—",
                deg(row["oracle_q68_deg"]),
                deg(row["oracle_version_q68_deg"]),
                number(row["oracle_q68_ratio"], "{:.2f}") if has else "—",
            ]
        table.append(cells)
    lines += markdown_table(header, table)
    if show_oracle:
        lines += [
            "",
            "Oracle: the line fit on the electron's true path (synthetic production), for the test "
            "samples that are their event's main electron; the version's 68 % is recomputed on "
            "exactly those samples, and the ratio is version / oracle.",
        ]
    return lines


def kappa_scale_cell(block: dict) -> str:
    """The κ calibration's factor, or its range over cluster energy (1: none recorded)."""
    scale = (KappaCalibration.saved(block) or KappaCalibration.constant()).scale
    if not np.isfinite(scale).any():
        return number(np.nan)
    lo, hi = np.nanmin(scale), np.nanmax(scale)
    same = np.isclose(lo, hi, rtol=0.005)
    return number(lo, "{:.2f}") if same else f"{number(lo, '{:.2f}')}–{number(hi, '{:.2f}')}"


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
            kappa_scale_cell(b),
            number(b["median_kappa"], "{:.1f}"),
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
        "a factor per cluster energy (κ scale: its range; one number for versions scored with "
        "a single factor), fitted on the version's validation samples so that their 68 % cones "
        "hold 68 % of them at every energy (docs/metrics.md).",
        "",
        *markdown_table(header, rows),
        "",
        "Inside the predicted 68 % cone, per cluster-energy bin (share of the bin's test samples):",
        "",
        *markdown_table(["Energy", *blocks], energy_rows),
    ]
