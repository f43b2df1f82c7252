"""The ``train`` command: one version's model, history and training record.

Everything written while training (best checkpoint, history, backups, resume state, at the
end the model and record) lives in the state directory, outside Snakemake's declared outputs,
because Snakemake deletes the outputs of a failed job before rerunning it; ``edtrain.state``
ties that state to the run it belongs to and locks it. The outputs are copied from it once at
the end, the record (training.json) last. Exit status: 0 when training ran to its end,
whatever came of it: ``ok``, ``nan`` (stopped cleanly on a non-finite loss, best finite
weights kept) or ``failed`` (no epoch gave a finite model: model.keras then holds the last,
non-finite weights, so that the workflow goes on and the insights report the version as
failed, as the predecessor's v9); 2 when ``require_gpu`` is set and no GPU is visible
(nothing written: a placement problem to retry elsewhere, not a result); 3 when another
training holds the state directory (nothing written: the message names the holder). A crash
is a result of the version too: the traceback is logged and a ``failed`` record naming the
error is written (exit 0), so the report shows it; only errors of the file system or the node
(OSError, MemoryError) and kills fail the job, for Snakemake's retries.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from edtrain import callbacks as cb
from edtrain import state
from edtrain.batch_stream import Dataset, ImageBatches, open_dataset
from edtrain.device import (
    NoGpuError,
    data_parallel_devices,
    data_parallel_scope,
    describe_device,
    require_gpu,
)
from edtrain.epoch_metrics import angular_metrics
from edtrain.exit_status import NO_GPU, STATE_BUSY
from edtrain.frame import reflect
from edtrain.losses import axis_bins, get_loss, head, output_size
from edtrain.model import build_model
from edtrain.provenance import provenance
from edtrain.splits import select_version
from edtrain.version_files import HISTORY, MODEL, RECORD

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "sgd")
SPLIT_COLUMNS = ["key_hash", "rank", "label_x", "label_y", "label_z", "drift_side"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, type=Path, help="assembled dataset directory")
    parser.add_argument("--config", required=True, type=Path, help="resolved version config.json")
    parser.add_argument("--out-dir", required=True, type=Path, help="results/<version>")
    parser.add_argument(
        "--state-dir", required=True, type=Path, help="resumable state, e.g. .state/<version>"
    )


def main(args: argparse.Namespace) -> int:
    config = json.loads(args.config.read_text())
    try:
        record = train(args.dataset, config, args.out_dir, args.state_dir)
    except NoGpuError as err:
        log.error("%s", err)
        return NO_GPU
    except state.StateBusy as err:
        log.error("%s", err)
        return STATE_BUSY
    except (OSError, MemoryError):
        raise  # the file system or the node, not the version: the job fails and is retried
    except Exception as err:
        # Anything else the same config and data would raise again (a model that cannot be
        # built, a bug, the GPU's memory): a result of this version, which the report shows.
        log.exception("training %s crashed", config.get("name"))
        record = record_crash(args.out_dir, config, err)
    log.info("training %s: %s", config.get("name"), json.dumps(record))
    return 0


def record_crash(out_dir: Path, config: dict[str, Any], err: Exception) -> dict[str, Any]:
    """The outputs of a crashed training: a ``failed`` record naming the error, a history
    without epochs and an empty model.keras (never loaded: predict skips failed versions)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "status": "failed",
        "error": f"{type(err).__name__}: {err}",
        "epochs_run": 0,
        "samples_requested": config.get("samples"),
        **provenance(),
    }
    (out_dir / MODEL).write_bytes(b"")
    (out_dir / HISTORY).write_text("epoch,loss,val_loss\n")
    (out_dir / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def build_optimizer(
    cfg: dict[str, Any],
    batch_size: int,
    lr_reference_batch: int | None = None,
    total_steps: int | None = None,
) -> keras.optimizers.Optimizer:
    """The configured optimizer; with a reference batch, the LR scales by batch/reference.

    ``schedule: cosine`` decays the learning rate along a half cosine to zero over
    ``total_steps`` (max_epochs × batches per epoch); ``plateau`` (the predecessor's) leaves
    it to the ReduceLROnPlateau callback."""
    kind = cfg.get("type", "adam")
    lr = cfg["learning_rate"] * (batch_size / lr_reference_batch if lr_reference_batch else 1.0)
    if cfg.get("schedule", "plateau") == "cosine":
        if not total_steps:
            raise ValueError("the cosine schedule needs the number of training steps")
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps)
    common = {"learning_rate": lr, "clipnorm": cfg.get("clipnorm")}
    weight_decay = cfg.get("weight_decay") or None
    if kind == "adam":
        return keras.optimizers.Adam(weight_decay=weight_decay, **common)
    if kind == "adamw":
        return keras.optimizers.AdamW(weight_decay=weight_decay or 0.0, **common)
    if kind == "sgd":
        return keras.optimizers.SGD(weight_decay=weight_decay, **common)
    raise ValueError(f"unknown optimizer {kind!r}; valid optimizers: {', '.join(OPTIMIZERS)}")


def _compiled_model(config: dict[str, Any], steps_per_epoch: int) -> keras.Model:
    perf = config.get("performance", {})
    loss = config["loss"]
    model = build_model(
        config["model"], config.get("input", {}), output_size(loss), head(loss), axis_bins(loss)
    )
    model.compile(
        optimizer=build_optimizer(
            config["optimizer"],
            config["batch_size"],
            perf.get("lr_reference_batch"),
            total_steps=config["max_epochs"] * steps_per_epoch,
        ),
        loss=get_loss(loss, config["model"].get("plane_supervision", 0.0)),
        metrics=angular_metrics(),
        jit_compile=perf.get("jit_compile", "auto"),
        steps_per_execution=perf.get("steps_per_execution", 1),
    )
    return model


def _build_loss_and_metrics(model: keras.Model, batches: ImageBatches) -> None:
    """Build the compiled loss and metrics on one batch, outside ``fit``.

    Otherwise ``fit`` draws a batch from the running data workers to build them, and on the
    JAX backend the first epoch then starts one batch late, so a resumed run would not see
    the batches an uninterrupted one saw. Evaluating changes no weights or RNG state.
    """
    x, y = batches[0]
    model.evaluate(x, y, batch_size=len(x), verbose=0)


def _history(state_dir: Path) -> pd.DataFrame:
    """The CSV history, one row per epoch (a resumed epoch may be logged twice)."""
    source = state_dir / HISTORY
    if not source.exists() or source.stat().st_size == 0:
        return pd.DataFrame(columns=["epoch", "loss", "val_loss"])
    return pd.read_csv(source).drop_duplicates("epoch", keep="last").sort_values("epoch")


def _publish(state_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Copy the finished run from the state to the outputs, the record last; returns it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(state_dir / MODEL, out_dir / MODEL)
    _history(state_dir).to_csv(out_dir / HISTORY, index=False)
    text = (state_dir / RECORD).read_text()
    (out_dir / RECORD).write_text(text)
    return json.loads(text)


def train(
    dataset_dir: Path,
    config: dict[str, Any],
    out_dir: Path,
    state_dir: Path,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, Any]:
    """Train one version and return its record, holding ``state_dir`` meanwhile.

    The state of the same run (``edtrain.state``) is resumed from its backup, or, finished,
    copied to the outputs without training again; state of another run is discarded.
    ``extra_callbacks`` run before the built-in ones (e.g. a hyperparameter-search pruner).
    """
    if config.get("require_gpu"):
        require_gpu()
    with state.locked(state_dir):
        data = open_dataset(dataset_dir, columns=SPLIT_COLUMNS)
        orientation = data.manifest.get("flip_convention", "consistent")
        if config["model"].get("plane_supervision") and orientation != "consistent":
            raise ValueError(
                f"model.plane_supervision: the planes' directions assume the consistent"
                f" orientation, but {dataset_dir} was rendered in the {orientation!r} one"
            )
        if state.claim(state_dir, state.identity(config, data.manifest.get("dataset_hash"))):
            log.info("reusing the finished run in %s", state_dir)
            return _publish(state_dir, out_dir)
        return _train(data, config, out_dir, state_dir, extra_callbacks)


def _train(
    data: Dataset,
    config: dict[str, Any],
    out_dir: Path,
    state_dir: Path,
    extra_callbacks: Sequence[keras.callbacks.Callback],
) -> dict[str, Any]:
    """Fit (resuming from a backup in ``state_dir``), then publish the run.

    With data parallelism ``batch_size`` is the global batch, split between the replicas, so
    a version trains the same way whatever number of GPUs its job lands on.
    """
    perf = config.get("performance", {})
    devices = data_parallel_devices(perf.get("data_parallel", "auto"))
    replicas = max(len(devices), 1)
    keras.mixed_precision.set_global_policy(perf.get("precision", "float32"))
    keras.utils.set_random_seed(config["seed"])
    selection = select_version(
        data.samples["key_hash"].to_numpy(),
        data.samples["rank"].to_numpy(),
        config["samples"],
        config["val_fraction"],
    )
    if selection.capped:
        log.warning(
            "%s asks for %d samples but the dataset's pool holds %d: training on all of them"
            " (samples_capped in training.json)",
            config.get("name"),
            selection.requested,
            selection.available,
        )
    labels = reflect(data.labels, data.samples["drift_side"].to_numpy(), config["input"]["frame"])
    batch_size, workers = config["batch_size"], perf.get("workers", 2)
    if replicas > 1 and keras.backend.backend() == "tensorflow":
        # Under a strategy, fit and evaluate first draw a batch to build the model. Drawn
        # from Keras' thread enqueuer it rotates that epoch's batches (a resumed run would
        # not repeat the uninterrupted one); tf.data's own prefetching restarts cleanly.
        workers = 1
    common = {"replicas": replicas, "workers": workers}
    augment = config["input"].get("augment", "none") != "none"
    train_batches = ImageBatches(
        data.images,
        selection.train,
        labels,
        batch_size,
        seed=config["seed"],
        augment=augment,
        **common,
    )
    val_batches = ImageBatches(data.images, selection.val, labels, batch_size, **common)
    if devices:
        log.info("data parallelism over %d devices: %s", replicas, ", ".join(devices))
    with data_parallel_scope(devices):
        model = _compiled_model(config, len(train_batches))
        _build_loss_and_metrics(model, train_batches)
        train_batches.set_epoch(cb.completed_epochs(state_dir / cb.BACKUP_DIR))
        callbacks, nan_guard, resume = cb.build_callbacks(config, state_dir, train_batches)

        start = time.monotonic()
        model.fit(
            train_batches,
            validation_data=val_batches,
            epochs=config["max_epochs"],
            shuffle=False,  # ImageBatches shuffles, reproducibly (see edtrain.batch_stream)
            callbacks=[*extra_callbacks, *callbacks],
            verbose=2,
        )
        wall_s = time.monotonic() - start

    record = _finish(model, state_dir, nan_guard, resume, replicas)
    record |= {
        "wall_s": round(wall_s, 3),
        "parameters": model.count_params(),
        "dataset_hash": data.manifest.get("dataset_hash"),
        "n_train": len(selection.train),
        "n_val": len(selection.val),
        "samples_requested": selection.requested,
        "samples_capped": selection.capped,
        "seed": config["seed"],
        **provenance(),
        "backend": keras.backend.backend(),
        "precision": keras.mixed_precision.global_policy().name,
    }
    state.write_atomic(state_dir / RECORD, json.dumps(record, indent=2) + "\n")
    return _publish(state_dir, out_dir)


def _finish(
    model: keras.Model,
    state_dir: Path,
    nan_guard: cb.NanGuard,
    resume: cb.ResumeState,
    replicas: int,
) -> dict[str, Any]:
    """Put the final model in the state: the best one (without one, the last weights); the
    outcome part of the record."""
    best = resume.checkpoint.best
    finite = best is not None and math.isfinite(best)
    if finite:
        os.replace(state_dir / cb.BEST_CHECKPOINT, state_dir / MODEL)
    else:
        model.save(state_dir / MODEL)
    return {
        "status": "failed" if not finite else "nan" if nan_guard.nan_epoch is not None else "ok",
        "device": describe_device(replicas),
        "replicas": replicas,
        "epochs_run": len(_history(state_dir)),
        "best_epoch": resume.early_stopping.best_epoch + 1 if finite else None,
        "nan_epoch": None if nan_guard.nan_epoch is None else nan_guard.nan_epoch + 1,
        "resumed_from_epoch": resume.resumed_epoch,
        "best_val_loss": float(best) if finite else None,
    }
