"""The ``apply`` command: a trained version on new data, one row per matched triplet.

Reads production folders as the dataset stage does (npz images in the flat or the U/V/X
layout, 14 or 18 columns, or ROOT cluster files; local paths or root:// URLs), one basename at
a time, runs the version's model on its matched main-track triplets and appends them to one
Parquet file: the memory held is one basename's images, whatever the size of the input.
Nothing is left out for lack of truth: real data has no true momentum, so the label checks of
training (``match_triplets(..., need_label=False)``) do not apply; where the input carries a
true direction it is written beside the prediction, with the angle between them.

Directions are unit vectors in the detector frame whatever frame the version trained in
(``edtrain.frame``). A vmf version also gets its concentration κ, calibrated per cluster
energy as its metrics.json records (``kappa_scale``, docs/metrics.md), and the half-angle of
its 68 % cone; a version with a head–tail output (``axial_sense``) gets ``sense_probability``,
as in its predictions.npz. A version's ``input.test_augment`` applies here as in its predictions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from edtrain.dataset.chunk import FLIP_CONVENTIONS
from edtrain.dataset.discover import discover
from edtrain.dataset.extract import BadFile, extract
from edtrain.dataset.match import Cuts
from edtrain.dataset.progress import progress
from edtrain.formats import columns as col
from edtrain.metrics import KappaCalibration
from edtrain.version_files import METRICS

log = logging.getLogger(__name__)

BATCH = 256
DIRECTION = ["dir_x", "dir_y", "dir_z"]
TRUTH = ["true_x", "true_y", "true_z"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="the version's model.keras")
    parser.add_argument(
        "--inputs", nargs="+", required=True, metavar="DIR", help="production folders"
    )
    parser.add_argument("--out", required=True, type=Path, help="the Parquet file to write")
    parser.add_argument(
        "--config", type=Path, help="the version's config.json (default: next to --model)"
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        help="the version's metrics.json, for a vmf version's κ calibration "
        "(default: next to --model)",
    )
    parser.add_argument(
        "--flip-convention",
        choices=FLIP_CONVENTIONS,
        default="consistent",
        help="image orientation for cluster ROOT inputs, as the version's dataset had it",
    )
    parser.add_argument(
        "--es-only", action="store_true", help="only ES interactions (needs MC truth columns)"
    )
    parser.add_argument(
        "--marley-only", action="store_true", help="only MARLEY clusters (needs MC truth columns)"
    )
    parser.epilog = (
        "example: edtrain apply --model results/demo/v16/model.keras "
        "--inputs /eos/.../cluster_images --out v16_directions.parquet"
    )


def kappa_calibration(metrics_path: Path) -> KappaCalibration:
    """The calibration of a vmf version's κ (a factor 1, with a warning, where none is
    recorded)."""
    if metrics_path.exists():
        block = json.loads(metrics_path.read_text()).get("uncertainty") or {}
        calibration = KappaCalibration.saved(block)
        if calibration is not None:
            return calibration
    log.warning("%s records no kappa_scale: κ is the network's own, uncalibrated", metrics_path)
    return KappaCalibration.constant()


def schema(with_kappa: bool, with_sense: bool = False) -> pa.Schema:
    """The output's columns: sample keys, cluster energy, the prediction (with its
    uncertainty), then the truth."""
    fields = [
        ("basename", pa.string()),
        ("source", pa.string()),
        ("event", pa.int64()),
        ("match_id", pa.int64()),
        ("energy_mev", pa.float32()),
        ("drift_side", pa.int8()),
        *((name, pa.float32()) for name in DIRECTION),
        *([("kappa", pa.float32()), ("cone68_deg", pa.float32())] if with_kappa else []),
        *([("sense_probability", pa.float32())] if with_sense else []),
        *((name, pa.float32()) for name in TRUTH),
        ("error_deg", pa.float32()),
    ]
    return pa.schema(fields)


def predict_rows(
    network: Any,
    images: np.ndarray,
    drift_side: np.ndarray,
    frame: str,
    energy_mev: np.ndarray,
    calibration: KappaCalibration | None,
    loss: str = "vmf",
    test_augment: str = "none",
) -> dict[str, np.ndarray]:
    """The network's directions (unit, detector frame) and, with a ``calibration``, κ and
    cones (the concentration as the version's ``loss`` defines it); for a ``loss`` with a
    head–tail output, the probability that the sense is right. With ``test_augment``
    x_rotation each cluster is also read rotated (``edtrain.symmetrize``)."""
    import keras

    from edtrain import symmetrize
    from edtrain.frame import reflect
    from edtrain.losses import concentration, head, predicts_sense, sense_probability
    from edtrain.metrics import unit, vmf_cone_deg

    if test_augment == "x_rotation":
        batches = (images[i : i + BATCH] for i in range(0, len(images), BATCH))
        raw = symmetrize.predict(network, batches, head(loss))
    else:
        raw = network.predict(images, batch_size=BATCH, verbose=0)
    direction = unit(reflect(raw[:, :3].astype(np.float64), drift_side, frame))
    out = dict(zip(DIRECTION, direction.T.astype(np.float32), strict=True))
    if calibration is not None:
        kappa = calibration(np.asarray(concentration(raw, loss)), energy_mev)
        out |= {"kappa": kappa.astype(np.float32), "cone68_deg": vmf_cone_deg(kappa, 0.68)}
    if predicts_sense(loss):
        probability = keras.ops.convert_to_numpy(sense_probability(raw))
        out["sense_probability"] = probability.astype(np.float32)
    return out


def truth_columns(metadata: np.ndarray, direction: np.ndarray) -> dict[str, np.ndarray]:
    """True direction (NaN where the input has no momentum) and its angle to the prediction."""
    from edtrain.metrics import angular_error_deg, unit

    true = unit(metadata[:, col.MOM], zero=np.nan).astype(np.float32)
    error = np.full(len(true), np.nan)
    has = np.isfinite(true).all(axis=1)
    error[has] = angular_error_deg(direction[has], true[has])
    return {**dict(zip(TRUTH, true.T, strict=True)), "error_deg": error}


def apply(
    model: Path,
    inputs: list[str],
    out: Path,
    config: dict[str, Any],
    calibration: KappaCalibration | None,
    cuts: Cuts,
    convention: str,
) -> dict[str, int]:
    """Write the Parquet file (through a temporary name: a cut run leaves no partial file);
    return the counts of basenames, samples and skipped files."""
    import keras

    import edtrain.model  # noqa: F401  (registers edtrain's layers for load_model)
    from edtrain.losses import predicts_sense

    network = keras.saving.load_model(model, compile=False)
    frame = config["input"]["frame"]
    sources, skips = discover(inputs)
    counts = {"basenames": 0, "samples": 0, "skipped_files": len(skips)}
    for skip in skips:
        log.warning("skipped %s: %s", skip.path, skip.reason)
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = schema(calibration is not None, predicts_sense(config["loss"]))
    with pq.ParquetWriter(partial, columns) as writer:
        for source in progress(sources, "apply"):
            try:
                found = extract(source, cuts, convention, need_label=False)
            except BadFile as bad:
                log.warning("skipped %s: %s", bad.path, bad.reason)
                counts["skipped_files"] += 1
                continue
            n = len(found.images)
            counts["basenames"] += 1
            counts["samples"] += n
            if n == 0:
                continue
            x = found.metadata
            predicted = predict_rows(
                network,
                found.images,
                found.drift_side,
                frame,
                x[:, col.CLUSTER_ENERGY],
                calibration,
                config["loss"],
                config["input"].get("test_augment", "none"),
            )
            direction = np.stack([predicted[name] for name in DIRECTION], axis=1)
            rows = {
                "basename": np.full(n, source.basename, dtype=object),
                "source": np.full(n, found.source, dtype=object),
                "event": x[:, col.EVENT].astype(np.int64),
                "match_id": x[:, col.MATCH_ID].astype(np.int64),
                "energy_mev": x[:, col.CLUSTER_ENERGY].astype(np.float32),
                "drift_side": found.drift_side.astype(np.int8),
                **predicted,
                **truth_columns(x, direction),
            }
            writer.write_table(pa.table(rows, schema=writer.schema))
    os.replace(partial, out)
    return counts


def main(args: argparse.Namespace) -> int:
    config_path = args.config or args.model.with_name("config.json")
    for path in (args.model, config_path):
        if not path.exists():
            print(f"edtrain apply: {path} not found", file=sys.stderr)
            return 2
    from edtrain.losses import predicts_kappa

    config = json.loads(config_path.read_text())
    calibration = None
    if predicts_kappa(config.get("loss", "")):
        calibration = kappa_calibration(args.metrics or args.model.with_name(METRICS))
    cuts = Cuts(args.es_only, args.marley_only)
    try:
        counts = apply(
            args.model, args.inputs, args.out, config, calibration, cuts, args.flip_convention
        )
    except FileNotFoundError as err:
        print(f"edtrain apply: {err}", file=sys.stderr)
        return 2
    log.info(
        "%s: %d samples from %d basenames (%d files skipped)",
        args.out,
        counts["samples"],
        counts["basenames"],
        counts["skipped_files"],
    )
    if counts["samples"] == 0:
        print(f"edtrain apply: no matched triplets in {' '.join(args.inputs)}", file=sys.stderr)
        return 1
    return 0
