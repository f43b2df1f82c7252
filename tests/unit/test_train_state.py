"""The state directory belongs to one run: another config starts afresh, a finished run is
reused, and a second training on the same directory is refused."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pandas as pd
import pytest
from tiny_dataset import make_dataset, tiny_config

from edtrain import state, train

HOLD_LOCK = """
import fcntl, os, socket, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
handle.truncate(0)
handle.write(f"pid {os.getpid()} on {socket.gethostname()}\\n")
handle.flush()
time.sleep(600)
"""


class Interrupt(keras.callbacks.Callback):
    """Stops the run before its second epoch, as a kill would (the backup of epoch 1 stays)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "ds", n=160)


def interrupted(dataset: Path, run: Path, config: dict) -> None:
    with pytest.raises(KeyboardInterrupt):
        train.train(dataset, config, run / "out", run / "state", extra_callbacks=[Interrupt()])
    assert (run / "state" / "backup").exists() and not (run / "out").exists()


def run_main(dataset: Path, config: dict, run: Path) -> int:
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(config))
    args = argparse.Namespace(
        dataset=dataset, config=run / "config.json", out_dir=run / "out", state_dir=run / "state"
    )
    return train.main(args)


def test_identity_leaves_out_only_what_cannot_change_the_weights() -> None:
    base = state.identity(tiny_config(), "h")
    same = tiny_config(description="other", require_gpu=True, performance={"workers": 8})
    assert state.identity(same, "h") == base
    newer = tiny_config()  # a config resolved by a release that knows settings added since
    newer["model"] |= {"crop": None, "pools": None}
    assert state.identity(newer, "h") == base
    changed = tiny_config(loss="cosine", performance={"workers": 8, "precision": "mixed_float16"})
    assert state.differences(base, state.identity(changed, "h2")) == [
        "dataset_hash h → h2",
        "loss angular → cosine",
        "performance.precision (absent) → mixed_float16",
    ]


def test_another_config_discards_the_state_and_trains_from_epoch_0(
    dataset, tmp_path, caplog
) -> None:
    config = tiny_config(max_epochs=2)
    interrupted(dataset, tmp_path, config)
    changed = tiny_config(
        max_epochs=2, loss="cosine", optimizer={**config["optimizer"], "learning_rate": 0.02}
    )
    record = train.train(dataset, changed, tmp_path / "out", tmp_path / "state")
    assert record["resumed_from_epoch"] == 0 and record["epochs_run"] == 2
    # one row per epoch, all of them of the new run: the interrupted run's epoch 0 is gone
    assert list(pd.read_csv(tmp_path / "state" / "history.csv")["epoch"]) == [0, 1]
    assert "loss angular → cosine, optimizer.learning_rate 0.003 → 0.02" in caplog.text
    assert "discarding the state of the earlier run and training from epoch 0" in caplog.text


def test_settings_that_do_not_change_the_result_keep_the_resume(dataset, tmp_path) -> None:
    interrupted(dataset, tmp_path, tiny_config(max_epochs=2))
    same = tiny_config(max_epochs=2, description="reworded", performance={"workers": 1})
    record = train.train(dataset, same, tmp_path / "out", tmp_path / "state")
    assert record["resumed_from_epoch"] == 1 and record["epochs_run"] == 2


def test_state_of_an_older_edtrain_is_discarded(tmp_path, caplog) -> None:
    (tmp_path / "backup").mkdir()  # a backup without the state.json this edtrain writes
    (tmp_path / "history.csv").write_text("epoch,loss\n0,1.5\n")
    current = state.identity(tiny_config(), "h")
    assert state.claim(tmp_path, current) is False
    assert "no state.json: written by an older edtrain" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [state.IDENTITY]
    assert json.loads((tmp_path / state.IDENTITY).read_text()) == current


def test_a_finished_run_is_reused_without_training(dataset, tmp_path, caplog, monkeypatch) -> None:
    config = tiny_config(max_epochs=1)
    record = train.train(dataset, config, tmp_path / "out", tmp_path / "state")
    expected = {
        name: (tmp_path / "out" / name).read_bytes() for name in ("model.keras", "history.csv")
    }
    # killed right after the end: Snakemake deleted the outputs of the incomplete job
    for path in (tmp_path / "out").iterdir():
        path.unlink()

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(train, "_train", no_training)
    caplog.set_level(logging.INFO)
    again = tiny_config(max_epochs=1, description="reworded")
    assert train.train(dataset, again, tmp_path / "out", tmp_path / "state") == record
    assert f"reusing the finished run in {tmp_path / 'state'}" in caplog.text
    assert json.loads((tmp_path / "out" / "training.json").read_text()) == record
    for name, content in expected.items():
        assert (tmp_path / "out" / name).read_bytes() == content

    with pytest.raises(AssertionError, match="trained again"):  # another seed: a new run
        train.train(dataset, tiny_config(seed=99), tmp_path / "out", tmp_path / "state")
    assert "seed 7 → 99" in caplog.text
    assert not (tmp_path / "state" / "training.json").exists()


def test_a_second_training_on_a_held_state_dir_exits_3_and_writes_nothing(
    dataset, tmp_path, caplog
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "history.csv").write_text("epoch,loss\n0,1.5\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(state_dir / state.LOCK)])
    try:
        lock, deadline = state_dir / state.LOCK, time.monotonic() + 30
        while not (lock.exists() and f"pid {holder.pid}" in lock.read_text()):
            assert holder.poll() is None and time.monotonic() < deadline, "no lock taken"
            time.sleep(0.05)
        assert run_main(dataset, tiny_config(), tmp_path) == train.STATE_BUSY
        assert f"the state directory {state_dir} is in use" in caplog.text
        assert f"pid {holder.pid} on " in caplog.text
        assert (state_dir / "history.csv").read_text() == "epoch,loss\n0,1.5\n"
        assert sorted(p.name for p in state_dir.iterdir()) == ["history.csv", state.LOCK]
        assert not (tmp_path / "out").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with state.locked(state_dir):  # the kernel released the killed holder's lock
        assert f"pid {os.getpid()} on " in lock.read_text()
