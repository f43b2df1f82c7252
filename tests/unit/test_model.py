"""The model families: the predecessor's parameter counts, normalization saved with the model,
the ResNet family training (and resuming) on TensorFlow and on JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from keras import ops
from tiny_dataset import make_dataset, tiny_config

from edtrain.model import AdcNormalization, PlaneSlice, build_model

PREDECESSOR = {"kernel_size": 3, "filter_growth": 2.0, "batch_norm": True, "dense_layers": 2}
PREDECESSOR |= {"dense_units": 256, "dropout": 0.3}


@pytest.mark.parametrize(("layers", "filters", "millions"), [(3, 32, 6.64), (4, 64, 11.02)])
def test_parameter_counts_match_the_predecessor(layers: int, filters: int, millions: float):
    model = build_model({**PREDECESSOR, "conv_layers": layers, "filters": filters}, {})
    assert model.count_params() / 1e6 == pytest.approx(millions, abs=0.005)
    assert model.output_shape == (None, 3)


def test_stacked_planes_share_one_conv_stack() -> None:
    """fusion: stack puts U, V and X at the same drift time under one kernel: one stack whose
    first conv has three input channels, flattened to 8×2 maps of 512 filters."""
    cfg = {**PREDECESSOR, "conv_layers": 4, "filters": 64, "fusion": "stack"}
    model = build_model(cfg, {})
    assert model.get_layer("stack_conv0").kernel.shape == (3, 3, 3, 64)
    assert model.get_layer("stack_flat").output.shape[1:] == (8 * 2 * 512,)
    assert not any(layer.name.startswith(("U_", "V_", "X_")) for layer in model.layers)
    x = np.random.default_rng(0).gamma(1.0, 50.0, size=(2, 3, 128, 32)).astype(np.float32)
    for plane in range(3):  # every plane reaches the output
        cut = x.copy()
        cut[:, plane] = 0
        assert not np.allclose(model.predict(cut, verbose=0), model.predict(x, verbose=0))


def test_shared_induction_reads_u_and_v_with_one_branch(tmp_path) -> None:
    """One conv stack and one plane head for U and V, X its own: exchanging the U and V
    images exchanges their features and their 2-D directions exactly, also after a save,
    and the two planes are normalized as one batch (U's statistics depend on V's images)."""
    cfg = {**PREDECESSOR, "conv_layers": 2, "filters": 4, "dense_units": 8}
    cfg |= {"plane_supervision": 0.5, "shared_induction": True}
    model = build_model(cfg, {})
    names = {layer.name for layer in model.layers}
    assert {"UV_conv0", "X_conv0", "UV_projection"} <= names
    assert not names & {"U_conv0", "V_conv0", "U_projection"}
    separate = build_model({**cfg, "shared_induction": False}, {})
    assert separate.count_params() - model.count_params() == sum(
        int(np.prod(w.shape))
        for n in ("conv0", "conv1", "bn0", "bn1", "projection")
        for w in separate.get_layer(f"V_{n}").weights
    )
    x = np.random.default_rng(2).gamma(1.0, 50.0, size=(3, 3, 128, 32)).astype(np.float32)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    for network in (model, loaded):
        out, swapped = (network.predict(a, verbose=0) for a in (x, x[:, [1, 0, 2]]))
        np.testing.assert_allclose(swapped[:, 3:5], out[:, 5:7], atol=1e-5)
        np.testing.assert_allclose(swapped[:, 5:7], out[:, 3:5], atol=1e-5)
        np.testing.assert_allclose(swapped[:, 7:9], out[:, 7:9], atol=1e-5)
    stacked = keras.Model(model.input, model.get_layer("UV_bn0").output)
    other = x.copy()
    other[:, 1] *= 3.0
    train_u = [ops.convert_to_numpy(stacked(a, training=True))[:3] for a in (x, other)]
    assert not np.allclose(*train_u)


def test_crop_and_pools_shape_the_branches() -> None:
    """A crop of the centre, time-only pools first: the 64×16 centre pooled [2, 1] twice keeps
    all 16 columns for the second and third conv; pixels outside the crop change nothing."""
    pools = [[2, 1], [2, 1], [2, 2], [2, 2]]
    cfg = {**PREDECESSOR, "conv_layers": 4, "filters": 8, "crop": [64, 16], "pools": pools}
    model = build_model(cfg, {})
    shapes = {name: model.get_layer(f"U_{name}").output.shape[1:3] for name in ("conv0", "conv2")}
    assert shapes == {"conv0": (64, 16), "conv2": (16, 16)}
    assert model.get_layer("U_flat").output.shape[1:] == (4 * 4 * 64,)
    x = np.random.default_rng(1).gamma(1.0, 50.0, size=(2, 3, 128, 32)).astype(np.float32)
    outside = x.copy()
    outside[:, :, :32] = outside[:, :, 96:] = 0
    outside[:, :, :, :8] = outside[:, :, :, 24:] = 0
    np.testing.assert_allclose(model.predict(outside, verbose=0), model.predict(x, verbose=0))
    inside = x.copy()
    inside[:, :, 63, 15] += 100.0
    assert not np.allclose(model.predict(inside, verbose=0), model.predict(x, verbose=0))


def test_each_plane_feeds_its_own_branch() -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    for plane in range(3):
        got = ops.convert_to_numpy(PlaneSlice(plane)(x))
        np.testing.assert_array_equal(got, x[:, plane, :, :, None])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("none", [-3.0, 0.0, 99.0]),
        ("scale", [-0.75, 0.0, 24.75]),
        ("log1p", [-np.log1p(3.0), 0.0, np.log1p(99.0)]),
    ],
)
def test_adc_normalization(mode: str, expected: list[float]) -> None:
    got = ops.convert_to_numpy(AdcNormalization(mode, 4.0)(np.array([-3.0, 0.0, 99.0])))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_unknown_normalization_is_rejected() -> None:
    with pytest.raises(ValueError, match="none, log1p, scale"):
        AdcNormalization("zscore")


def test_saved_model_predicts_raw_adc_identically(tmp_path) -> None:
    config = tiny_config()
    model = build_model(config["model"], {"normalization": "log1p"})
    images = np.random.default_rng(0).uniform(0, 300, (4, 3, 128, 32)).astype(np.float16)
    before = model.predict(images, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    assert loaded.get_layer("normalize").mode == "log1p"
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), before)


RESNET = {**PREDECESSOR, "type": "resnet", "conv_layers": 3, "filters": 4, "dense_units": 16}

# Trains one config in a fresh interpreter (the backend is chosen at import), interrupted after
# its first epoch and resumed, as a preempted job would be.
TRAIN = """
import json, sys
from pathlib import Path
import keras
from edtrain import train
config, dataset, out = json.loads(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

class Stopped(BaseException):
    pass

class Stop(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:  # epoch 0 complete and backed up
            raise Stopped

try:
    train.train(dataset, config, out / "out", out / "state", extra_callbacks=[Stop()])
except Stopped:
    pass
train.train(dataset, config, out / "out", out / "state")
"""


@pytest.mark.parametrize(
    ("fusion", "flat", "millions"),
    [("late", 3 * 4 * 4 * 512, 21.07), ("stack", 4 * 4 * 512, 7.08)],
)
def test_resnet_shapes_and_size(fusion: str, flat: int, millions: float) -> None:
    """4 stages of 64·2^i filters on the 32×32 stem output: 4×4 maps of 512 at the end."""
    cfg = {**RESNET, "filters": 64, "dense_units": 256, "conv_layers": 4, "fusion": fusion}
    model = build_model(cfg, {})
    assert model.output_shape == (None, 3)
    assert model.get_layer("planes" if fusion == "late" else "flat").output.shape[1:] == (flat,)
    assert model.count_params() / 1e6 == pytest.approx(millions, abs=0.01)
    with pytest.raises(ValueError, match="three_branch, resnet"):
        build_model({**RESNET, "type": "transformer"}, {})


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_resnet_trains_and_resumes_on_each_backend(backend: str, tmp_path) -> None:
    """With log1p, the x-rotation augmentation, the cosine schedule and the axis-and-sense
    output (axial_sense); the resumed run ends where an uninterrupted one would (same
    history), the learning rate decays to ~0."""
    pytest.importorskip(backend)
    dataset = make_dataset(tmp_path / "ds", n=200)
    config = tiny_config(
        max_epochs=3,
        model=RESNET,
        loss="axial_sense",
        input={"normalization": "log1p", "scale": 1.0, "frame": "face", "augment": "x_rotation"},
        optimizer={"type": "adamw", "learning_rate": 3e-3, "clipnorm": 1.0, "weight_decay": 1e-4,
                   "schedule": "cosine"},
    )  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for run in ("resumed", "straight"):
        script = TRAIN if run == "resumed" else TRAIN.replace("extra_callbacks=[Stop()]", "")
        args = [sys.executable, "-c", script, json.dumps(config), str(dataset), str(tmp_path / run)]
        subprocess.run(args, env=env, check=True, capture_output=True)
    record = json.loads((tmp_path / "resumed" / "out" / "training.json").read_text())
    assert record["status"] == "ok" and record["backend"] == backend
    assert record["epochs_run"] == 3 and record["resumed_from_epoch"] == 1
    history = pd.read_csv(tmp_path / "resumed" / "out" / "history.csv")
    straight = pd.read_csv(tmp_path / "straight" / "out" / "history.csv")
    assert np.isfinite(history[["loss", "val_loss"]].to_numpy()).all()
    pd.testing.assert_frame_equal(history, straight, rtol=1e-5)
    rates = history["learning_rate"].to_numpy()  # the cosine: 3e-3 · (1 + cos(π e/3)) / 2
    np.testing.assert_allclose(rates, 1.5e-3 * (1 + np.cos(np.pi * np.arange(1, 4) / 3)), atol=1e-7)
    model = keras.saving.load_model(tmp_path / "resumed" / "out" / "model.keras", compile=False)
    assert model.name == "resnet" and model.output_shape == (None, 4)
    assert model.get_layer("sensed_axis")
