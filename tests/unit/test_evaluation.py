"""The predict command: test-set predictions and metrics per the contract."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from tiny_dataset import make_dataset, tiny_config

from edtrain import evaluation, metrics
from edtrain.dataset.reader import open_images
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
}


def _reject_nan(token: str):
    raise ValueError(f"metrics.json must be strict JSON, found {token}")


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    dataset = make_dataset(root / "ds", n=200)
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
    )
    assert evaluation.main(args) == 0
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
    for key, value in metrics.summarize(errors).items():
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
    assert evaluation.main(args) == 0
    saved, good = np.load(args.out_predictions), np.load(ok.out_predictions)
    assert np.isnan(saved["test_predictions"]).all()
    np.testing.assert_array_equal(saved["key_hash"], good["key_hash"])
    scores = json.loads(args.out_metrics.read_text(), parse_constant=_reject_nan)
    assert scores["training_status"] == "failed" and scores["mean_deg"] is None
