"""The train command: outputs, NaN handling, failure records, the input pipeline."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from tiny_dataset import make_dataset, tiny_config

from edtrain import device, predict, train
from edtrain.batch_stream import ImageBatches
from edtrain.dataset.reader import Images
from edtrain.device import gpu_names
from edtrain.losses import PLANE_OUTPUTS

RECORD_KEYS = {
    "status",
    "device",
    "epochs_run",
    "best_epoch",
    "nan_epoch",
    "wall_s",
    "parameters",
    "dataset_hash",
    "n_train",
    "n_val",
    "samples_requested",
    "samples_capped",
    "best_val_loss",
    "seed",
    "edtrain_version",
    "backend",
    "replicas",
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "ds", n=300)


def run_main(dataset, config, tmp_path) -> int:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    args = argparse.Namespace(
        dataset=dataset, config=config_path, out_dir=tmp_path / "out", state_dir=tmp_path / "state"
    )
    return train.main(args)


class PoisonWeights(keras.callbacks.Callback):
    """Makes every weight NaN at the start of one epoch: a non-finite loss mid-run."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.set_weights([np.full_like(w, np.nan) for w in self.model.get_weights()])


@pytest.mark.parametrize("loss", ["angular", "vmf", "angular_vmf", "axial_bins"])
def test_training_writes_the_contract_outputs_and_learns(dataset, tmp_path, loss) -> None:
    config = tiny_config(max_epochs=5, loss=loss)
    assert run_main(dataset, config, tmp_path) == 0
    out = tmp_path / "out"
    record = json.loads((out / "training.json").read_text())
    assert RECORD_KEYS <= set(record)
    assert record["status"] == "ok" and record["nan_epoch"] is None
    assert record["epochs_run"] == 5 and 1 <= record["best_epoch"] <= 5
    assert record["device"] == ("CPU" if not gpu_names() else record["device"])
    assert record["replicas"] == (1 if len(gpu_names()) < 2 else len(gpu_names()))  # auto
    assert record["samples_capped"] is True and record["dataset_hash"] == "tiny-0-300"
    # provenance: the checkout's commit (edtrain runs from one here) and the libraries
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(train.__file__).parent)  # fmt: skip
    if head.returncode == 0:
        assert record["git_commit"].startswith(head.stdout.strip())
    assert {"keras", "numpy"} <= set(record["packages"]) and record["python"]
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [0, 1, 2, 3, 4]
    assert {"loss", "val_loss", "val_mean_deg", "val_q68_deg", "val_frac_over_90"} <= set(history)
    assert history["val_loss"].min() < history["val_loss"].iloc[0]
    assert record["best_val_loss"] == pytest.approx(history["val_loss"].min())
    assert not (tmp_path / "state" / "backup").exists()
    model = keras.saving.load_model(out / "model.keras", compile=False)
    assert np.isfinite(model.predict(np.ones((2, 3, 128, 32)), verbose=0)).all()
    assert record["parameters"] == model.count_params()


def test_plane_supervision_trains_heads_that_the_readers_ignore(dataset, tmp_path) -> None:
    """The planes' 2-D directions follow the direction and κ in the output; prediction reads
    only those, so a plane-supervised version scores like any other."""
    model_cfg = {**tiny_config()["model"], "plane_supervision": 0.5}
    face = {**tiny_config()["input"], "frame": "face"}
    config = tiny_config(max_epochs=3, loss="angular_vmf", model=model_cfg, input=face)
    assert run_main(dataset, config, tmp_path) == 0
    history = pd.read_csv(tmp_path / "out" / "history.csv")
    assert np.isfinite(history[["loss", "val_loss", "val_q68_deg"]].to_numpy()).all()
    model = keras.saving.load_model(tmp_path / "out" / "model.keras", compile=False)
    assert model.output_shape == (None, 4 + PLANE_OUTPUTS)
    predicted = predict.predict_test_set(
        dataset, config["samples"], config["val_fraction"], tmp_path / "out" / "model.keras",
        "face", loss="angular_vmf",
    )  # fmt: skip
    assert predicted["test_predictions"].shape[1] == 3
    assert np.isfinite(predicted["kappa"]).all() and (predicted["kappa"] > 0).all()


def test_non_finite_loss_stops_the_run_and_keeps_the_best_finite_model(dataset, tmp_path):
    record = train.train(
        dataset,
        tiny_config(max_epochs=6),
        tmp_path / "out",
        tmp_path / "state",
        extra_callbacks=[PoisonWeights(epoch=2)],
    )
    assert record["status"] == "nan"
    assert record["nan_epoch"] == 3  # 1-based: the third epoch
    assert record["epochs_run"] == 3
    assert record["best_epoch"] <= 2 and np.isfinite(record["best_val_loss"])
    model = keras.saving.load_model(tmp_path / "out" / "model.keras", compile=False)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_no_finite_model_is_recorded_as_failed(tmp_path) -> None:
    dataset = make_dataset(tmp_path / "ds", n=120)
    labels = pd.read_parquet(dataset / "samples.parquet")
    labels["label_x"] = np.float32(np.nan)
    labels.to_parquet(dataset / "samples.parquet")
    assert run_main(dataset, tiny_config(max_epochs=3), tmp_path) == 0  # the workflow goes on
    record = json.loads((tmp_path / "out" / "training.json").read_text())
    assert record["status"] == "failed" and record["nan_epoch"] == 1
    assert record["best_val_loss"] is None and record["best_epoch"] is None
    assert (tmp_path / "out" / "model.keras").exists()  # the last weights, for the record
    assert (tmp_path / "state" / "training.json").exists()


@pytest.mark.skipif(bool(gpu_names()), reason="a GPU is visible")
def test_require_gpu_fails_fast_without_writing(dataset, tmp_path, caplog) -> None:
    assert run_main(dataset, tiny_config(require_gpu=True), tmp_path) == 2
    assert "sees no GPU" in caplog.text and "require_gpu: false" in caplog.text
    assert not (tmp_path / "out").exists()


def test_optimizers_and_batch_scaled_learning_rate() -> None:
    sgd = train.build_optimizer({"type": "sgd", "learning_rate": 0.01, "clipnorm": 1.0}, 128, 32)
    assert float(sgd.learning_rate) == pytest.approx(0.04) and sgd.clipnorm == 1.0
    adamw = train.build_optimizer({"type": "adamw", "learning_rate": 1e-3, "weight_decay": 0.1}, 32)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.1
    with pytest.raises(ValueError, match="adam, adamw, sgd"):
        train.build_optimizer({"type": "rmsprop", "learning_rate": 1e-3}, 32)


def test_batches_cover_every_row_once_per_epoch_in_seeded_order(tmp_path) -> None:
    n = 200
    images = np.broadcast_to(np.arange(n, dtype=np.float16)[:, None, None, None], (n, 3, 128, 32))
    np.save(tmp_path / "images.npy", images)
    images = Images([tmp_path / "images.npy"])  # image i holds the value i
    labels = np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1)
    rows = np.arange(0, n, 2)

    def epoch_rows(ds: ImageBatches) -> list[np.ndarray]:
        batches = [ds[i] for i in range(len(ds))]
        for x, y in batches:
            assert x.dtype == np.float16 and x.shape[1:] == (3, 128, 32)
            np.testing.assert_array_equal(x[:, 0, 0, 0], y[:, 0])
        return [y[:, 0].astype(int) for _, y in batches]

    batches = ImageBatches(images, rows, labels, batch_size=32, seed=5)
    first = epoch_rows(batches)
    assert [len(b) for b in first] == [32, 32, 32, 4]
    assert sorted(np.concatenate(first)) == list(rows)
    assert all((np.diff(b) > 0).all() for b in first)  # sorted reads from the memory map
    batches.set_epoch(1)
    second = epoch_rows(batches)
    assert sorted(np.concatenate(second)) == list(rows)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    resumed = ImageBatches(images, rows, labels, batch_size=32, seed=5)
    resumed.set_epoch(1)
    assert all(np.array_equal(a, b) for a, b in zip(second, epoch_rows(resumed), strict=True))
    in_order = epoch_rows(ImageBatches(images, rows, labels, batch_size=32))
    np.testing.assert_array_equal(np.concatenate(in_order), rows)


def test_images_read_parts_end_to_end_like_one_array(tmp_path) -> None:
    data = np.random.default_rng(1).normal(size=(50, 3, 4, 2)).astype(np.float16)
    paths = [tmp_path / f"part{k}.npy" for k in range(4)]
    for path, rows in zip(paths, np.split(data, [20, 20, 31]), strict=True):
        np.save(path, rows)  # the second part is empty
    images = Images(paths)
    assert len(images) == 50 and images.shape == data.shape and images.dtype == np.float16
    rows = np.array([0, 1, 2, 7, 19, 20, 21, 30, 31, 49])  # runs, single rows, part boundaries
    np.testing.assert_array_equal(images.read(rows), data[rows])
    indices = [[49, 3, 3, 20], slice(5, 45, 7), data[:, 0, 0, 0] > 0, 31, -1]
    indices += [(slice(None), 1, 2), (5, 0), ([7, 2], 2, slice(1, 3)), (Ellipsis, 1)]
    for index in indices:
        np.testing.assert_array_equal(images[index], data[index])
    np.testing.assert_array_equal(np.asarray(images), data)
    with pytest.raises(IndexError):
        images.read(np.array([50]))
    np.save(tmp_path / "other.npy", np.zeros((2, 3, 4, 3), dtype=np.float16))
    with pytest.raises(ValueError, match=r"other\.npy"):
        Images([paths[0], tmp_path / "other.npy"])


def test_device_names_the_mig_slice_the_job_was_given(monkeypatch) -> None:
    listing = (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5d5b)\n"
        "  MIG 1g.12gb     Device  0: (UUID: MIG-aaaa-1111)\n"
        "  MIG 2g.24gb     Device  1: (UUID: MIG-bbbb-2222)\n"
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-bbbb-2222")
    monkeypatch.setattr(device, "gpu_names", lambda: ["NVIDIA H100 80GB HBM3"])
    monkeypatch.setattr(device.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(
        device.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, listing)
    )
    assert device.describe_device() == "NVIDIA H100 80GB HBM3 (MIG 2g.24gb)"
    monkeypatch.setattr(device, "gpu_names", list)
    assert device.describe_device() == "CPU"


@pytest.mark.parametrize("frame", ["detector", "face"])
def test_the_face_frame_learns_the_y_sign_mirrored_faces_hide(tmp_path, frame) -> None:
    """On images that show y times the drift side (as induction planes do), the face frame
    learns the sign of y and the detector frame cannot; predictions come back in the detector
    frame, so both are scored against the same labels."""
    data = make_dataset(tmp_path / "ds", n=400, mirrored_faces=True)
    config = tiny_config(max_epochs=8, input={**tiny_config()["input"], "frame": frame})
    train.train(data, config, tmp_path / "out", tmp_path / "state")
    predicted = predict.predict_test_set(
        data, config["samples"], config["val_fraction"], tmp_path / "out" / "model.keras", frame
    )
    pred, true = predicted["test_predictions"], predicted["test_true"]
    clear = np.abs(true[:, 1]) > 0.5

    agreement = (np.sign(pred[clear, 1]) == np.sign(true[clear, 1])).mean()
    if frame == "face":
        assert agreement > 0.8
    else:
        assert agreement < 0.75
