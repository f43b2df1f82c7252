"""The training callbacks, and the resume state Keras' BackupAndRestore does not keep.

BackupAndRestore restores the model and optimizer weights and the epoch. An uninterrupted
run also depends on the early-stopping and reduce-LR counters, the best weights held for
``restore_best_weights``, the best checkpoint's threshold and the dropout RNG state;
``ResumeState`` saves those at every epoch end and puts them back before the first resumed
epoch, so a killed run ends with the same result (the shuffle follows the epoch number).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from edtrain.batch_stream import ImageBatches
from edtrain.version_files import HISTORY

BACKUP_DIR = "backup"
BEST_CHECKPOINT = "best.keras"
PARTIAL_CHECKPOINT = "next-best.keras"  # written, then renamed to BEST_CHECKPOINT
log = logging.getLogger(__name__)
RESUME_STATE = "resume.json"


def completed_epochs(backup_dir: Path) -> int:
    """Epochs completed before the backup in ``backup_dir`` was written (0: none, fresh)."""
    metadata = backup_dir / "training_metadata.json"
    return json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0


class EpochShuffle(keras.callbacks.Callback):
    """Orders the training rows for each epoch from Keras' epoch number (also when resumed).

    Keras calls ``on_epoch_begin`` of callbacks before its data workers start on the epoch;
    the first epoch's order must be set before ``fit`` (Keras draws a batch to build the model,
    and its workers may prefetch more), see ``completed_epochs``.
    """

    def __init__(self, batches: ImageBatches) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)


class LearningRateLog(keras.callbacks.Callback):
    """Puts the epoch's last learning rate into the logs (history.csv's ``learning_rate``),
    also under a schedule, where no ReduceLROnPlateau is there to do it."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))


class NanGuard(keras.callbacks.TerminateOnNaN):
    """TerminateOnNaN that records the (0-based) epoch of the first non-finite loss.

    Keras' batch ``loss`` is the running epoch mean, so one non-finite batch marks the
    epoch even if later batches recover; a non-finite ``val_loss`` stops the run as well.
    """

    def __init__(self) -> None:
        super().__init__()
        self.nan_epoch: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._record(self._epoch)
        super().on_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        values = [(logs or {}).get(key) for key in ("loss", "val_loss")]
        if any(v is not None and not math.isfinite(float(v)) for v in values):
            self._record(epoch)
            self.model.stop_training = True

    def _record(self, epoch: int) -> None:
        if self.nan_epoch is None:
            self.nan_epoch = epoch


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose backup a kill cannot leave half-written.

    Keras writes the weights in place, so a job killed while writing them (a batch system's
    time limit, at the end of an epoch of a big model) leaves a file h5py cannot open, and the
    resume fails. Written beside it and renamed over it (a rename is atomic), the backup is
    always the last complete one; a kill between the two renames costs one epoch's repeat.
    """

    def _save_model(self):
        backup = Path(self.backup_dir)
        backup.mkdir(parents=True, exist_ok=True)
        weights = backup / "next.weights.h5"
        self.model.save_weights(str(weights), overwrite=True)
        metadata = backup / "training_metadata.next"
        metadata.write_text(
            json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen})
        )
        os.replace(weights, self._weights_path)
        os.replace(metadata, self._training_metadata_path)


class AtomicCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes beside ``path`` and renames over it (see AtomicBackup)."""

    def __init__(self, path: Path, **kwargs: Any) -> None:
        self.path = Path(path)
        super().__init__(str(self.path.with_name(PARTIAL_CHECKPOINT)), **kwargs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if Path(self.filepath).exists():
            os.replace(self.filepath, self.path)


class ResumeState(keras.callbacks.Callback):
    """Saves and restores the run state that BackupAndRestore leaves out (see module doc).

    Place it after the callbacks it restores (their ``on_train_begin`` resets them) and
    before BackupAndRestore (so a state exists for every epoch a backup exists for).
    """

    def __init__(
        self,
        path: Path,
        backup: AtomicBackup,
        early_stopping: keras.callbacks.EarlyStopping,
        reduce_lr: keras.callbacks.ReduceLROnPlateau,
        checkpoint: AtomicCheckpoint,
        nan_guard: NanGuard,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.backup = backup
        self.early_stopping = early_stopping
        self.reduce_lr = reduce_lr
        self.checkpoint = checkpoint
        self.nan_guard = nan_guard
        self.resumed_epoch = 0

    def _seed_states(self) -> list[keras.Variable]:
        return [v for v in self.model.variables if v.path.endswith("seed_generator_state")]

    def on_train_begin(self, logs=None):
        self.resumed_epoch = completed_epochs(Path(self.backup.backup_dir))
        if self.resumed_epoch == 0:
            return
        log.info(
            "resuming from epoch %d (the backup of %d finished epochs in %s)",
            self.resumed_epoch + 1,
            self.resumed_epoch,
            self.backup.backup_dir,
        )
        state = json.loads(self.path.read_text())[str(self.resumed_epoch)]
        es, rlr = self.early_stopping, self.reduce_lr
        es.wait, es.best, es.best_epoch = state["es_wait"], state["best"], state["best_epoch"]
        rlr.wait, rlr.best = state["rlr_wait"], state["rlr_best"]
        rlr.cooldown_counter = state["rlr_cooldown"]
        self.checkpoint.best = state["best"]
        self.nan_guard.nan_epoch = state["nan_epoch"]
        if es.restore_best_weights and self.checkpoint.path.exists():
            es.best_weights = keras.saving.load_model(
                self.checkpoint.path, compile=False
            ).get_weights()
        for variable, value in zip(self._seed_states(), state["seed_states"], strict=True):
            variable.assign(np.asarray(value, dtype=variable.dtype))

    def on_epoch_end(self, epoch, logs=None):
        states = json.loads(self.path.read_text()) if self.path.exists() else {}
        es, rlr = self.early_stopping, self.reduce_lr
        completed = epoch + 1
        states[str(completed)] = {
            "es_wait": es.wait,
            "best": _json_float(self.checkpoint.best),
            "best_epoch": es.best_epoch,
            "rlr_wait": rlr.wait,
            "rlr_best": _json_float(rlr.best),
            "rlr_cooldown": rlr.cooldown_counter,
            "nan_epoch": self.nan_guard.nan_epoch,
            "seed_states": [ops.convert_to_numpy(v).tolist() for v in self._seed_states()],
        }
        # Two entries cover a kill between this write and the backup's.
        keep = {k: states[k] for k in sorted(states, key=int)[-2:]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(keep))
        os.replace(tmp, self.path)


def _json_float(value: Any) -> float | None:
    return None if value is None else float(value)


def build_callbacks(
    config: dict[str, Any], state_dir: Path, batches: ImageBatches
) -> tuple[list[keras.callbacks.Callback], NanGuard, ResumeState]:
    """The ordered callback list for one version; also returns the two whose state we read."""
    cfg = config.get("callbacks", {})
    es_cfg, rlr_cfg = cfg.get("early_stopping", {}), cfg.get("reduce_lr", {})
    nan_guard = NanGuard()
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=es_cfg.get("patience", 20), restore_best_weights=True
    )
    reduce_lr = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss",
        patience=rlr_cfg.get("patience", 10),
        factor=rlr_cfg.get("factor", 0.5),
        min_lr=rlr_cfg.get("min_lr", 1e-6),
    )
    # A threshold of +inf keeps a non-finite first val_loss from becoming "the best".
    checkpoint = AtomicCheckpoint(
        state_dir / BEST_CHECKPOINT,
        monitor="val_loss",
        save_best_only=True,
        initial_value_threshold=math.inf,
    )
    backup = AtomicBackup(str(state_dir / BACKUP_DIR))
    resume = ResumeState(
        state_dir / RESUME_STATE, backup, early_stopping, reduce_lr, checkpoint, nan_guard
    )
    csv_logger = keras.callbacks.CSVLogger(str(state_dir / HISTORY), append=True)
    shuffle = EpochShuffle(batches)
    plateau = config.get("optimizer", {}).get("schedule", "plateau") == "plateau"
    callbacks = [
        shuffle,
        nan_guard,
        early_stopping,
        *([reduce_lr] if plateau else [LearningRateLog()]),  # a schedule owns the rate
        checkpoint,
        csv_logger,
        resume,
        backup,
    ]
    return callbacks, nan_guard, resume
