"""The whole workflow, for real, on the tiny scenarios in config/test/ (a minute or two each).

Each scenario runs `snakemake --cores 2` from nothing to results/insights.md and checks the
cross-stage contract (docs/architecture.md): every version's outputs, one common test set,
the recorded scaling and hyperopt status, and that a second run has nothing left to do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from edtrain.metrics import angular_error_deg, summarize
from edtrain.plots import PLOT_FILES

REPO = Path(__file__).resolve().parents[2]
VERSION_FILES = [
    "config.json",
    "model.keras",
    "history.csv",
    "training.json",
    "predictions.npz",
    "metrics.json",
]

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def _versions(layer: str) -> list[str]:
    return yaml.safe_load((REPO / "config" / layer).read_text())["run_versions"]


def _simulate_eos_stand_in(rundir: Path) -> None:
    """config/test/eos.yaml reads a production that exists before the workflow starts."""
    subprocess.run(
        [
            *(sys.executable, "-m", "edtrain.cli", "simulate", "--out", "production"),
            *("--files", "2", "--events-per-file", "40", "--seed", "3"),
        ],
        cwd=rundir,
        check=True,
        timeout=600,
    )


@pytest.mark.parametrize("layer", ["test/synthetic.yaml", "test/per_plane.yaml", "test/eos.yaml"])
def test_scenario_runs_end_to_end(snakemake, rundir: Path, layer: str) -> None:
    if layer == "test/eos.yaml":
        _simulate_eos_stand_in(rundir)
    versions = _versions(layer)

    run = snakemake("--cores", "2", "--configfile", f"config/{layer}", timeout=1200)
    assert run.returncode == 0, run.stdout

    results = rundir / "results"
    for version in versions:
        for name in VERSION_FILES:
            assert (results / version / name).is_file(), f"{version}/{name}"
        config = json.loads((results / version / "config.json").read_text())
        assert config["scaling"]["applied"] and config["scaling"]["name"] == "test"
        assert config["hyperopt"]["ran"] is config["hyperopt"]["enabled"]
        training = json.loads((results / version / "training.json").read_text())
        assert training["status"] in {"ok", "nan", "failed"}
        assert training["samples_requested"] == config["samples"]

    # one test set for every version, the one the dataset manifest declares
    dataset = Path(json.loads((results / versions[0] / "config.json").read_text())["dataset"])
    manifest = json.loads((rundir / dataset / "manifest.json").read_text())
    hashes = {
        json.loads((results / v / "metrics.json").read_text())["test_set_hash"] for v in versions
    }
    assert hashes == {manifest["test_set_hash"]}

    insights = (results / "insights.md").read_text()
    for version in versions:
        assert version in insights
    summary = pd.read_csv(results / "summary.csv")
    assert len(summary) >= len(versions)
    assert (results / "energy.csv").is_file()
    assert any((results / "plots").glob("*.png"))
    if "v11" in versions:  # a requested search that did not run must be visible
        assert "hyperopt" in insights.lower()

    for version in versions:  # metrics.json is the summary of the saved predictions
        saved = np.load(results / version / "predictions.npz")
        errors = angular_error_deg(saved["test_predictions"], saved["test_true"])
        metrics = json.loads((results / version / "metrics.json").read_text())
        for key, value in summarize(errors).items():
            assert metrics[key] == pytest.approx(value, rel=1e-6), (version, key)

    again = snakemake("-n", "--configfile", f"config/{layer}")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout, again.stdout

    if layer == "test/synthetic.yaml":  # the HTML report bundles every figure
        built = snakemake("--configfile", f"config/{layer}", "--report", "report.html")
        assert built.returncode == 0, built.stdout
        html = (rundir / "report.html").read_text()
        for name in [*PLOT_FILES, "gallery.png"]:
            assert name in html, name
