"""Acceptance: v7–v13 imported as legacy runs regenerate the seed's Performance Summary.

The legacy result folders are written here from the predecessor's own records, copied below
(config per version, logged metrics, stop and best epochs, NaN notes), imported with
`import-legacy run` and aggregated with `insights`, as a user would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edtrain import cli

# ver: samples, train split, conv layers, filters, loss, epochs, ES patience, RLR patience,
#      hyperopt flag, mean, median, p25, p75, stopped at, best epoch, first NaN epoch
PREDECESSOR = {
    "v7": (10_000, 0.8, 3, 32, "cosine_similarity", 100, 15, 5, False,
           66.25, 56.78, 31.43, 95.69, 41, 26, None),
    "v8": (10_000, 0.8, 3, 32, "angular_loss", 100, 15, 5, False,
           67.79, 58.22, 30.94, 100.77, 38, 23, None),
    "v9": (10_000, 0.8, 3, 32, "focal_angular_loss", 100, 15, 5, False,
           74.95, 73.35, 49.23, 97.84, 31, 16, None),
    "v10": (50_000, 0.7, 4, 64, "angular_loss", 200, 20, 10, False,
            54.95, 39.50, 20.38, 81.41, 59, 39, None),
    "v11": (50_000, 0.7, 4, 64, "angular_loss", 100, 20, 10, True,
            55.31, 40.28, 20.63, 81.80, 56, 36, None),
    "v12": (100_000, 0.7, 4, 64, "angular_loss", 200, 20, 10, False,
            50.60, 34.25, None, None, 56, 36, 56),
    "v13": (100_000, 0.7, 4, 64, "angular_loss", 100, 20, 10, True,
            52.39, 37.23, 19.25, 75.81, 36, 16, 20),
}  # fmt: skip
VERSIONS = list(PREDECESSOR)


def predecessor_config(version: str) -> dict:
    """The predecessor's config file: the old schema for v7–v9, the new one from v10."""
    samples, train, layers, filters, loss, epochs, es, rlr, hyperopt, *_ = PREDECESSOR[version]
    config = {
        "model": {"name": f"three_plane_{version}_{samples // 1000}k", "n_conv_layers": layers,
                  "n_filters": filters, "kernel_size": 3, "n_dense_layers": 2,
                  "n_dense_units": 256},
        "data": {"data_directories": ["/eos/.../cluster_images_nov11/"], "max_samples": samples,
                 "train_split": train, "val_split": round(1 - train, 2)},
        "training": {"loss": loss, "optimizer": "adam", "learning_rate": 0.001, "batch_size": 32,
                     "epochs": epochs, "early_stopping_patience": es, "reduce_lr_patience": rlr},
        "hyperopt": {"enabled": hyperopt},
    }  # fmt: skip
    if int(version[1:]) <= 9:
        config |= {"model_type": "three_plane_cnn", "version": version, "description": version}
    return config


def predecessor_history(version: str) -> dict:
    """Loss curves with the logged stop epoch, best epoch and first NaN epoch."""
    *_, stopped, best, nan_from = PREDECESSOR[version]
    epoch = np.arange(1, stopped + 1)
    val = 1.0 + 1e-4 * (epoch - best) ** 2
    loss = 1.2 - 0.004 * epoch
    if nan_from is not None:
        val[nan_from - 1 :] = np.nan
        loss[nan_from - 1 :] = np.nan if nan_from < stopped else loss[nan_from - 1 :]
    lr = 1e-3 * 0.5 ** (epoch // 10)
    as_list = lambda a: [None if not np.isfinite(v) else float(v) for v in a]  # noqa: E731
    return {"loss": as_list(loss), "val_loss": as_list(val), "mae": as_list(loss),
            "val_mae": as_list(val), "learning_rate": lr.tolist()}  # fmt: skip


def write_legacy_result(folder: Path, version: str) -> Path:
    mean, median, p25, p75 = PREDECESSOR[version][9:13]
    results = {"angular_error_mean": mean, "angular_error_median": median,
               "angular_error_std": 40.0, "config": predecessor_config(version),
               "history": predecessor_history(version)}  # fmt: skip
    if p25 is not None:
        results |= {"angular_error_25th": p25, "angular_error_75th": p75}
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


@pytest.fixture(scope="module")
def insights(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame, Path]:
    root = tmp_path_factory.mktemp("legacy")
    for version in VERSIONS:
        source = write_legacy_result(root / "eos" / f"three_plane_{version}_20251111", version)
        out = root / "results" / version
        assert cli.main(["import-legacy", "run", str(source), "--version", version,
                         "--out-dir", str(out)]) == 0  # fmt: skip
    outputs = ["--out-md", str(root / "insights.md"), "--out-csv", str(root / "summary.csv"),
               "--plots-dir", str(root / "plots")]  # fmt: skip
    args = ["--results-dir", str(root / "results"), "--versions", *VERSIONS, *outputs,
            "--baseline", "v7", "--bootstrap", "50"]  # fmt: skip
    assert cli.main(["insights", *args]) == 0
    summary = pd.read_csv(root / "summary.csv", index_col="version")
    return (root / "insights.md").read_text(), summary, root


def table_rows(markdown: str) -> list[list[str]]:
    section = markdown.split("## Performance Summary")[1].split("\n\n")[1]
    rows = [line.strip("|").split("|") for line in section.splitlines()[2:]]
    return [[cell.strip() for cell in row] for row in rows]


def test_performance_summary_matches_the_seed(insights):
    markdown, _, _ = insights
    rows = table_rows(markdown)
    assert [re.sub(r"[*†]", "", r[0]) for r in rows] == [
        "v12",
        "v13",
        "v10",
        "v11",
        "v7",
        "v8",
        "v9",
    ]
    assert [r[4].strip("*") for r in rows] == [
        "50.60°",
        "52.39°",
        "54.95°",
        "55.31°",
        "66.25°",
        "67.79°",
        "74.95°",
    ]
    assert [r[1] for r in rows] == ["100k", "100k", "50k", "50k", "10k", "10k", "10k"]
    assert [r[2] for r in rows] == ["4L×64F"] * 4 + ["3L×32F"] * 3
    assert [r[3] for r in rows] == ["angular"] * 4 + ["cosine", "angular", "focal_angular"]


def test_statuses_follow_the_documented_rules(insights):
    markdown, summary, _ = insights
    status = {re.sub(r"[*†]", "", r[0]): r[-1] for r in table_rows(markdown)}
    assert status["v12"] == "⭐ BEST · ⚠️ NaN issues"
    assert status["v13"] == "⚠️ NaN issues"
    assert {status[v] for v in ("v10", "v11", "v7", "v8")} == {"✅ Stable"}
    assert status["v9"] == "❌ Failed"
    assert "v9: 13 % worse than baseline v7" in markdown
    assert summary.loc["v12", "best"] and summary.loc["v12", "nan_issues"]


def test_derived_improvements_match_the_seed(insights):
    markdown, _, _ = insights
    assert "50.60° mean → **24% improvement** over v7 baseline (66.25°)" in markdown
    assert "54.95° mean → **17% improvement** over v7 baseline" in markdown
    assert "~67° mean (v7/v8)" in markdown
    assert "~55° mean (v10/v11) → **18% better**" in markdown
    assert "~51° mean (v12/v13) → **24% better**" in markdown
    assert "- Extrapolation to **200k**: **" in markdown


def test_imported_rows_say_what_they_lack(insights):
    markdown, summary, _ = insights
    assert "no 68 % containment, no intervals" in markdown
    assert summary["imported"].all() and not summary["has_predictions"].any()
    assert summary["q68_deg"].isna().all()
    assert "Not one test set" in markdown


def test_hyperopt_that_never_ran_is_loud(insights):
    markdown, _, _ = insights
    assert "**v11, v13 asked for a hyperparameter search that DID NOT RUN.**" in markdown


def test_stability_table_has_stop_best_and_nan_epochs(insights):
    markdown, _, _ = insights
    assert "| v13 | nan ⚠️ | 20 | 36 | 16 |" in markdown
    assert "| v7 | ok | — | 41 | 26 |" in markdown


def test_every_plot_is_written(insights):
    from edtrain.plots import PLOT_FILES

    _, _, root = insights
    assert sorted(p.name for p in (root / "plots").iterdir()) == sorted(PLOT_FILES)
