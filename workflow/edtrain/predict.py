"""The ``predict`` command: a version's model on the common test set, saved and scored.

Every version is scored on the same test samples (``select_version(...).test``); the
predictions are saved so any later statistic (68 % containment, per-energy bins, flips) can be
recomputed without rerunning the network. For a synthetic production (``--truth``) each
sample also gets the oracle direction of its event, so the oracle is scored on the same samples.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

# Importing these registers the custom layers, losses and metrics a model.keras names.
import edtrain.epoch_metrics
import edtrain.model  # noqa: F401
from edtrain import metrics, symmetrize
from edtrain.batch_stream import ImageBatches, open_dataset
from edtrain.dataset.reader import MANIFEST
from edtrain.frame import reflect
from edtrain.losses import (
    concentration,
    head,
    output_size,
    predicts_kappa,
    predicts_sense,
    sense_probability,
)
from edtrain.splits import select_version
from edtrain.version_files import RECORD

log = logging.getLogger(__name__)

PREDICTION_BATCH = 256
# validation samples the κ calibration of a vmf version is fitted on (the first of its split)
CALIBRATION_SAMPLES = 20_000
NU_DIR_COLUMNS = ["nu_dir_x", "nu_dir_y", "nu_dir_z"]
ORACLE_COLUMNS = ["oracle_dir_x", "oracle_dir_y", "oracle_dir_z"]
TRUTH_COLUMNS = ["basename", "event", "main_match_id", *ORACLE_COLUMNS]
# A sample's basename is its plane files' prefix, `<file>_bg_matched`; the truth parquet of the
# synthetic production (edtrain.simulation.simulate) is named and keyed by `<file>`.
MATCHED_SUFFIX = "_bg_matched"
TABLE_COLUMNS = [
    "key_hash",
    "rank",
    "basename",
    "event",
    "match_id",
    "label_x",
    "label_y",
    "label_z",
    "energy_mev",
    "nu_energy_mev",
    "drift_side",
    *NU_DIR_COLUMNS,
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, type=Path, help="assembled dataset directory")
    parser.add_argument("--config", required=True, type=Path, help="resolved version config.json")
    parser.add_argument("--model", required=True, type=Path, help="the version's model.keras")
    parser.add_argument(
        "--training", type=Path, help="the version's training.json (default: next to --model)"
    )
    parser.add_argument("--out-predictions", required=True, type=Path, help="predictions.npz")
    parser.add_argument("--out-metrics", required=True, type=Path, help="metrics.json")
    parser.add_argument(
        "--truth",
        type=Path,
        help="truth folder of a synthetic production: also save and score the oracle",
    )


def main(args: argparse.Namespace) -> int:
    config = json.loads(args.config.read_text())
    record = json.loads((args.training or args.model.with_name(RECORD)).read_text())
    predictions = predict_test_set(
        args.dataset,
        config["samples"],
        config["val_fraction"],
        args.model,
        frame=config["input"]["frame"],
        trained=record["status"] != "failed",
        loss=config["loss"],
        test_augment=config["input"].get("test_augment", "none"),
    )
    if args.truth:
        predictions["oracle_dir"] = oracle_directions(
            args.truth, predictions["basename"], predictions["event"], predictions["match_id"]
        )
    args.out_predictions.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out_predictions, **predictions)
    manifest = json.loads((args.dataset / MANIFEST).read_text())
    scores = score(predictions, config["name"], manifest["test_set_hash"])
    scores["training_status"] = record["status"]
    args.out_metrics.parent.mkdir(parents=True, exist_ok=True)
    args.out_metrics.write_text(json.dumps(scores, indent=2) + "\n")
    return 0


def predict_test_set(
    dataset_dir: Path,
    samples: int,
    val_fraction: float,
    model_path: Path,
    frame: str = "detector",
    trained: bool = True,
    loss: str = "angular",
    test_augment: str = "none",
) -> dict[str, np.ndarray]:
    """The predictions.npz arrays: predictions, truth and sample keys of the common test set.

    The network answers in its label ``frame`` (``edtrain.frame``); predictions are mapped
    back to the detector frame, so versions trained in different frames compare directly.
    A version whose training failed (``trained`` False: no finite model) is not run; its
    predictions are NaN, so every statistic of it is undefined rather than made up. A version
    trained with a κ-predicting ``loss`` (``losses.predicts_kappa``) also gets ``kappa``, the
    concentrations (``losses.concentration``) calibrated on its validation samples
    per cluster energy (``calibrated_kappa``), with ``kappa_raw`` and the calibration
    (``kappa_scale`` at ``kappa_scale_energy_mev``). One trained with a head–tail output
    (``losses.predicts_sense``) gets ``sense_probability``: how likely its sense is right.
    With ``test_augment`` x_rotation each cluster is also read rotated (``edtrain.symmetrize``).
    """
    data = open_dataset(dataset_dir, columns=TABLE_COLUMNS)
    table = data.samples
    selection = select_version(
        table["key_hash"].to_numpy(), table["rank"].to_numpy(), samples, val_fraction
    )
    network = keras.saving.load_model(model_path, compile=False) if trained else None
    rows = selection.test
    predicted = _run(network, data, rows, output_size(loss), test_augment, head(loss))
    test = table.iloc[rows]
    drift_side = test["drift_side"].to_numpy(np.int8)
    uncertainty: dict[str, np.ndarray] = {}
    if predicts_kappa(loss):
        val = selection.val[:CALIBRATION_SAMPLES]
        val_raw = _run(network, data, val, output_size(loss), test_augment, head(loss))
        val_side = table["drift_side"].to_numpy(np.int8)[val]
        val_pred = reflect(val_raw[:, :3], val_side, frame)
        val_errors = metrics.angular_error_deg(val_pred, data.labels[val])
        energy = table["energy_mev"].to_numpy(np.float64)
        uncertainty = calibrated_kappa(
            predicted, val_raw, val_errors, energy[rows], energy[val], loss
        )
    if predicts_sense(loss):
        uncertainty["sense_probability"] = np.asarray(
            keras.ops.convert_to_numpy(sense_probability(predicted)), np.float32
        )
    return {
        **uncertainty,
        "test_predictions": reflect(predicted[:, :3], drift_side, frame),
        "test_true": data.labels[rows],
        "key_hash": test["key_hash"].to_numpy(np.uint64),
        "event": test["event"].to_numpy(np.int64),
        "match_id": test["match_id"].to_numpy(np.int64),
        "basename": test["basename"].to_numpy(str),
        "energy_mev": test["energy_mev"].to_numpy(np.float32),
        "nu_energy_mev": test["nu_energy_mev"].to_numpy(np.float32),
        "nu_dir": test[NU_DIR_COLUMNS].to_numpy(np.float32),
        "drift_side": drift_side,
    }


def _run(
    network: keras.Model | None,
    data: Any,
    rows: np.ndarray,
    outputs: int,
    test_augment: str = "none",
    head_layer: str | None = None,
) -> np.ndarray:
    """The network's raw outputs on these rows (NaN without a network: training failed),
    with ``test_augment`` x_rotation combined with those on the rotated clusters."""
    if network is None:
        return np.full((len(rows), outputs), np.nan)
    if not len(rows):
        return np.zeros((0, outputs))
    batches = ImageBatches(data.images, rows, None, PREDICTION_BATCH)
    if test_augment == "x_rotation":
        return symmetrize.predict(network, (batch for (batch,) in batches), head_layer)
    return network.predict(batches, verbose=0)


def calibrated_kappa(
    test_raw: np.ndarray,
    val_raw: np.ndarray,
    val_errors_deg: np.ndarray,
    test_energy_mev: np.ndarray,
    val_energy_mev: np.ndarray,
    loss: str = "vmf",
) -> dict[str, np.ndarray]:
    """The test samples' κ calibrated per cluster energy so that the validation samples'
    predicted 68 % cones hold 68 % of them (``metrics.KappaCalibration``), with the raw κ and
    the calibration's knots and factors (a factor 1 without validation samples; NaN for a
    failed version)."""
    raw = keras.ops.convert_to_numpy(concentration(test_raw, loss)).astype(np.float64)
    calibration = metrics.KappaCalibration.constant()
    if len(val_raw):
        val_kappa = keras.ops.convert_to_numpy(concentration(val_raw, loss)).astype(np.float64)
        calibration = metrics.KappaCalibration.fit(val_errors_deg, val_kappa, val_energy_mev)
    return {
        "kappa": calibration(raw, test_energy_mev),
        "kappa_raw": raw,
        "kappa_scale": calibration.scale,
        "kappa_scale_energy_mev": calibration.energy_mev,
    }


def oracle_directions(
    truth_dir: Path, basename: np.ndarray, event: np.ndarray, match_id: np.ndarray
) -> np.ndarray:
    """(N, 3) float32 oracle direction per sample: its event's, if it is the event's main
    electron (match_id == main_match_id); NaN otherwise, or if its file or event has no truth.

    Only the truth files of the samples' basenames are read, only the needed columns.
    """
    samples = pd.DataFrame(
        {
            "basename": pd.Series(basename, dtype=object).str.removesuffix(MATCHED_SUFFIX),
            "event": np.asarray(event, dtype=np.int64),
            "main_match_id": np.asarray(match_id, dtype=np.int64),
        }
    )
    files = [truth_dir / f"{name}_truth.parquet" for name in samples["basename"].unique()]
    present = [path for path in files if path.is_file()]
    if len(present) < len(files):
        log.warning(
            "%d of %d truth files missing in %s", len(files) - len(present), len(files), truth_dir
        )
    if not present:
        return np.full((len(samples), 3), np.nan, dtype=np.float32)
    truth = pd.concat([pd.read_parquet(path, columns=TRUTH_COLUMNS) for path in present])
    truth = truth.astype({"basename": object, "event": np.int64, "main_match_id": np.int64})
    keys = ["basename", "event", "main_match_id"]
    joined = samples.merge(truth, on=keys, how="left", validate="many_to_one")
    return joined[ORACLE_COLUMNS].to_numpy(np.float32)


def score(predictions: dict[str, np.ndarray], version: str, test_set_hash: str) -> dict[str, Any]:
    """metrics.json: the summary, sign agreement and per-energy statistics of the test-set
    angular errors; with ``kappa`` (vmf versions) the check of those uncertainties; with
    ``oracle_dir`` the oracle on the same samples.

    Undefined statistics (empty energy bins, a failed version) are written as null (JSON has
    no NaN).
    """
    pred, true = predictions["test_predictions"], predictions["test_true"]
    errors = metrics.angular_error_deg(pred, true)
    result = {
        "version": version,
        "test_set_hash": test_set_hash,
        **metrics.summarize(errors),
        **metrics.sign_agreement(pred, true),
        "by_energy": metrics.by_energy(errors, predictions["energy_mev"]),
    }
    if "kappa" in predictions:
        result["uncertainty"] = metrics.uncertainty(
            errors,
            predictions["kappa"],
            predictions["energy_mev"],
            calibration=metrics.KappaCalibration.saved(predictions),
        )
    if "oracle_dir" in predictions:
        result["oracle"] = metrics.oracle_comparison(
            pred, true, predictions["oracle_dir"], predictions["energy_mev"]
        )
    return _finite_or_null(result)


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return value
