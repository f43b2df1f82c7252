"""The report's closing sections: burst pointing, recommendations, datasets, technical notes."""

from __future__ import annotations

import numpy as np

from edtrain.insights.findings import usable
from edtrain.insights.markdown import markdown_table, reasons_cell, short
from edtrain.insights.pointing import (
    FIXED_CONE_DEG,
    ISOTROPIC_Q68_DEG,
    MIN_POOL,
    PILEUP_CONE_DEG,
    Pointing,
)
from edtrain.insights.report import Report, falls_with_data, searches_not_run
from edtrain.insights.runs import Run, samples_label
from edtrain.insights.version_table import NO_SCORE


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
    header += [*(["Weighted (κ or head–tail)"] if weighted else []), "Floor (perfect e⁻)"]
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
            "\nWeighted: the same bursts pointed by maximum likelihood, each electron weighted "
            "by its predicted concentration κ folded with the ES kinematic spread at its energy "
            "(1/κ′ = 1/κ + 1/κ_ES, κ_ES from the test set's own truth), or for a version that "
            "predicts the probability p that its sense is right, each electron as its expected "
            "direction (2p − 1 times the predicted one); versions with neither: —."
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
    not_run = searches_not_run(r.runs)
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
    ]
    rows = []
    for run in r.runs:
        missing = (run.legacy or {}).get("missing") or run.missing
        commit = run.training.get("git_commit")
        dirty = "-dirty" if commit and commit.endswith("-dirty") else ""
        rows.append(
            [
                run.name,
                run.config.get("dataset", "—"),
                short(run.training.get("dataset_hash")),
                short(run.test_set),
                run.training.get("edtrain_version", "—"),
                f"{commit[:12]}{dirty}" if commit else "—",
                ", ".join(missing) or "—",
            ]
        )
    header = ["Version", "Dataset", "Dataset hash", "Scored on", "edtrain", "Commit", "Missing"]
    return [*lines, *markdown_table(header, rows), "", *package_lines(r)]


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
