"""The `insights` command: every version's outputs → insights.md, summary.csv, energy table, plots.

Submodules: runs (read a version folder), datasets (what each dataset was made of), tables
(metrics, intervals, statuses), compare and findings (the Key Insights), pointing (supernova
burst toys), text (the markdown).
See docs/insights.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from edtrain.insights.compare import controlled_pairs
from edtrain.insights.datasets import dataset_summaries
from edtrain.insights.findings import (
    architecture_gains,
    loss_groups,
    next_size,
    scaling_fit,
    scaling_group,
    size_groups,
)
from edtrain.insights.pointing import Pointing, burst_pointing
from edtrain.insights.report import Report
from edtrain.insights.runs import Run, load_run
from edtrain.insights.text import render
from edtrain.insights.version_table import Bootstrap, StatusRules, energy_table, summary_table

log = logging.getLogger(__name__)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results-dir", type=Path, required=True)
    parser.add_argument("--versions", nargs="+", required=True, help="in report order")
    parser.add_argument(
        "--unfinished",
        nargs="+",
        default=[],
        metavar="VERSION",
        help="versions whose jobs failed or did not run: ❌ Failed, their files left unread",
    )
    parser.add_argument("--out-md", type=Path, required=True)
    parser.add_argument("--out-csv", type=Path, required=True, help="summary, a row per version")
    parser.add_argument("--plots-dir", type=Path, required=True)
    parser.add_argument("--energy-csv", type=Path, help="error per energy bin and version")
    parser.add_argument(
        "--baseline", help="version the Failed rule compares to (default: the first version)"
    )
    parser.add_argument(
        "--fail-margin",
        type=float,
        default=0.10,
        help="Failed if the mean error exceeds the baseline's by more than this fraction",
    )
    parser.add_argument(
        "--burst-size", type=positive_int, default=239, help="ES events per toy burst"
    )
    parser.add_argument("--toys", type=positive_int, default=2000, help="toy bursts per version")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--next-samples", type=int, help="size to extrapolate to (default: twice the largest)"
    )


def pointing_by_version(
    runs: list[Run], burst_size: int, toys: int, seed: int
) -> dict[str, Pointing]:
    return {
        run.name: burst_pointing(run.predictions, burst_size, toys, seed)
        for run in runs
        if run.predictions is not None and len(run.predictions["test_true"])
    }


def summary_csv(table: pd.DataFrame, pointing: dict[str, Pointing]) -> pd.DataFrame:
    """The table plus burst pointing; one row per version in report order of the table."""
    burst = pd.DataFrame(
        {
            name: {
                "burst_reference": p.reference,
                "burst_size": p.burst_size,
                "burst_q68_deg": p.q68_deg,
                "burst_q68_sigma_deg": p.q68_sigma_deg,
                "burst_floor_q68_deg": p.floor_q68_deg,
                "burst_weighted_q68_deg": p.weighted_q68_deg,
                "burst_fixed_q68_deg": p.fixed_q68_deg,
                "burst_fixed_sigma_deg": p.fixed_sigma_deg,
                "burst_fixed_floor_q68_deg": p.fixed_floor_q68_deg,
                "axis_pileup_ratio": p.pileup_ratio,
                "axis_pileup_axis": p.pileup_axis,
            }
            for name, p in pointing.items()
        }
    ).T
    return table.join(burst) if len(burst) else table


def build_report(args: argparse.Namespace) -> Report:
    runs = [load_run(args.results_dir, v, v in args.unfinished) for v in args.versions]
    for run in runs:
        if run.missing:
            log.info("%s: missing %s", run.name, ", ".join(run.missing))
    rules = StatusRules(baseline=args.baseline or args.versions[0], fail_margin=args.fail_margin)
    boot = Bootstrap(n_boot=args.bootstrap, seed=args.seed)
    table = summary_table(runs, rules, boot)
    means = table["mean_deg"].astype(float).to_dict()
    fit_versions = scaling_group(runs, table)
    return Report(
        runs=runs,
        table=table,
        rules=rules,
        boot=boot,
        architecture=architecture_gains(runs, table, rules.baseline, boot),
        sizes=size_groups(table),
        fit=scaling_fit(table, fit_versions),
        fit_versions=fit_versions,
        next_samples=next_size(table, args.next_samples, fit_versions),
        loss_groups=loss_groups(runs, table),
        pairs=controlled_pairs(runs, means, boot.n_boot, boot.seed),
        pointing=pointing_by_version(runs, args.burst_size, args.toys, args.seed),
        burst_size=args.burst_size,
        datasets=dataset_summaries(runs),
    )


def main(args: argparse.Namespace) -> int:
    from edtrain import plots

    report = build_report(args)
    for path in (args.out_md, args.out_csv, args.energy_csv):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
    args.out_md.write_text(render(report))
    summary_csv(report.table, report.pointing).to_csv(args.out_csv)
    energy = energy_table(report.runs)
    if args.energy_csv:
        energy.to_csv(args.energy_csv, index=False)
    written = plots.write_all(report, energy, args.plots_dir)
    log.info(
        "wrote %s, %s and %d plots in %s", args.out_md, args.out_csv, len(written), args.plots_dir
    )
    return 0
