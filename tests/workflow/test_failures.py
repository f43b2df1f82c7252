"""Runs a user can trust when something goes wrong (docs/insights.md, "A version that fails").

- A training that crashes is a failed version, and so is one whose job fails (killed after its
  retries): with `--keep-going` the insights are still written and show both ❌ Failed beside
  the others, instead of the old report describing an old run.
- A forced retraining that was interrupted leaves the version's later outputs behind; a plain
  rerun must redo training, predictions and insights, not report "Nothing to be done".
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

# v12's validation share leaves none of the tiny dataset's samples to train on: a valid
# config (any share in (0, 1)) whose training raises.
LAYER = """
run_versions: [v7, v12]
require_gpu: false
data:
  source: synthetic
  synthetic: {files: 2, events_per_file: 40, layout: flat}
  test_fraction: 0.2
  chunks: 1
scaling: {name: test, samples_factor: 0.005, max_epochs: 2, width_factor: 0.125}
versions:
  v12:
    val_fraction: 0.999
"""
TARGETS = ["results/insights.md", "results/summary.csv"]


def test_failed_versions_are_failed_rows_of_the_report(snakemake, rundir: Path) -> None:
    """v12's training crashes (a recorded failure, exit 0); v14's job fails outright, as a
    job killed after its last retry does (a file where its state folder goes: OSError). With
    --keep-going the run fails, and the insights are written anyway, both ❌ Failed."""
    (rundir / "failing.yaml").write_text(LAYER.replace("[v7, v12]", "[v7, v12, v14]"))
    (rundir / ".state").mkdir()
    (rundir / ".state/v14").write_text("not a folder")
    run = snakemake("--cores", "2", "--keep-going", "--configfile", "failing.yaml", timeout=900)
    assert run.returncode != 0, run.stdout[-5000:]
    assert "Writing results/insights.md anyway, v14 unfinished." in run.stdout, run.stdout[-5000:]

    record = json.loads((rundir / "results/v12/training.json").read_text())
    assert record["status"] == "failed"
    assert record["error"], record
    assert "Traceback" in (rundir / "logs/train/v12.log").read_text()
    assert not (rundir / "results/v14/training.json").exists()
    summary = pd.read_csv(rundir / "results/summary.csv", index_col="version")
    assert set(summary.index) == {"v7", "v12", "v14"}
    assert "Failed" in summary.loc["v12", "status"]
    assert "Failed" in summary.loc["v14", "status"]
    assert "Failed" not in summary.loc["v7", "status"]
    report = (rundir / "results/insights.md").read_text()
    assert any("v12" in line and "❌ Failed" in line for line in report.splitlines())
    assert "- ❌ v14: no outputs: a job of it failed or did not run" in report


def test_interrupted_forced_retraining_is_redone_by_a_plain_rerun(snakemake, rundir: Path) -> None:
    """What an interrupted `--forcerun train` leaves: Snakemake removed the training job's
    outputs before starting it, and the kill left the old run's predictions and report. The
    interruption is reproduced by removing those outputs as Snakemake does (a real Ctrl-C
    races with the job's own end on a busy machine); a plain rerun must redo everything
    after training instead of saying "Nothing to be done"."""
    layer = LAYER.replace("[v7, v12]", "[v7]")
    (rundir / "interrupted.yaml").write_text(layer)
    args = ["--cores", "1", "--configfile", "interrupted.yaml"]
    first = snakemake(*args, timeout=900)
    assert first.returncode == 0, first.stdout[-5000:]
    before = {p: (rundir / p).stat().st_mtime for p in TARGETS}
    for name in ("model.keras", "history.csv", "training.json"):
        (rundir / "results/v7" / name).unlink()
    assert (rundir / "results/v7/predictions.npz").exists()  # the old run's, left behind

    dry = snakemake(*args, "--dry-run", timeout=300)
    assert "Nothing to be done" not in dry.stdout, dry.stdout[-3000:]
    for rule in ("train", "predict", "insights"):
        assert rule in dry.stdout, rule
    rerun = snakemake(*args, timeout=900)
    assert rerun.returncode == 0, rerun.stdout[-5000:]
    for name in ("training.json", "predictions.npz", "metrics.json"):
        assert (rundir / "results/v7" / name).is_file(), name
    for path, mtime in before.items():
        assert (rundir / path).stat().st_mtime > mtime, path
