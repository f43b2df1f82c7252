"""The networks edtrain trains, with the input normalization inside the model.

One input of shape (3, 128, 32) (planes U, V, X, raw ADC, exactly as stored in the dataset's
image files) is normalized by a layer and split into three (128, 32, 1) planes, so a saved
model.keras predicts on raw images and nobody has to remember the preprocessing.

``model.type`` picks the family (docs/training.md): ``three_branch``, the predecessor's three
plain conv stacks flattened into a dense head (v7–v16, v20–v23; with ``fusion: stack`` one
stack on the planes as channels; ``crop`` and ``pools`` choose the part of each plane it sees
and how each layer pools it), or ``resnet``: per-plane stems that
pool the finely sampled time axis, residual stages, the planes fused late (per-plane stages)
or early (``fusion: stack``, the planes as channels of one stack).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

# registered with Keras on import, so that `import edtrain.model` is all a saved model needs
import edtrain.epoch_metrics  # noqa: F401
from edtrain.losses import hemisphere_axes

PLANES = ("U", "V", "X")
IMAGE_SHAPE = (len(PLANES), 128, 32)
NORMALIZATIONS = ("none", "log1p", "scale")
MODEL_TYPES = ("three_branch", "resnet")
# resnet's stem pools the time axis by this much: a time pixel is ~6× finer than the
# wire pitch, so 4 makes the pixels nearly square before the 2-D stages
TIME_POOL = 4


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
class SensedAxis(layers.Layer):
    """(axis, s) → (the axis turned to the sign of s, s): the direction of an axis-and-sense
    output, so every reader of the first three units gets a direction (losses.axial_sense_loss
    trains the axis and s separately; no gradient passes through the sign)."""

    INPUTS = 4

    def call(self, x):
        sign = ops.where(x[..., 3:] >= 0, 1.0, -1.0)
        return ops.concatenate([x[..., :3] * ops.cast(sign, x.dtype), x[..., 3:]], axis=-1)


@keras.saving.register_keras_serializable(package="edtrain")
class AxisByDirection(layers.Layer):
    """(axis, direction) → (their readout, axis, direction): an axis head and a direction head
    (losses.axial_direction_loss) read as one direction, the unit axis turned into the
    direction's hemisphere plus ``blend`` × the unit direction. Where the two heads agree
    that is the axis; where they part, the direction head breaks the tie (``blend`` chosen on
    validation samples, docs/training.md "Losses")."""

    INPUTS = 6

    def __init__(self, blend: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.blend = float(blend)

    def call(self, x):
        axis, direction = _unit(x[..., :3]), _unit(x[..., 3:6])
        sign = ops.where(ops.sum(axis * direction, axis=-1, keepdims=True) >= 0, 1.0, -1.0)
        readout = axis * ops.cast(sign, x.dtype) + self.blend * direction
        return ops.concatenate([readout, x[..., :6]], axis=-1)

    def get_config(self):
        return {**super().get_config(), "blend": self.blend}


def _unit(v):
    return v / ops.sqrt(ops.sum(ops.square(v), axis=-1, keepdims=True) + 1e-12)


def principal_axis(scatter):
    """The eigenvector of the largest eigenvalue λ of each (3, 3) scatter matrix, λ long: the
    axis that the distribution's axes lie along most (least mean sin² to them; of two
    separate peaks it follows the heavier, where a mean vector of axes would land between
    them), its length how closely they do (losses.concentration)."""
    values, vectors = ops.eigh(scatter)
    return vectors[..., :, -1] * values[..., -1:]


@keras.saving.register_keras_serializable(package="edtrain")
class BinnedAxis(layers.Layer):
    """(axis-bin logits, direction) → (axis, direction, logits): the axis read as the
    principal axis of the distribution over the bins (losses.axial_bins_loss), so the
    readout is finer than the ~9° bins and uses the whole distribution; its length is the
    scatter matrix's largest eigenvalue, the κ of losses.concentration (AxisByDirection reads
    only its direction)."""

    def __init__(self, bins: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.bins = int(bins)
        axes = hemisphere_axes(self.bins)
        # each bin's bⱼ bⱼᵀ, flattened: probabilities @ outer = the scatter matrix Σⱼ pⱼ bⱼ bⱼᵀ
        self.outer = (axes[:, :, None] * axes[:, None, :]).reshape(self.bins, 9)

    def call(self, x):
        logits, direction = x[..., : self.bins], x[..., self.bins :]
        probs = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        scatter = ops.matmul(probs, ops.convert_to_tensor(self.outer))
        axis = principal_axis(ops.reshape(scatter, (*ops.shape(probs)[:-1], 3, 3)))
        return ops.concatenate([axis, ops.cast(direction, "float32"), logits], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.bins + 6)

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}


HEADS = {"sensed_axis": SensedAxis, "axis_by_direction": AxisByDirection}


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
    """L × [Conv2D(F·growth^i) → MaxPool (2×2 or ``pools[i]``) → BatchNorm], then Flatten."""
    pools = cfg.get("pools") or [(2, 2)] * cfg["conv_layers"]
    for i in range(cfg["conv_layers"]):
        filters = round(cfg["filters"] * cfg["filter_growth"] ** i)
        x = layers.Conv2D(
            filters, cfg["kernel_size"], padding="same", activation="relu", name=f"{name}_conv{i}"
        )(x)
        x = layers.MaxPooling2D(tuple(pools[i]), name=f"{name}_pool{i}")(x)
        if cfg["batch_norm"]:
            x = GlobalBatchNormalization(name=f"{name}_bn{i}")(x)
    return layers.Flatten(name=f"{name}_flat")(x)


@keras.saving.register_keras_serializable(package="edtrain")
class BatchStack(layers.Layer):
    """Two images of one batch stacked along the batch axis, so one branch (its batch
    normalization included) reads both as one batch of twice the size."""

    def call(self, inputs):
        return ops.concatenate(inputs, axis=0)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="edtrain")
class BatchHalf(layers.Layer):
    """The first (``half`` 0) or second half of a ``BatchStack``'ed batch."""

    def __init__(self, half: int, **kwargs):
        super().__init__(**kwargs)
        self.half = int(half)

    def call(self, x):
        n = ops.shape(x)[0] // 2
        return x[:n] if self.half == 0 else x[n:]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "half": self.half}


def _late_branches(planes: list, cfg: dict[str, Any]):
    """Each plane's flattened branch output and, with ``plane_supervision``, the 2-D
    direction read from it (U, V, X). With ``shared_induction`` U and V go through one
    branch and one 2-D head, stacked as one batch: in the face frame the two induction
    planes draw a track alike, mirrored in y (docs/training.md, "One branch for both
    induction planes"), so the branch learns one task from twice the images."""
    names = list(PLANES)
    if cfg.get("shared_induction"):
        planes = [BatchStack(name="UV_stack")(planes[:2]), planes[2]]
        names = ["UV", "X"]
    branches = [_branch(plane, p, cfg) for p, plane in zip(names, planes, strict=True)]
    heads = []
    if cfg.get("plane_supervision"):
        heads = [
            layers.Dense(2, dtype="float32", name=f"{p}_projection")(branch)
            for p, branch in zip(names, branches, strict=True)
        ]
    if cfg.get("shared_induction"):
        branches = [*_unstack(branches[0], "features"), branches[1]]
        heads = [*_unstack(heads[0], "plane_direction"), heads[1]] if heads else []
    return branches, heads


def _unstack(x, what: str) -> list:
    """U's and V's halves of a stacked U-and-V tensor."""
    return [BatchHalf(i, name=f"{p}_{what}")(x) for i, p in enumerate("UV")]


def _conv_bn(x, filters: int, kernel, name: str, cfg: dict[str, Any], strides=1, relu=True):
    """Conv2D → BatchNorm (if ``batch_norm``; the conv then has no bias) → ReLU."""
    x = layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=not cfg["batch_norm"],
        name=f"{name}_conv",
    )(x)
    return _norm_relu(x, name, cfg, relu)


def _norm_relu(x, name: str, cfg: dict[str, Any], relu: bool = True):
    """BatchNorm (if ``batch_norm``) → ReLU (if ``relu``)."""
    if cfg["batch_norm"]:
        x = GlobalBatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _residual(x, filters: int, strides: int, name: str, cfg: dict[str, Any]):
    """Two k×k convs with an identity (or 1×1 projection) shortcut, He et al. 2016."""
    k = cfg["kernel_size"]
    y = _conv_bn(x, filters, k, f"{name}a", cfg, strides=strides)
    y = _conv_bn(y, filters, k, f"{name}b", cfg, relu=False)
    if strides != 1 or x.shape[-1] != filters:
        x = _conv_bn(x, filters, 1, f"{name}_proj", cfg, strides=strides, relu=False)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))


def _stages(x, name: str, cfg: dict[str, Any]):
    """``conv_layers`` residual stages of filters · filter_growth^i, the first at the input's
    resolution and each further one halving it (stride 2)."""
    for i in range(cfg["conv_layers"]):
        filters = round(cfg["filters"] * cfg["filter_growth"] ** i)
        x = _residual(x, filters, 1 if i == 0 else 2, f"{name}stage{i}", cfg)
    return x


def _resnet(planes: list, cfg: dict[str, Any]):
    """Per-plane stems (a 5×3 conv, time max-pooled by ``TIME_POOL``, then normalized: the
    normalization on the pooled map costs a quarter of it on the conv's), residual stages, and
    a flattened output: no global pooling, so where along the track the charge sits (the
    head–tail cue) reaches the head. ``fusion`` ``late`` runs the stages per plane and
    concatenates the flattened planes (as the predecessor does); ``stack`` stacks the stems as
    channels, mixes them with a 1×1 conv and runs one set of stages on the stack."""
    stems = []
    for p, plane in zip(PLANES, planes, strict=True):
        x = layers.Conv2D(
            cfg["filters"],
            (5, 3),
            padding="same",
            use_bias=not cfg["batch_norm"],
            name=f"{p}_stem_conv",
        )(plane)
        x = layers.MaxPooling2D((TIME_POOL, 1), name=f"{p}_stem_pool")(x)
        stems.append(_norm_relu(x, f"{p}_stem", cfg))
    if cfg.get("fusion", "late") == "stack":
        x = layers.Concatenate(name="planes")(stems)
        x = _stages(_conv_bn(x, cfg["filters"], 1, "fuse", cfg), "", cfg)
        return layers.Flatten(name="flat")(x)
    flat = [
        layers.Flatten(name=f"{p}_flat")(_stages(x, f"{p}_", cfg))
        for p, x in zip(PLANES, stems, strict=True)
    ]
    return layers.Concatenate(name="planes")(flat)


def build_model(
    model_cfg: dict[str, Any],
    input_cfg: dict[str, Any],
    outputs: int = 3,
    head: str | None = None,
    bins: int = 0,
) -> keras.Model:
    """The network of the resolved config's ``model`` and ``input`` blocks.

    The output is an unnormalized direction 3-vector in float32 (also under mixed precision,
    so the losses see full-precision directions), plus for ``outputs`` = 4 the κ losses'
    concentration component; a ``head`` (``HEADS``, ``losses.head``) turns the units before it
    into a direction, followed by what the loss reads (with ``bins``, the axis is read from
    that many axis-bin logits by ``BinnedAxis``, the logits following the head's units); with
    ``plane_supervision`` each plane's 2-D direction follows (``losses.PLANE_OUTPUTS`` units,
    U, V, X: a training aid that every reader of the output ignores, as it reads only the
    first ``outputs``).
    """
    kind = model_cfg.get("type", "three_branch")
    if kind not in MODEL_TYPES:
        raise ValueError(f"unknown model type {kind!r}; valid: {', '.join(MODEL_TYPES)}")
    late = kind == "three_branch" and model_cfg.get("fusion", "late") == "late"
    for key in ("plane_supervision", "shared_induction"):
        if model_cfg.get(key) and not late:
            raise ValueError(f"{key} needs a branch per plane: three_branch, fusion late")
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = AdcNormalization(
        input_cfg.get("normalization", "none"), input_cfg.get("scale", 1.0), name="normalize"
    )(images)
    planes = [PlaneSlice(i, name=f"plane_{p}")(x) for i, p in enumerate(PLANES)]
    if model_cfg.get("crop"):  # the renderer centres each cluster: keep the centre
        crop = zip(IMAGE_SHAPE[1:], model_cfg["crop"], strict=True)
        margins = [(side - kept) // 2 for side, kept in crop]
        planes = [
            layers.Cropping2D(margins, name=f"crop_{p}")(plane)
            for p, plane in zip(PLANES, planes, strict=True)
        ]
    if kind == "resnet":
        x = _resnet(planes, model_cfg)
    elif model_cfg.get("fusion", "late") == "stack":  # one stack, the planes as channels
        x = _branch(layers.Concatenate(name="planes")(planes), "stack", model_cfg)
    else:
        branches, plane_heads = _late_branches(planes, model_cfg)
        x = layers.Concatenate(name="planes")(branches)
    for i in range(model_cfg["dense_layers"]):
        x = layers.Dense(model_cfg["dense_units"], activation="relu", name=f"dense{i}")(x)
        x = layers.Dropout(model_cfg["dropout"], name=f"dropout{i}")(x)
    units = HEADS[head].INPUTS if head else outputs
    if bins:  # the logits replace the axis head's three units
        units += bins - 3
    output = layers.Dense(units, dtype="float32", name="direction")(x)
    if bins:
        binned = BinnedAxis(bins, dtype="float32", name="binned_axis")(output)
        readout = HEADS[head](dtype="float32", name=head)(binned[..., :6])
        output = layers.Concatenate(dtype="float32", name="with_bins")([readout, binned[..., 6:]])
    elif head:
        output = HEADS[head](dtype="float32", name=head)(output)
    if model_cfg.get("plane_supervision"):  # each branch's own 2-D direction, appended
        output = layers.Concatenate(dtype="float32", name="outputs")([output, *plane_heads])
    return keras.Model(images, output, name=kind)
