"""The predict command: test-set predictions and metrics per the contract."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from tiny_dataset import clusters, make_dataset, tiny_config

from edtrain import metrics, predict, symmetrize
from edtrain.dataset.reader import open_images
from edtrain.losses import KAPPA_FLOORS, head, output_size
from edtrain.model import build_model
from edtrain.splits import select_version

ARRAYS = {
    "test_predictions": (np.float32, (3,)),
    "test_true": (np.float32, (3,)),
    "key_hash": (np.uint64, ()),
    "event": (np.int64, ()),
    "match_id": (np.int64, ()),
    "energy_mev": (np.float32, ()),
    "nu_energy_mev": (np.float32, ()),
    "nu_dir": (np.float32, (3,)),
    "oracle_dir": (np.float32, (3,)),
}


def _reject_nan(token: str):
    raise ValueError(f"metrics.json must be strict JSON, found {token}")


def write_truth(dataset, truth_dir) -> None:
    """Truth parquets for file0 and file1 (file2 has none): every event, the sample's match_id
    as main match on even events only, an oracle about 5° off the label."""
    table = pd.read_parquet(dataset / "samples.parquet")
    table = table[table["basename"] != "file2"]
    truth = pd.DataFrame(
        {
            "basename": table["basename"],
            "event": table["event"],
            "main_match_id": np.where(table["event"] % 2 == 0, table["match_id"], -1),
            "oracle_dir_x": table["label_x"],
            "oracle_dir_y": table["label_y"] + np.tan(np.radians(5.0)),
            "oracle_dir_z": table["label_z"],
            "oracle_error_deg": 5.0,
        }
    )
    truth_dir.mkdir()
    for name, rows in truth.groupby("basename"):
        rows.to_parquet(truth_dir / f"{name}_truth.parquet", index=False)


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    dataset = make_dataset(root / "ds", n=200)
    write_truth(dataset, root / "truth")
    config = tiny_config(samples=50)
    (root / "config.json").write_text(json.dumps(config))
    model = build_model(config["model"], config["input"])
    model.save(root / "model.keras")
    (root / "training.json").write_text(json.dumps({"status": "ok"}))
    args = argparse.Namespace(
        dataset=dataset,
        config=root / "config.json",
        model=root / "model.keras",
        training=None,  # next to the model
        out_predictions=root / "v" / "predictions.npz",
        out_metrics=root / "v" / "metrics.json",
        truth=root / "truth",
    )
    assert predict.main(args) == 0
    return dataset, model, args


def test_predictions_cover_the_common_test_set(predicted) -> None:
    dataset, model, args = predicted
    table = pd.read_parquet(dataset / "samples.parquet")
    test = select_version(table["key_hash"], table["rank"], 50, 0.3).test
    saved = np.load(args.out_predictions)
    for name, (dtype, shape) in ARRAYS.items():
        assert saved[name].dtype == dtype and saved[name].shape == (len(test), *shape), name
    assert saved["basename"].shape == (len(test),)
    np.testing.assert_array_equal(saved["key_hash"], table["key_hash"].to_numpy()[test])
    labels = table[["label_x", "label_y", "label_z"]].to_numpy(np.float32)[test]
    np.testing.assert_array_equal(saved["test_true"], labels)
    images = open_images(dataset)[test]
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(saved["test_predictions"], expected, rtol=1e-5, atol=1e-6)


def test_metrics_are_the_summary_of_the_saved_predictions(predicted) -> None:
    _, _, args = predicted
    scores = json.loads(args.out_metrics.read_text(), parse_constant=_reject_nan)
    saved = np.load(args.out_predictions)
    errors = metrics.angular_error_deg(saved["test_predictions"], saved["test_true"])
    assert scores["version"] == "vtiny" and scores["test_set_hash"] == "test-0"
    expected = metrics.summarize(errors) | metrics.sign_agreement(
        saved["test_predictions"], saved["test_true"]
    )
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value), key
    bins = scores["by_energy"]
    assert len(bins) == len(metrics.ENERGY_BINS_MEV) - 1
    assert sum(b["n"] for b in bins) == int((saved["energy_mev"] < 70).sum())
    assert all(b["median_deg"] is None for b in bins if b["n"] == 0)


def test_a_failed_training_is_not_run_and_has_no_score(predicted, tmp_path) -> None:
    *_, ok = predicted
    (tmp_path / "training.json").write_text(json.dumps({"status": "failed"}))
    args = argparse.Namespace(
        **{**vars(ok), "model": tmp_path / "absent.keras", "training": tmp_path / "training.json"},
    )
    args.out_predictions, args.out_metrics = tmp_path / "p.npz", tmp_path / "m.json"
    assert predict.main(args) == 0
    saved, good = np.load(args.out_predictions), np.load(ok.out_predictions)
    assert np.isnan(saved["test_predictions"]).all()
    np.testing.assert_array_equal(saved["key_hash"], good["key_hash"])
    scores = json.loads(args.out_metrics.read_text(), parse_constant=_reject_nan)
    assert scores["training_status"] == "failed" and scores["mean_deg"] is None
    # the oracle is still scored; the version's statistics on its samples are not
    assert scores["oracle"]["oracle"]["q68_deg"] is not None
    assert scores["oracle"]["version"]["q68_deg"] is None and scores["oracle"]["q68_ratio"] is None


def test_the_oracle_is_joined_for_main_electrons_with_truth(predicted) -> None:
    *_, args = predicted
    saved = np.load(args.out_predictions)
    expected = (saved["basename"] != "file2") & (saved["event"] % 2 == 0)
    assert 0 < expected.sum() < len(expected)
    has = np.isfinite(saved["oracle_dir"]).all(axis=1)
    np.testing.assert_array_equal(has, expected)
    assert np.isnan(saved["oracle_dir"][~has]).all()
    oracle_errors = metrics.angular_error_deg(saved["oracle_dir"][has], saved["test_true"][has])
    assert oracle_errors.max() < 5.5 and oracle_errors.mean() > 1.0  # at most ~5° off


def test_metrics_score_the_oracle_and_the_version_on_the_same_samples(predicted) -> None:
    *_, args = predicted
    scores = json.loads(args.out_metrics.read_text(), parse_constant=_reject_nan)
    saved = np.load(args.out_predictions)
    has = np.isfinite(saved["oracle_dir"]).all(axis=1)
    block = scores["oracle"]
    assert block["n"] == has.sum() and block["fraction"] == pytest.approx(has.mean())
    pred, true = saved["test_predictions"][has], saved["test_true"][has]
    version = metrics.summarize(metrics.angular_error_deg(pred, true))
    assert block["version"]["q68_deg"] == pytest.approx(version["q68_deg"])
    assert 0 < block["oracle"]["q68_deg"] < 5.5
    assert block["q68_ratio"] == pytest.approx(version["q68_deg"] / block["oracle"]["q68_deg"])
    assert sum(b["n"] for b in block["by_energy"]) == has.sum()


def test_oracle_lookup_from_a_hand_made_truth_folder(tmp_path) -> None:
    truth = pd.DataFrame(
        {
            "basename": ["fA", "fA", "fB"],
            "event": [1, 2, 5],
            "main_match_id": [3, -1, 0],
            "oracle_dir_x": [1.0, 0.0, 0.0],
            "oracle_dir_y": [0.0, 1.0, 0.0],
            "oracle_dir_z": [0.0, 0.0, 1.0],
            "electron_dir_x": [1.0, 0.0, 0.0],  # present, not read
        }
    )
    for name, rows in truth.groupby("basename"):
        rows.to_parquet(tmp_path / f"{name}_truth.parquet", index=False)
    # main electron; another match of the same event; event without a main match; event not
    # in truth; main electron of another file; a file without truth
    basename = np.array(["fA_bg_matched", "fA_bg_matched", "fA_bg_matched", "fA_bg_matched",
                         "fB_bg_matched", "fC_bg_matched"])  # fmt: skip
    event = np.array([1, 1, 2, 9, 5, 1])
    match_id = np.array([3, 4, 0, 0, 0, 1])
    oracle = predict.oracle_directions(tmp_path, basename, event, match_id)
    assert oracle.dtype == np.float32 and oracle.shape == (6, 3)
    np.testing.assert_array_equal(oracle[0], [1, 0, 0])
    np.testing.assert_array_equal(oracle[4], [0, 0, 1])
    assert np.isnan(oracle[[1, 2, 3, 5]]).all()


@pytest.mark.parametrize(
    ("status", "loss"), [("ok", "vmf"), ("failed", "vmf"), ("ok", "angular_vmf")]
)
def test_a_vmf_version_saves_and_checks_its_kappa(predicted, tmp_path, status, loss) -> None:
    """κ as the version's loss defines it (its floor), calibrated on validation samples."""
    dataset, _, ok = predicted
    config = {**json.loads(ok.config.read_text()), "loss": loss}
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = build_model(config["model"], config["input"], output_size(loss))
    model.save(tmp_path / "model.keras")
    (tmp_path / "training.json").write_text(json.dumps({"status": status}))
    args = argparse.Namespace(**{**vars(ok), "config": tmp_path / "config.json",
                                 "model": tmp_path / "model.keras"})  # fmt: skip
    args.out_predictions, args.out_metrics = tmp_path / "p.npz", tmp_path / "m.json"
    assert predict.main(args) == 0
    saved = np.load(args.out_predictions)
    block = json.loads(args.out_metrics.read_text(), parse_constant=_reject_nan)["uncertainty"]
    if status == "failed":  # no finite model: no κ to check
        assert np.isnan(saved["kappa"]).all() and block["cover_68"] is None
        assert block["median_kappa"] is None and block["q68_deg_top50"] is None
        return
    table = pd.read_parquet(dataset / "samples.parquet")
    split = select_version(table["key_hash"], table["rank"], 50, 0.3)
    raw = model.predict(open_images(dataset)[split.test], verbose=0)
    np.testing.assert_allclose(saved["test_predictions"], raw[:, :3], rtol=1e-5, atol=1e-6)
    kappa = KAPPA_FLOORS[loss] + np.log1p(np.exp(raw[:, 3].astype(np.float64)))
    np.testing.assert_allclose(saved["kappa_raw"], kappa, rtol=1e-5)
    # calibrated on the validation rows: their 68 % cones of scale·κ hold 68 % of them
    val = model.predict(open_images(dataset)[split.val], verbose=0).astype(np.float64)
    val_labels = table[["label_x", "label_y", "label_z"]].to_numpy()[split.val]
    val_errors = metrics.angular_error_deg(val[:, :3], val_labels)
    val_energy = table["energy_mev"].to_numpy()[split.val]
    fitted = metrics.KappaCalibration.fit(
        val_errors, KAPPA_FLOORS[loss] + np.logaddexp(0, val[:, 3]), val_energy
    )
    np.testing.assert_allclose(saved["kappa_scale"], fitted.scale, rtol=1e-4)
    np.testing.assert_allclose(saved["kappa_scale_energy_mev"], fitted.energy_mev)
    assert block["kappa_scale"] == pytest.approx(saved["kappa_scale"].tolist())
    calibrated = fitted(kappa, saved["energy_mev"])
    np.testing.assert_allclose(saved["kappa"], calibrated, rtol=1e-4)
    errors = metrics.angular_error_deg(saved["test_predictions"], saved["test_true"])
    expected = metrics.uncertainty(errors, calibrated, saved["energy_mev"])
    assert block["cover_68"] == pytest.approx(expected["cover_68"])
    assert block["q68_deg_top50"] == pytest.approx(expected["q68_deg_top50"])


def _predict_version(predicted, folder, loss: str, dataset=None, **input_settings):
    """predict.main on the tiny dataset (or ``dataset``, with its keys) for a fresh model
    with ``loss``'s head; the model, what was saved and the test set's images."""
    tiny, _, ok = predicted
    dataset = dataset or tiny
    config = json.loads(ok.config.read_text())
    config |= {"loss": loss, "input": {**config["input"], **input_settings}}
    (folder / "config.json").write_text(json.dumps(config))
    model = build_model(config["model"], config["input"], output_size(loss), head(loss))
    model.save(folder / "model.keras")
    (folder / "training.json").write_text(json.dumps({"status": "ok"}))
    args = argparse.Namespace(**{**vars(ok), "config": folder / "config.json",
                                 "model": folder / "model.keras", "dataset": dataset})  # fmt: skip
    args.out_predictions, args.out_metrics = folder / "p.npz", folder / "m.json"
    assert predict.main(args) == 0
    table = pd.read_parquet(dataset / "samples.parquet")
    split = select_version(table["key_hash"], table["rank"], 50, 0.3)
    return model, np.load(args.out_predictions), open_images(dataset)[split.test]


def test_an_axis_and_sense_version_saves_its_sense_probability(predicted, tmp_path) -> None:
    """The saved direction is the axis turned to its logit's sign, with σ(|logit|) beside it."""
    model, saved, images = _predict_version(predicted, tmp_path, "axial_sense")
    raw = model.predict(images, verbose=0)
    np.testing.assert_allclose(saved["test_predictions"], raw[:, :3], rtol=1e-5, atol=1e-6)
    expected = 1 / (1 + np.exp(-np.abs(raw[:, 3])))
    np.testing.assert_allclose(saved["sense_probability"], expected, rtol=1e-6)


def test_test_augment_saves_two_readings_combined(predicted, tmp_path) -> None:
    """x_rotation: each test cluster read as it is and rotated (edtrain.symmetrize)."""
    dataset = make_dataset(tmp_path / "ds", n=200)  # the tiny dataset's keys, its own images
    parts = sorted((dataset / "images").glob("*.npy"))
    images = clusters(np.random.default_rng(1), 200)
    for part, rows in zip(parts, np.split(images.astype(np.float16), [100]), strict=True):
        np.save(part, rows)
    model, saved, test = _predict_version(
        predicted, tmp_path, "axial_direction", dataset, test_augment="x_rotation"
    )
    combined = symmetrize.predict(model, [test], "axis_by_direction")[:, :3]
    np.testing.assert_allclose(saved["test_predictions"], combined, rtol=1e-5, atol=1e-6)
    once = model.predict(test, verbose=0)[:, :3]
    assert np.abs(saved["test_predictions"] - once).max() > 1e-2
