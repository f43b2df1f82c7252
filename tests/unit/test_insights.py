"""insights on versions trained by edtrain: saved predictions on one common test set.

The fixture writes the version contract files (docs/architecture.md) for four versions with
known error levels, one of which crashed, and runs the `insights` command on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from edtrain import cli
from edtrain.insights import closing_sections, markdown
from edtrain.insights.compare import compare, controlled_pairs
from edtrain.insights.findings import loss_groups, scaling_group
from edtrain.insights.runs import Run
from edtrain.metrics import ENERGY_BINS_MEV
from edtrain.plots import PLOT_FILES
from edtrain.stats import fit_power_law

N_TEST = 4000
TEST_SET_HASH = "c0ffee"
ORACLE_MISSING = 0.2  # share of test samples without an oracle direction
FRAMES = {"a1": "detector", "a2": "detector", "a3": "detector", "a4": "face"}
# version: samples, filters, loss, direction noise, flip fraction, training status
VERSIONS = {
    "a1": (2000, 8, "cosine", 0.9, 0.25, "ok"),
    "a2": (2000, 8, "angular", 0.9, 0.25, "ok"),
    "a3": (8000, 8, "angular", 0.5, 0.12, "nan"),
    "a4": (8000, 8, "angular", 0.5, 0.12, "failed"),
}


def unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def common_test_set(rng: np.random.Generator, nu_share: float) -> dict[str, np.ndarray]:
    """Test samples of which ``nu_share`` carry a neutrino direction."""
    nu = unit_rows(rng.normal(size=(N_TEST, 3)))
    true = unit_rows(nu + 0.4 * rng.normal(size=(N_TEST, 3)))
    oracle = unit_rows(true + 0.1 * rng.normal(size=(N_TEST, 3)))
    oracle[rng.random(N_TEST) < ORACLE_MISSING] = np.nan  # not the main electron of its event
    return {
        "test_true": true.astype(np.float32),
        "oracle_dir": oracle.astype(np.float32),
        "key_hash": rng.permutation(N_TEST).astype(np.uint64),
        "energy_mev": rng.uniform(2, 70, N_TEST).astype(np.float32),
        "nu_dir": np.where(np.arange(N_TEST)[:, None] < nu_share * N_TEST, nu, np.nan).astype(
            np.float32
        ),
    }


def write_version(folder: Path, name: str, common: dict, rng: np.random.Generator) -> None:
    samples, filters, loss, noise, flips, status = VERSIONS[name]
    folder.mkdir(parents=True)
    config = {
        "name": name, "samples": samples, "val_fraction": 0.3, "loss": loss, "max_epochs": 30,
        "model": {"conv_layers": 2, "filters": filters, "kernel_size": 3, "filter_growth": 2.0,
                  "batch_norm": True, "dense_layers": 1, "dense_units": 16, "dropout": 0.3},
        "hyperopt": {"enabled": name == "a2", "ran": False}, "dataset": "results/datasets/t",
        "input": {"normalization": "scale", "scale": 100.0, "frame": FRAMES[name]},
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    epochs = 12
    history = pd.DataFrame(
        {"epoch": range(epochs), "loss": np.linspace(1.4, 0.9, epochs),
         "val_loss": np.linspace(1.5, 1.0, epochs), "learning_rate": 1e-3}
    )  # fmt: skip
    if status == "nan":
        history.loc[8:, ["loss", "val_loss"]] = np.nan
    history.to_csv(folder / "history.csv", index=False)
    training = {"status": status, "epochs_run": epochs, "best_epoch": 8, "n_train": samples,
                "n_val": 0, "nan_epoch": 9 if status == "nan" else None,
                "best_val_loss": 1.0, "dataset_hash": "d1"}  # fmt: skip
    if name != "a1":  # a1 as trained before provenance was recorded
        packages = {"keras": "3.15.1", "numpy": "2.4.6"}
        training |= {"edtrain_version": "0.1.0", "git_commit": f"{name}cafe" * 8 + "-dirty",
                     "python": "3.11.7", "packages": packages}  # fmt: skip
    (folder / "training.json").write_text(json.dumps(training))
    true = common["test_true"].astype(np.float64)
    pred = true + noise * rng.normal(size=true.shape)
    pred[rng.random(N_TEST) < flips] *= -1
    if status == "failed":  # as `edtrain predict` writes them for a failed training
        pred[:] = np.nan
    np.savez(folder / "predictions.npz", test_predictions=pred.astype(np.float32), **common)
    (folder / "metrics.json").write_text(json.dumps({"test_set_hash": TEST_SET_HASH}))


def run_insights(root: Path, nu_share: float = 1.0, extra: tuple[str, ...] = ()) -> Path:
    rng = np.random.default_rng(3)
    common = common_test_set(rng, nu_share)
    for name in VERSIONS:
        write_version(root / "results" / name, name, common, rng)
    out = root / "out"
    args = ["insights", "--results-dir", str(root / "results"), "--versions", *VERSIONS,
            "--out-md", str(out / "insights.md"), "--out-csv", str(out / "summary.csv"),
            "--plots-dir", str(out / "plots"), "--energy-csv", str(out / "energy.csv"),
            "--bootstrap", "200", "--toys", "300", *extra]  # fmt: skip
    assert cli.main(args) == 0
    return out


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_insights(tmp_path_factory.mktemp("new"))


def test_summary_has_intervals_around_each_statistic(out):
    summary = pd.read_csv(out / "summary.csv", index_col="version")
    order = list(summary.index)
    assert order[0] == "a3" and set(order[1:3]) == {"a1", "a2"} and order[3] == "a4"
    assert summary["mean_deg"].iloc[:3].is_monotonic_increasing
    scored = summary.loc[["a1", "a2", "a3"]]
    for stat in ("mean", "median", "q68"):
        assert (scored[f"{stat}_lo"] < scored[f"{stat}_deg"]).all()
        assert (scored[f"{stat}_deg"] < scored[f"{stat}_hi"]).all()
    assert summary.loc["a4", ["mean_deg", "mean_lo", "q68_deg"]].isna().all()


def test_crashed_version_is_failed_not_fatal(out):
    markdown = (out / "insights.md").read_text()
    assert "| a4 | 8k | 2L×8F | angular | — | — | — | ❌ Failed |" in markdown
    assert "❌ a4: crashed" in markdown


def test_best_and_nan_can_both_apply(out):
    summary = pd.read_csv(out / "summary.csv", index_col="version")
    assert summary.loc["a3", "status"] == "⭐ BEST · ⚠️ NaN issues"
    assert summary.loc["a1", "status"] == "✅ Stable"


def test_paired_comparison_on_the_common_test_set(out):
    markdown = (out / "insights.md").read_text()
    # a1 and a2 draw from the same error model: a repeat-like loss pair, no real difference
    row = next(line for line in markdown.splitlines() if line.startswith("| a1 → a2 |"))
    assert "| loss | cosine → angular |" in row and "| not significant |" in row
    row = next(line for line in markdown.splitlines() if line.startswith("| a2 → a3 |"))
    assert "| samples | 2k → 8k |" in row and "| significant |" in row
    assert "Not one test set" not in markdown


def test_pointing_against_the_neutrino_with_a_floor(out):
    summary = pd.read_csv(out / "summary.csv", index_col="version")
    assert (summary.loc[["a1", "a3"], "burst_reference"] == "neutrino").all()
    burst = summary["burst_q68_deg"]
    assert 0 < summary.loc["a3", "burst_floor_q68_deg"] < burst["a3"] < burst["a1"]


def test_pointing_falls_back_to_the_electron_direction(tmp_path):
    out = run_insights(tmp_path, nu_share=0.0)
    summary = pd.read_csv(out / "summary.csv", index_col="version")
    assert (summary.loc[["a1", "a2", "a3"], "burst_reference"] == "electron").all()
    assert (summary.loc[["a1", "a2", "a3"], "burst_floor_q68_deg"] == 0).all()
    assert "Measured against the electron direction" in (out / "insights.md").read_text()


def test_the_report_says_what_the_dataset_holds_and_what_was_skipped(tmp_path, monkeypatch):
    """Mixed 14/18-column inputs: counts, skips by reason, and the test samples (and burst
    events) that have a neutrino direction."""
    monkeypatch.chdir(tmp_path)
    dataset = tmp_path / "results" / "datasets" / "t"  # the versions' config "dataset"
    dataset.mkdir(parents=True)
    counts = {"basenames": 3, "x_rows": 90, "main_track": 40, "after_marley": 40, "after_es": 30,
              "matched": 25, "samples": 24, "unmatched": 5}  # fmt: skip
    manifest = {
        "inputs": [{"path": f"f{i}.npz", "metadata_width": w} for i, w in enumerate([14, 18])],
        "counts": counts, "cuts": {"energy_min": None, "energy_max": None},
        "samples": 24, "test_size": 4,
        "skipped_files": [{"path": "bad.npz", "reason": "unreadable npz (truncated)",
                           "basename": "bad"}],
        "skipped_rows": [{"path": "f0.npz", "basename": "f0", "event": e, "match_id": 1,
                          "reason": "non-finite pixels in the X plane"} for e in (1, 2)],
    }  # fmt: skip
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    nu = np.where(np.arange(24)[:, None] < 23, 0.6, np.nan)  # 3 of the 4 test rows have one
    pd.DataFrame(
        {"split": ["pool"] * 20 + ["test"] * 4, "nu_dir_x": nu[:, 0], "nu_dir_y": nu[:, 0],
         "nu_dir_z": nu[:, 0]}
    ).to_parquet(dataset / "samples.parquet")  # fmt: skip
    markdown = (run_insights(tmp_path, nu_share=0.5) / "insights.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| results/datasets/t"))
    assert "| a1, a2, a3, a4 | 2 (14/18 columns) |" in row
    assert "| 3 basenames → 90 X rows → 40 main-track → 40 MARLEY → 30 ES → 25 matched" in row
    assert "| 4 of 24 | 3 of 4 | 1 × unreadable npz | 2 × non-finite pixels in the X plane |" in row
    burst = next(line for line in markdown.splitlines() if line.startswith("| a1 | neutrino"))
    assert f"| {N_TEST // 2} of {N_TEST} |" in burst
    assert "only n of the N scored test events carry a neutrino direction" in markdown


def test_energy_table_uses_the_predecessor_bins(out):
    energy = pd.read_csv(out / "energy.csv")
    a1 = energy[energy["version"] == "a1"]
    assert a1["e_lo_mev"].tolist() == ENERGY_BINS_MEV[:-1].tolist()
    assert a1["e_hi_mev"].tolist() == ENERGY_BINS_MEV[1:].tolist()
    assert a1["n"].sum() == N_TEST
    assert set(energy["version"]) == {"a1", "a2", "a3"}
    assert set(energy["energy"]) == {"cluster energy from ADC (metadata column 10)"}


def test_hyperopt_request_that_did_not_run_is_flagged(out):
    assert (
        "**a2 asked for a hyperparameter search that DID NOT RUN.**"
        in (out / "insights.md").read_text()
    )


def test_all_plots_written_and_not_blank(out):
    from matplotlib.image import imread

    for name in PLOT_FILES:
        image = imread(out / "plots" / name)
        assert image.shape[0] > 200 and image.std() > 0.05, name


def test_hyperopt_cells_say_what_ran_and_what_was_asked() -> None:
    from edtrain.insights.key_insights import params_cell, trials_cell

    asked = {"enabled": True, "ran": False, "rounds": 4, "trials_per_round": 5}
    assert trials_cell(asked) == "20 requested"
    ran = {**asked, "ran": True, "n_trials": 20, "n_failed": 2}
    assert trials_cell(ran) == "20 (2 failed)"
    assert trials_cell({"enabled": False}) == "—"
    assert params_cell({"model.filters": 64, "optimizer.learning_rate": 0.000123}) == (
        "model.filters = 64, optimizer.learning_rate = 0.000123"
    )


def test_diagnostics_per_version_with_the_oracle_on_the_same_samples(out):
    summary = pd.read_csv(out / "summary.csv", index_col="version")
    scored = summary.loc[["a1", "a2", "a3"]]
    # a1/a2 flip a quarter of their predictions, a3 an eighth; a reversed direction with the
    # axis right counts as a flip only if the noise left it within 30° of the axis
    assert (scored.loc[["a1", "a2"], "flip_frac"] > scored.loc["a3", "flip_frac"]).all()
    assert (scored["flip_frac"] < scored["frac_over_90"]).all()
    signs = scored[["sign_agree_x", "sign_agree_y", "sign_agree_z"]]
    assert ((signs > 0.5) & (signs < 1)).all().all()
    n = scored["oracle_n"]
    assert (n == n.iloc[0]).all() and abs(n.iloc[0] / N_TEST - (1 - ORACLE_MISSING)) < 0.03
    assert (scored["oracle_q68_deg"] == scored["oracle_q68_deg"].iloc[0]).all()
    assert (scored["oracle_q68_deg"] < scored["oracle_version_q68_deg"]).all()
    np.testing.assert_allclose(
        scored["oracle_q68_ratio"], scored["oracle_version_q68_deg"] / scored["oracle_q68_deg"]
    )
    assert np.isnan(summary.loc["a4", "oracle_version_q68_deg"])
    assert summary.loc["a4", "frame"] == "face"

    markdown = (out / "insights.md").read_text()
    section = markdown.split("## Accuracy Diagnostics")[1].split("\n---")[0]
    assert "| Version | Frame | 68 % | Folded 68 % | Flips | Sign agreement x / y / z |" in section
    row = next(line for line in section.splitlines() if line.startswith("| a2 |"))
    a2 = summary.loc["a2"]
    assert f"| detector | {a2['q68_deg']:.2f}° | {a2['folded_q68_deg']:.2f}° |" in row
    assert f"| {a2['oracle_q68_deg']:.2f}° | {a2['oracle_version_q68_deg']:.2f}° |" in row
    assert f"| {a2['oracle_q68_ratio']:.2f} |" in row
    assert "| a4 |" not in section  # no score


def test_energy_table_has_the_oracle_per_bin(out):
    energy = pd.read_csv(out / "energy.csv")
    a1 = energy[energy["version"] == "a1"]
    assert (
        a1["oracle_n"].sum()
        == pd.read_csv(out / "summary.csv", index_col="version").loc["a1", "oracle_n"]
    )
    assert (a1["oracle_q68_deg"] < a1["q68_deg"]).all()


MEANS = {"v7": 60.0, "v14": 58.0, "v15": 50.0, "v16": 49.0}


def test_a_loss_group_holds_one_label_frame() -> None:
    """v14 (detector frame) beside v15 and v16 (face frame, two losses) is no loss comparison:
    the demo once grouped them, and with v14 the best the conclusion looked for a v14 → v16
    comparison that controlled_pairs rightly never made."""
    model = {"conv_layers": 4, "filters": 64}

    def run(name: str, frame: str, loss: str) -> Run:
        config = {"model": model, "samples": 100, "loss": loss, "input": {"frame": frame}}
        return Run(name, config=config, training={"n_train": 70, "n_val": 30})

    runs = [run("v14", "detector", "angular"), run("v15", "face", "angular")]
    runs.append(run("v16", "face", "vmf"))
    table = pd.DataFrame({"mean_deg": [64.9, 65.4, 66.0]}, index=["v14", "v15", "v16"])
    assert loss_groups(runs, table) == [["v15", "v16"]]


def test_the_label_frame_is_a_primary_factor() -> None:
    """v14 → v15 (same recipe, other frame) is a controlled comparison of the frame; a pair
    differing in frame and loss is none; configs without a frame count as detector."""
    model = {"conv_layers": 4, "filters": 64}

    def run(name: str, frame: str | None, loss: str = "angular") -> Run:
        config = {"model": model, "samples": 100, "loss": loss, "seed": int(name[1:])}
        if frame:
            config["input"] = {"normalization": "none", "frame": frame}
        return Run(name, config=config, training={"n_train": 70, "n_val": 30})

    v14, v15, old = run("v14", "detector"), run("v15", "face"), run("v7", None)
    pairs = controlled_pairs([old, v14, v15, run("v16", "face", "cosine")], MEANS, 10, 0)
    by_pair = {(c.reference, c.version): c for c in pairs}
    assert by_pair[("v14", "v15")].factor == "frame"
    assert by_pair[("v14", "v15")].change == "detector frame → face frame"
    assert by_pair[("v14", "v15")].also == []  # input.frame is not listed twice
    assert by_pair[("v7", "v14")].factor is None  # a repeat: no frame means detector
    assert ("v14", "v16") not in by_pair  # frame and loss differ
    tuned = run("v17", "detector")
    tuned.config["optimizer"] = {"type": "adamw"}
    means = MEANS | {"v17": 57.0, "v18": 58.5}
    again, recipe = controlled_pairs([v14, run("v18", "detector"), tuned], means, 10, 0)[:2]
    assert (again.factor, again.change, again.also) == (None, "repeat", [])
    assert (recipe.factor, recipe.change) == (None, "training settings")
    assert recipe.also == ["optimizer.type None→adamw"]


def test_a_vmf_version_has_its_cones_checked(tmp_path):
    """Predictions whose length κ is the true concentration of their scatter: about 68 % and
    90 % of the test electrons lie inside their predicted cones, and the section says so."""
    rng = np.random.default_rng(5)
    common = common_test_set(rng, nu_share=1.0)
    folder = tmp_path / "results" / "a1"
    write_version(folder, "a1", common, rng)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "loss": "vmf"}))
    true = common["test_true"].astype(np.float64)
    kappa = 10.0 ** rng.uniform(0.5, 2.5, N_TEST)
    u = rng.random(N_TEST)
    cos = 1.0 + np.log(u + (1.0 - u) * np.exp(-2.0 * kappa)) / kappa
    side = unit_rows(np.cross(true, rng.normal(size=true.shape)))
    pred = kappa[:, None] * (cos[:, None] * true + np.sqrt(1 - cos**2)[:, None] * side)
    np.savez(folder / "predictions.npz", test_predictions=pred, kappa=kappa, **common)
    out = tmp_path / "out"
    args = ["insights", "--results-dir", str(tmp_path / "results"), "--versions", "a1",
            "--out-md", str(out / "insights.md"), "--out-csv", str(out / "summary.csv"),
            "--plots-dir", str(out / "plots"), "--bootstrap", "50", "--toys", "50"]  # fmt: skip
    assert cli.main(args) == 0
    section = (out / "insights.md").read_text().split("## Per-Event Uncertainty")[1]
    row = next(line for line in section.splitlines() if line.startswith("| a1 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "1.00"  # no kappa_scale saved: κ as the network gave it
    inside_68, inside_90 = (float(cell.removesuffix(" %")) for cell in cells[3:5])
    assert abs(inside_68 - 68) < 3 and abs(inside_90 - 90) < 2, row
    all_q68, top80, top50 = (float(cell.removesuffix("°")) for cell in cells[5:8])
    assert top50 < top80 < all_q68, row


def test_a_scaled_version_says_which_scaling() -> None:
    row = pd.Series({"samples": 1000.0, "samples_unscaled": 100000.0, "scaling": "test"})
    assert markdown.samples_cell(row) == "1k (test of 100k)"
    assert markdown.samples_cell(row.drop(["samples_unscaled", "scaling"])) == "1k"


def test_each_version_names_its_code_and_libraries(out):
    notes = (out / "insights.md").read_text().split("### Dataset, test-set and code identity")[1]
    rows = {
        line.split("|")[1].strip(): line for line in notes.splitlines() if line.startswith("| a")
    }
    assert "| 0.1.0 | a2cafea2cafe-dirty |" in rows["a2"] and "| — | — |" in rows["a1"]
    packages = next(line for line in notes.splitlines() if line.startswith("Trained with"))
    assert "keras 3.15.1" in packages and "Python 3.11.7" in packages and "a1" not in packages


@pytest.mark.parametrize("best_measured", [40.0, 70.0])
def test_no_recommendation_promises_worse_than_the_best_measured(best_measured) -> None:
    """A pooled fit can extrapolate above a version already trained (the fit's points are
    means over architectures): the size recommendation appears only below the best one."""
    sizes = np.array([1000.0, 2000.0, 4000.0, 8000.0])
    fit = fit_power_law(sizes, 100.0 * sizes**-0.05 * np.array([1.0, 1.001, 0.999, 1.0]))
    names = ["b1", "b2", "b3", "b4", "b5"]
    table = pd.DataFrame(
        {"mean_deg": [*(100.0 * sizes**-0.05), best_measured], "failed": "", "best": False,
         "nan_issues": False, "has_predictions": True, "samples": [*sizes, 500.0]},
        index=names,
    )  # fmt: skip
    report = SimpleNamespace(
        table=table, fit=fit, fit_versions=names[:4], next_samples=16000, runs=[]
    )
    expected, sigma = fit.predict(16000)
    lines = "\n".join(closing_sections.recommendations(report))
    promised = "Train b4's recipe at 16k samples" in lines
    assert promised == (float(expected + sigma) < best_measured) == (best_measured == 70.0)


def test_the_scaling_fit_pools_one_architecture_loss_and_frame_only(out) -> None:
    """Three versions of one recipe at two sizes fit; other architectures never join them."""

    def run(name: str, filters: int, samples: int) -> Run:
        config = {"model": {"conv_layers": 2, "filters": filters}, "loss": "angular"}
        return Run(name, config=config, training={"n_train": samples, "n_val": 0})

    runs = [run("s1", 8, 1000), run("s2", 8, 2000), run("w1", 16, 4000), run("s3", 8, 4000)]
    table = pd.DataFrame(
        {"mean_deg": [60.0, 55.0, 40.0, 50.0], "failed": "", "samples": [1000, 2000, 4000, 4000]},
        index=[r.name for r in runs],
    )
    assert scaling_group(runs, table) == ["s1", "s2", "s3"]
    assert scaling_group(runs[:3], table) == []  # two of the recipe: no fit
    # the fixture's angular/detector versions are a2 and a3 only (a4 crashed): no fit at all
    assert (
        "no scaling fit: it needs three versions of one architecture"
        in (out / "insights.md").read_text()
    )


def test_the_architecture_names_what_changes_the_network() -> None:
    """A crop, plane supervision and a shared induction branch are other architectures (they
    never join another's scaling fit); the predecessor's keeps its bare name, the resnet
    family says so."""
    model = {"conv_layers": 4, "filters": 64}
    cropped = {**model, "crop": [64, 16], "plane_supervision": 0.5}
    neutral = {**model, "crop": None, "plane_supervision": 0.0, "shared_induction": False}
    names = [
        Run("a", config={"model": m}).architecture
        for m in (model, neutral, cropped, {**cropped, "shared_induction": True},
                  {**model, "type": "resnet"})
    ]  # fmt: skip
    assert names == [
        "4L×64F",
        "4L×64F",
        "4L×64F on 64×16, plane-supervised",
        "4L×64F on 64×16, plane-supervised, U and V shared",
        "ResNet 4L×64F",
    ]


def test_a_network_change_its_architecture_label_does_not_name_is_spelt_out() -> None:
    """v29 → v30 changes only the dense head's dropout: the comparison says so, rather than
    an architecture "changing" into the same label."""
    model = {"conv_layers": 4, "filters": 64, "dropout": 0.3}
    before = Run("a", config={"model": model, "loss": "angular"})
    after = Run("b", config={"model": {**model, "dropout": 0.1}, "loss": "angular"})
    change = compare(after, before, {"a": 50.0, "b": 48.0}, n_boot=10, seed=0)
    assert (change.factor, change.change) == ("architecture", "model.dropout 0.3→0.1")
    wider = Run("c", config={"model": {**model, "filters": 128}, "loss": "angular"})
    assert compare(wider, before, {"a": 50.0, "c": 48.0}, 10, 0).change == "4L×64F → 4L×128F"
