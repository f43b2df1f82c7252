"""The Key Insights subsections, numbered by the report in the order it lists them."""

from __future__ import annotations

from edtrain.insights.findings import improvement
from edtrain.insights.markdown import (
    change_text,
    deg,
    delta_text,
    markdown_table,
    number,
    verdict,
)
from edtrain.insights.report import Report, falls_with_data, searches_not_run
from edtrain.insights.runs import samples_label

# Losses built on arccos of the cosine: the ones whose naive gradient diverges at |cos| = 1.
ARCCOS_LOSSES = {
    "angular",
    "focal_angular",
    "hybrid",
    "angular_axial",
    "axial_sense",
    "axial_direction",
}


def architecture_section(r: Report) -> list[str]:
    lines = ["### Architecture Scaling", ""]
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


def scaling_section(r: Report) -> list[str]:
    lines = ["### Data Scaling", ""]
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
    lines = ["### Loss Function Comparison", ""]
    if not r.loss_groups:
        return [*lines, "No versions differ in the loss alone."]
    for group in r.loss_groups:
        first = r.table.loc[group[0]]
        lines.append(f"With {first['architecture']}, {samples_label(first['samples'])}:")
        for name in group:
            row = r.table.loc[name]
            c = r.pair(group[0], name)
            extra = f" ({delta_text(c)} vs {group[0]}, {verdict(c)})" if c else ""
            failed = " ❌ **FAILED**" if row["failed"] else ""
            lines.append(f"- {row['loss']} ({name}): {deg(row['mean_deg'])}{extra}{failed}")
        lines += ["", f"**Conclusion**: {loss_conclusion(r, group)}", ""]
    return lines[:-1]


def loss_conclusion(r: Report, group: list[str]) -> str:
    """Which loss did best in the group, whether that is established, and which failed."""
    rows = r.table.loc[group]
    ok = rows[rows["failed"] == ""].sort_values("mean_deg")
    parts = []
    if len(ok):
        best = ok.index[0]
        parts.append(f"lowest error with {ok.loc[best, 'loss']} ({best})")
        for other in ok.index[1:]:
            c = r.pair(best, other) or r.pair(other, best)
            parts.append(
                f"{ok.loc[other, 'loss']} ({other}) differs by {abs(c.delta):.2f}°, {verdict(c)}"
            )
    failed = rows[rows["failed"] != ""]
    parts += [
        f"{failed.loc[v, 'loss']} ({v}) failed: {failed.loc[v, 'failed']}" for v in failed.index
    ]
    return "; ".join(parts) + "."


def stability_section(r: Report) -> list[str]:
    lines = [
        "### Training Stability",
        "",
    ]
    header = ["Version", "Status", "NaN at epoch", "Stopped at epoch", "Best epoch"]
    header += ["Best val_loss", "Final val_loss"]
    rows = []
    for run in r.runs:
        row = r.table.loc[run.name]
        final = (
            run.history["val_loss"].iloc[-1]
            if run.history is not None and len(run.history) and "val_loss" in run.history
            else None
        )
        nan_at = run.training.get("nan_epoch")
        rows.append(
            [
                run.name,
                f"{run.training_status}{' ⚠️' if row['nan_issues'] else ''}",
                number(nan_at) if nan_at is not None else "—",
                number(run.training.get("epochs_run")),
                number(run.training.get("best_epoch")),
                number(run.training.get("best_val_loss"), "{:.4f}"),
                number(final, "{:.4f}"),
            ]
        )
    lines += markdown_table(header, rows)
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
        "### Hyperopt Status",
        "",
    ]
    rows = []
    for run in r.runs:
        h = run.config.get("hyperopt") or {}
        requested, ran = bool(h.get("enabled")), bool(h.get("ran"))
        rows.append(
            [
                run.name,
                "yes" if requested else "no",
                "yes" if ran else ("**NO**" if requested else "no"),
                trials_cell(h),
                params_cell(h.get("best_params")),
            ]
        )
    lines += markdown_table(["Version", "Requested", "Ran", "Trials", "Best parameters"], rows)
    not_run = searches_not_run(r.runs)
    if not_run:
        lines += [
            "",
            f"🚨 **{', '.join(not_run)} asked for a hyperparameter search that DID NOT RUN.** "
            "Those rows are plain training runs of the listed configuration; no best parameters "
            "exist, so no hyperopt insight can be drawn from them.",
        ]
    return lines


def pairs_section(r: Report) -> list[str]:
    lines = [
        "### Controlled Comparisons",
        "",
        "Pairs that differ in at most one of architecture, samples, loss and label frame (Δ = "
        "mean error of the second minus the first; 95 % interval).",
        "",
    ]
    if not r.pairs:
        return [
            *lines[:2],
            "No two scored versions differ in at most one of architecture, samples, loss and "
            "label frame.",
        ]
    header = ["Pair", "Factor", "Change", "Δ mean", "Verdict", "Also differs"]
    rows = [
        [
            f"{c.reference} → {c.version}",
            c.factor or c.change,
            c.change if c.factor else "—",
            delta_text(c),
            verdict(c),
            "; ".join(c.also) or "—",
        ]
        for c in r.pairs
    ]
    return [*lines, *markdown_table(header, rows)]
