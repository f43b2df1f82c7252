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
