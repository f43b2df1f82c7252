"""Data parallelism: the engine trains, records and resumes with its model on two replicas.

TensorFlow's logical devices can only be set up before it initializes, so the two-replica
trainings run in a child process that splits the CPU into two logical devices first (how
``data_parallel: true`` is exercised without GPUs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from tiny_dataset import make_dataset, tiny_config

from edtrain import device
from edtrain.batch_stream import ImageBatches
from edtrain.dataset.reader import Images
from edtrain.model import GlobalBatchNormalization

# Writes the devices each data_parallel mode picks to OUT/devices.json, then trains each config
# of OUT/configs.json on DATASET into OUT/<name>; "interrupted" stops after its first epoch and
# is run again, which resumes it.
TWO_DEVICES = """
import json, sys
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from edtrain import train
from edtrain.device import data_parallel_devices

class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt

dataset, out = Path(sys.argv[1]), Path(sys.argv[2])
picked = {mode: data_parallel_devices(mode) for mode in ("auto", True, False)}
(out / "devices.json").write_text(json.dumps(picked))
for name, config in json.loads((out / "configs.json").read_text()).items():
    args = (dataset, config, out / name, out / f"{name}.state")
    if name == "interrupted":
        try:
            train.train(*args, extra_callbacks=[Interrupt()])
        except KeyboardInterrupt:
            pass
    train.train(*args)
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp("data_parallel")
    dataset = make_dataset(out / "ds", n=200)
    parallel = tiny_config(max_epochs=2, performance={"data_parallel": True})
    configs = {"parallel": parallel, "interrupted": parallel}
    (out / "configs.json").write_text(json.dumps(configs))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-c", TWO_DEVICES, str(dataset), str(out)], env=env, check=True)
    return out


def record(runs: Path, name: str) -> dict:
    return json.loads((runs / name / "training.json").read_text())


def test_auto_keeps_one_device_without_gpus(runs: Path) -> None:
    picked = json.loads((runs / "devices.json").read_text())
    assert picked["auto"] == [] and picked["false"] == []  # one device: no replication
    assert [name.rsplit("/", 1)[1] for name in picked["true"]] == ["device:CPU:0", "device:CPU:1"]


def test_true_trains_two_replicas_and_saves_a_plain_model(runs: Path) -> None:
    parallel = record(runs, "parallel")
    assert parallel["status"] == "ok" and parallel["epochs_run"] == 2
    assert parallel["replicas"] == 2 and parallel["device"] == "2 × CPU"
    model = keras.saving.load_model(runs / "parallel" / "model.keras", compile=False)
    assert not model.get_layer("U_bn0").synchronized  # decided by the scope, never saved
    assert np.isfinite(model.predict(np.ones((2, 3, 128, 32)), verbose=0)).all()


def test_two_replicas_resume_exactly(runs: Path) -> None:
    assert record(runs, "interrupted")["resumed_from_epoch"] == 1
    pd.testing.assert_frame_equal(
        pd.read_csv(runs / "interrupted" / "history.csv"),
        pd.read_csv(runs / "parallel" / "history.csv"),
    )


def test_batches_split_evenly_between_replicas(tmp_path: Path) -> None:
    np.save(tmp_path / "images.npy", np.zeros((50, 3, 4, 2), dtype=np.float16))
    images = Images([tmp_path / "images.npy"])
    labels = np.zeros((50, 3), dtype=np.float32)

    def sizes(n: int, batch_size: int, replicas: int) -> list[int]:
        batches = ImageBatches(images, np.arange(n), labels, batch_size, replicas=replicas)
        return [len(y) for _, y in (batches[i] for i in range(len(batches)))]

    assert sizes(50, 16, 1) == [16, 16, 16, 2]
    assert sizes(50, 16, 4) == sizes(50, 16, 8) == [16, 16, 16]  # 2 rows left out
    assert sizes(22, 8, 4) == [8, 8, 4]
    with pytest.raises(ValueError, match="not a multiple of 3 replicas"):
        ImageBatches(images, np.arange(50), labels, 16, replicas=3)


def test_device_description_counts_the_replicas(monkeypatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # no MIG slice
    monkeypatch.setattr(device, "gpu_names", list)
    assert (device.describe_device(), device.describe_device(2)) == ("CPU", "2 × CPU")
    monkeypatch.setattr(device, "gpu_names", lambda: ["NVIDIA H100 80GB HBM3"] * 2)
    assert device.describe_device(2) == "2 × NVIDIA H100 80GB HBM3"
    assert device.describe_device() == "NVIDIA H100 80GB HBM3, NVIDIA H100 80GB HBM3"


def test_false_means_one_device_and_a_plain_batch_norm() -> None:
    assert device.data_parallel_devices(False) == []
    with pytest.raises(ValueError, match="auto, true or false"):
        device.data_parallel_devices("yes")
    layer = GlobalBatchNormalization()
    assert not layer.synchronized and "synchronized" not in layer.get_config()
