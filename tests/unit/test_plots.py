"""The fixed set of figures exists whatever the versions provide."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from edtrain import cli
from edtrain.plots import PLOT_FILES, error_cdf, error_vs_energy


def test_plot_files_are_a_fixed_list_of_pngs_each_with_its_report_caption():
    assert len(set(PLOT_FILES)) == len(PLOT_FILES) == 7
    assert all(name.endswith(".png") for name in PLOT_FILES)
    captions = (Path(__file__).parents[2] / "workflow" / "report" / "plots.rst").read_text()
    for name in PLOT_FILES:
        assert f'snakemake.wildcards.name == "{name.removesuffix(".png")}" %}}' in captions, name


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


def test_energy_plot_has_a_panel_per_version_with_the_oracle_of_its_own_samples():
    bins = {"e_lo_mev": [2.0, 4.0], "e_hi_mev": [4.0, 6.0], "n": [20, 30]}
    bins |= {"median_deg": [40.0, 35.0], "q68_deg": [70.0, 60.0]}
    oracle = {"oracle_n": [15, 25], "oracle_median_deg": [5.0, 4.0], "oracle_q68_deg": [8.0, 7.0]}
    energy = pd.concat(
        [pd.DataFrame(bins | oracle).assign(version=v) for v in ("v1", "v2")], ignore_index=True
    )
    energy.loc[energy["version"] == "v2", "oracle_q68_deg"] = 9.0
    report = SimpleNamespace(runs=[SimpleNamespace(name="v1"), SimpleNamespace(name="v2")])
    fig = error_vs_energy(report, energy)  # type: ignore[arg-type]
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert [ax.get_title() for ax in panels] == ["v1", "v2"]
    for ax, q68 in zip(panels, (8.0, 9.0), strict=True):
        heights = [tuple(np.round(p.get_data()[0], 1)) for p in ax.patches]  # StepPatch values
        assert (q68, 7.0 if q68 == 8.0 else 9.0) in heights  # its oracle, not the other's
        assert (70.0, 60.0) in heights
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["median", "68 % containment", "oracle median (same samples)",
                      "oracle 68 % (same samples)"]  # fmt: skip


def test_error_cdf_tells_apart_more_versions_than_there_are_colours():
    """Past the palette's 20 colours the overlaid curves change line style, so no two
    versions' curves look alike."""
    rng = np.random.default_rng(0)
    runs = [SimpleNamespace(name=f"v{i}", errors=rng.uniform(0, 180, 50)) for i in range(25)]
    fig = error_cdf(SimpleNamespace(runs=runs))  # type: ignore[arg-type]
    styles = {(line.get_color(), line.get_linestyle()) for line in fig.axes[0].get_lines()[:25]}
    assert len(styles) == 25
