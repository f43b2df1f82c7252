"""The fixed set of figures exists whatever the versions provide."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from edtrain import cli
from edtrain.plots import PLOT_FILES, error_vs_energy


def test_plot_files_are_a_fixed_list_of_pngs():
    assert len(set(PLOT_FILES)) == len(PLOT_FILES) == 7
    assert all(name.endswith(".png") for name in PLOT_FILES)


@pytest.mark.parametrize("status", ["failed", None])
def test_versions_without_outputs_still_give_every_figure(tmp_path, status):
    """A crashed version (training.json only) or a version that never ran (no folder)."""
    if status:
        (tmp_path / "results" / "x1").mkdir(parents=True)
        (tmp_path / "results" / "x1" / "training.json").write_text(json.dumps({"status": status}))
    out = tmp_path / "out"
    argv = ["insights", "--results-dir", str(tmp_path / "results"), "--versions", "x1",
            "--out-md", str(out / "insights.md"), "--out-csv", str(out / "summary.csv"),
            "--plots-dir", str(out / "plots")]  # fmt: skip
    assert cli.main(argv) == 0
    assert "| x1 | ? | ? | ? | — | — | — | ❌ Failed |" in (out / "insights.md").read_text()
    for name in PLOT_FILES:
        assert imread(out / "plots" / name).shape[0] > 50, name


def test_energy_plot_ends_at_the_last_bin_drawn():
    """A sparse bin at high energy is left out, and so is the empty range up to it."""
    energy = pd.DataFrame(
        {
            "version": "v1",
            "e_lo_mev": [2.0, 4.0, 6.0, 50.0],
            "e_hi_mev": [4.0, 6.0, 8.0, 70.0],
            "n": [20, 30, 15, 3],
            "median_deg": [40.0, 35.0, 30.0, 10.0],
            "q68_deg": [70.0, 60.0, 50.0, 20.0],
        }
    )
    report = SimpleNamespace(runs=[SimpleNamespace(name="v1")])
    fig = error_vs_energy(report, energy)  # type: ignore[arg-type]
    assert fig.axes[0].get_xlim() == (0.0, 8.0)


def test_the_oracle_is_drawn_once_for_versions_sharing_its_samples():
    bins = {"e_lo_mev": [2.0, 4.0], "e_hi_mev": [4.0, 6.0], "n": [20, 30]}
    bins |= {"median_deg": [40.0, 35.0], "q68_deg": [70.0, 60.0]}
    oracle = {"oracle_n": [15, 25], "oracle_median_deg": [5.0, 4.0], "oracle_q68_deg": [8.0, 7.0]}
    energy = pd.concat(
        [pd.DataFrame(bins | oracle).assign(version=v) for v in ("v1", "v2")], ignore_index=True
    )
    report = SimpleNamespace(runs=[SimpleNamespace(name="v1"), SimpleNamespace(name="v2")])
    fig = error_vs_energy(report, energy)  # type: ignore[arg-type]
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels.count("oracle 68 %") == 1 and "v2 68 %" in labels
    other = energy.assign(oracle_q68_deg=np.where(energy["version"] == "v2", 9.0, 8.0))
    labels = error_vs_energy(report, other).axes[0].get_legend_handles_labels()[1]  # type: ignore[arg-type]
    assert "oracle (v1's samples) 68 %" in labels and "oracle (v2's samples) 68 %" in labels
