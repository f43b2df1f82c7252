"""The predecessor's three-branch CNN, with the input normalization inside the model.

One input of shape (3, 128, 32) (planes U, V, X, raw ADC, exactly as stored in the dataset's
image files) is normalized by a layer and split into three (128, 32, 1) branches, so a saved
model.keras predicts on raw images and nobody has to remember the preprocessing.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

PLANES = ("U", "V", "X")
IMAGE_SHAPE = (len(PLANES), 128, 32)
NORMALIZATIONS = ("none", "log1p", "scale")


@keras.saving.register_keras_serializable(package="edtrain")
class AdcNormalization(layers.Layer):
    """Raw ADC → network input: ``none``, ``log1p`` (sign-preserving) or ``scale`` (x / scale)."""

    def __init__(self, mode: str = "none", scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {mode!r}; valid: {', '.join(NORMALIZATIONS)}")
        if mode == "scale" and not scale > 0:
            raise ValueError(f"normalization scale must be positive, got {scale}")
        self.mode = mode
        self.scale = float(scale)

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "log1p":
            return ops.sign(x) * ops.log1p(ops.abs(x))
        if self.mode == "scale":
            return x / self.scale
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "scale": self.scale}


@keras.saving.register_keras_serializable(package="edtrain")
class PlaneSlice(layers.Layer):
    """One plane of a (batch, 3, H, W) tensor as a channels-last (batch, H, W, 1) image."""

    def __init__(self, plane: int, **kwargs):
        super().__init__(**kwargs)
        self.plane = int(plane)

    def call(self, x):
        return ops.expand_dims(x[:, self.plane], axis=-1)

    def get_config(self):
        return {**super().get_config(), "plane": self.plane}


@keras.saving.register_keras_serializable(package="edtrain")
class GlobalBatchNormalization(layers.BatchNormalization):
    """BatchNormalization over the global batch, also under a TensorFlow distribution strategy.

    Keras keeps one moving mean and variance per MirroredStrategy replica, each updated from
    that replica's share of the batch: validation then mixes the copies, and a saved or
    resumed model keeps only the first. Built under a strategy with several replicas, this
    layer all-reduces the batch statistics instead, so every replica sees those of the
    global batch, as on one device and as JAX's DataParallel computes them anyway. The
    choice is made on construction and never saved: the model loads on any backend.
    """

    def __init__(self, **kwargs):
        super().__init__(synchronized=_tf_replicas() > 1, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["synchronized"]
        return config


def _tf_replicas() -> int:
    """Replicas of the TensorFlow distribution strategy in scope (1 without one, or on JAX)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def _branch(x, name: str, cfg: dict[str, Any]):
    """L × [Conv2D(F·growth^i) → MaxPool 2×2 → BatchNorm], then Flatten."""
    for i in range(cfg["conv_layers"]):
        filters = round(cfg["filters"] * cfg["filter_growth"] ** i)
        x = layers.Conv2D(
            filters, cfg["kernel_size"], padding="same", activation="relu", name=f"{name}_conv{i}"
        )(x)
        x = layers.MaxPooling2D(2, name=f"{name}_pool{i}")(x)
        if cfg["batch_norm"]:
            x = GlobalBatchNormalization(name=f"{name}_bn{i}")(x)
    return layers.Flatten(name=f"{name}_flat")(x)


def build_model(
    model_cfg: dict[str, Any], input_cfg: dict[str, Any], outputs: int = 3
) -> keras.Model:
    """The three-branch CNN of the resolved config's ``model`` and ``input`` blocks.

    The output is an unnormalized direction 3-vector in float32 (also under mixed precision,
    so the losses see full-precision directions), plus for ``outputs`` = 4 the vmf loss's
    concentration component (``losses.output_size``).
    """
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = AdcNormalization(
        input_cfg.get("normalization", "none"), input_cfg.get("scale", 1.0), name="normalize"
    )(images)
    branches = [
        _branch(PlaneSlice(i, name=f"plane_{p}")(x), p, model_cfg) for i, p in enumerate(PLANES)
    ]
    x = layers.Concatenate(name="planes")(branches)
    for i in range(model_cfg["dense_layers"]):
        x = layers.Dense(model_cfg["dense_units"], activation="relu", name=f"dense{i}")(x)
        x = layers.Dropout(model_cfg["dropout"], name=f"dropout{i}")(x)
    direction = layers.Dense(outputs, dtype="float32", name="direction")(x)
    return keras.Model(images, direction, name="three_plane_cnn")
