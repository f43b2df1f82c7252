"""A training job killed with SIGKILL resumes at its last completed epoch, same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from tiny_dataset import make_dataset, tiny_config

pytestmark = pytest.mark.slow

EPOCHS = 8
KILL_AFTER_EPOCHS = 2


def train_command(dataset: Path, config: Path, run: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "edtrain.cli",
        "train",
        "--dataset",
        str(dataset),
        "--config",
        str(config),
        "--out-dir",
        str(run / "out"),
        "--state-dir",
        str(run / "state"),
    ]


def completed_epochs(state: Path) -> int:
    metadata = state / "backup" / "training_metadata.json"
    try:
        return json.loads(metadata.read_text())["epoch"]
    except (OSError, ValueError):
        return 0


def test_killed_training_resumes_and_matches_an_uninterrupted_run(tmp_path) -> None:
    dataset = make_dataset(tmp_path / "ds", n=600)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(max_epochs=EPOCHS, batch_size=8)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    reference = tmp_path / "reference"
    subprocess.run(train_command(dataset, config, reference), env=env, check=True)

    killed = tmp_path / "killed"
    job = subprocess.Popen(train_command(dataset, config, killed), env=env)
    while completed_epochs(killed / "state") < KILL_AFTER_EPOCHS and job.poll() is None:
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL, "training finished before it could be killed"
    resume_at = completed_epochs(killed / "state")
    assert KILL_AFTER_EPOCHS <= resume_at < EPOCHS
    assert not (killed / "out" / "training.json").exists()

    subprocess.run(train_command(dataset, config, killed), env=env, check=True)
    record = json.loads((killed / "out" / "training.json").read_text())
    expected = json.loads((reference / "out" / "training.json").read_text())
    assert record["resumed_from_epoch"] == resume_at
    for key in ("status", "epochs_run", "best_epoch", "best_val_loss", "nan_epoch"):
        assert record[key] == expected[key], key
    pd.testing.assert_frame_equal(
        pd.read_csv(killed / "out" / "history.csv"), pd.read_csv(reference / "out" / "history.csv")
    )


def test_a_kill_while_writing_the_backup_keeps_the_last_complete_one(tmp_path) -> None:
    """A kill inside the weights write (seen at a job's time limit) must leave a backup the
    resume can read: the epoch before, whole, for both the backup and the best checkpoint."""
    import h5py
    import keras

    from edtrain.callbacks import AtomicBackup, AtomicCheckpoint

    class Killed(BaseException):
        pass

    def killed_while_writing(path, *args, **kwargs) -> None:
        Path(path).write_bytes(b"\x89HDF\r\n")  # what a kill leaves: a file's first bytes
        raise Killed

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(loss="mse")
    model.optimizer.build(model.trainable_variables)  # as after a first step
    backup = AtomicBackup(str(tmp_path / "backup"))
    best = AtomicCheckpoint(tmp_path / "best.keras", monitor="loss", save_best_only=True)
    for callback in (backup, best):
        callback.set_model(model)
        callback.on_train_begin()
    backup.on_epoch_begin(0)
    backup.on_epoch_end(0)
    best.on_epoch_end(0, {"loss": 1.0})

    model.save_weights = killed_while_writing
    model.save = killed_while_writing
    backup.on_epoch_begin(1)
    with pytest.raises(Killed):
        backup.on_epoch_end(1)
    with pytest.raises(Killed):
        best.on_epoch_end(1, {"loss": 0.5})

    with h5py.File(tmp_path / "backup" / "latest.weights.h5", "r"):
        pass
    metadata = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert metadata["epoch"] == 1  # Keras counts the epochs completed
    keras.saving.load_model(tmp_path / "best.keras", compile=False)
    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    fresh.compile(loss="mse")
    resumed = AtomicBackup(str(tmp_path / "backup"))
    resumed.set_model(fresh)
    resumed.on_train_begin()  # loads the weights: raises on a half-written file
    assert fresh._initial_epoch == 1
