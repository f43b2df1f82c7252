"""Direction losses with finite values and gradients everywhere (keras.ops only).

The predecessor's angular loss was ``arccos(clip(cos, -1, 1))``: d/dx arccos(x) is infinite
at |x| = 1, so one sample predicted exactly right (or exactly reversed) turned the whole
gradient into inf/NaN, and gradient clipping cannot repair an inf. Here the angle is
``atan2(|p̂ × t̂|, p̂ · t̂)`` with a smoothed norm, whose gradient is bounded at 0° and 180°, and
vectors are normalized with a smoothed length so a zero-length prediction is finite too.

Every loss returns one value per sample; Keras averages them over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from edtrain.detector import WIRE_ANGLE_DEG

# Added under square roots: keeps |v| and its gradient finite at v = 0. A prediction of
# length 1e-3 or more is normalized to within 5e-5 of exact.
_EPS_SQUARED = 1e-6
_EPS_CROSS = 1e-12

LossFn = Callable[[object, object], object]


def _unit(v):
    """v / |v| with a smoothed length, so a zero vector maps to zero with finite gradient."""
    v = ops.cast(v, "float32")
    return v / ops.sqrt(ops.sum(ops.square(v), axis=-1, keepdims=True) + _EPS_SQUARED)


def cosine(y_true, y_pred):
    """cos of the angle between truth and prediction, per sample (the prediction's direction is
    its first three components: a vmf output's fourth is its concentration)."""
    return ops.sum(_unit(y_true) * _unit(y_pred[..., :3]), axis=-1)


def angle(y_true, y_pred):
    """Angle between truth and prediction in radians, in [0, π], finite gradient everywhere."""
    t, p = _unit(y_true), _unit(y_pred[..., :3])
    cross = ops.cross(t, p)
    sin = ops.sqrt(ops.sum(ops.square(cross), axis=-1) + _EPS_CROSS)
    return ops.arctan2(sin, ops.sum(t * p, axis=-1))


@keras.saving.register_keras_serializable(package="edtrain")
def cosine_loss(y_true, y_pred):
    """1 − cos θ: in [0, 2], zero when exact (the predecessor's −cos, shifted to be ≥ 0)."""
    return 1.0 - cosine(y_true, y_pred)


@keras.saving.register_keras_serializable(package="edtrain")
def angular_loss(y_true, y_pred):
    """θ in radians: the batch mean is the mean angular error."""
    return angle(y_true, y_pred)


@keras.saving.register_keras_serializable(package="edtrain")
def focal_angular_loss(y_true, y_pred):
    """(θ/π)²·θ: weights large errors more (the predecessor's v9 loss)."""
    theta = angle(y_true, y_pred)
    return ops.square(theta / 3.141592653589793) * theta


@keras.saving.register_keras_serializable(package="edtrain")
def hybrid_loss(y_true, y_pred):
    """θ + (1 − cos θ).

    The angular term keeps a unit-size gradient down to 0°, where 1 − cos θ flattens out and
    stops refining good predictions; the cosine term adds its largest push (sin θ) around 90°,
    where the head-tail ambiguous samples sit. Both terms are zero at 0° and maximal at 180°.
    """
    theta = angle(y_true, y_pred)
    return theta + (1.0 - ops.cos(theta))


@keras.saving.register_keras_serializable(package="edtrain")
def angular_axial_loss(y_true, y_pred):
    """θ + min(θ, π − θ): the angle plus the angle between the two axes.

    For a head–tail-ambiguous electron (sense p against 1 − p) the expected θ changes with the
    axis only as (2p − 1): near p = ½ the angular loss leaves the axis untaught. The axial term
    pulls the axis onto the track whichever sense the network picks; θ still decides the sense.
    """
    theta = angle(y_true, y_pred)
    return theta + ops.minimum(theta, math.pi - theta)


_LOG_4PI = 2.5310242469692907
# The vMF concentration is a floor + softplus(the output's fourth component), the floor per
# loss. `vmf`: the direction's gradient is κ sin θ, so a κ free to reach 0 lets a network that
# starts with poor directions stop learning them, and κ as the direction vector's own length
# (IceCube's convention) shrinks the output layer towards zero while directions are poor (seen
# on the demo: median κ 1.0, mean error 92°). A separate component and a floor of 1 keep the
# direction learning at least as the cosine loss does; but the large errors of the first epochs
# can push κ onto that floor, where softplus is flat, for good (the resnet v18: median κ 1.0).
# `angular_vmf` learns the direction from θ alone, so κ needs no floor against a stalled
# direction, and 0.05 (a 68 % cone of 110°) lets an ambiguous electron say how little it tells.
KAPPA_FLOORS = {"vmf": 1.0, "angular_vmf": 0.05}
KAPPA_FLOOR = KAPPA_FLOORS["vmf"]


def hemisphere_axes(count: int) -> np.ndarray:
    """``count`` unit axes spread evenly over the z > 0 hemisphere: the upper half of a
    Fibonacci lattice of 2 × ``count`` points on the sphere (an axis and its opposite are
    one bin)."""
    i = np.arange(2 * count) + 0.5
    z = 1.0 - i / count
    phi = math.pi * (1.0 + math.sqrt(5.0)) * i
    r = np.sqrt(1.0 - z * z)
    axes = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    return axes[z > 0].astype(np.float32)


# ~9° apart; the target's width: exp(κ (cos² − 1)) ≈ exp(−κ θ²), σ ≈ 8° at κ = 25
AXIS_BINS = hemisphere_axes(256)
AXIS_BIN_KAPPA = 25.0


# losses whose network's output passes a head layer (model.HEADS), and the units it puts out
HEADS = {
    "axial_sense": ("sensed_axis", 4),
    "axial_direction": ("axis_by_direction", 9),
    "axial_bins": ("axis_by_direction", 9 + len(AXIS_BINS)),
}


def predicts_kappa(loss: str) -> bool:
    """Whether a loss's network also outputs a concentration κ (``concentration``)."""
    return loss in KAPPA_FLOORS or loss == "axial_bins"


def predicts_sense(loss: str) -> bool:
    """Whether a loss's network also outputs a head–tail logit (model.SensedAxis)."""
    return head(loss) == "sensed_axis"


def output_size(loss: str) -> int:
    """Units of the network's output for a loss: the direction, and with κ its fourth, or
    those of its head (``HEADS``)."""
    if loss in HEADS:
        return HEADS[loss][1]
    return 4 if predicts_kappa(loss) else 3


def axis_bins(loss: str) -> int:
    """How many axis bins a loss's network puts out (after its head's units), if any."""
    return len(AXIS_BINS) if loss == "axial_bins" else 0


def head(loss: str) -> str | None:
    """The head layer (model.HEADS) a loss's network ends with, if any."""
    return HEADS[loss][0] if loss in HEADS else None


def log_sinhc(kappa):
    """log(sinh κ / κ) for κ ≥ 0.05, finite with a finite gradient for every float32 κ:
    κ − log 2 + log(1 − e^(−2κ)) − log κ, where sinh κ itself overflows near κ ≈ 89."""
    return kappa - 0.6931471805599453 + ops.log(-ops.expm1(-2.0 * kappa)) - ops.log(kappa)


# the largest eigenvalue of an axis distribution's scatter matrix below 1, so that κ is finite
MAX_AXIS_EIGENVALUE = 1.0 - 1e-4


def concentration(y_pred, loss: str = "vmf"):
    """The vMF concentration κ of a κ-predicting output: for vmf and angular_vmf (direction,
    s), the loss's floor (KAPPA_FLOORS) + softplus(s); for axial_bins, 2 / (1 − λ) with λ the
    largest eigenvalue of the axis distribution's scatter matrix, the length of the axis
    head's output (model.BinnedAxis). λ is the mean cos² between the principal axis and the
    distribution's axes, and a vMF of concentration κ has mean sin² ≈ 2 / κ: a sharp
    distribution says a sure axis. κ ≥ 3 (λ ≥ 1/3); the predictions calibrate it per energy."""
    if loss == "axial_bins":
        eigenvalue = ops.sqrt(ops.sum(ops.square(ops.cast(y_pred[..., 3:6], "float32")), -1))
        return 2.0 / (1.0 - ops.minimum(eigenvalue, MAX_AXIS_EIGENVALUE))
    return KAPPA_FLOORS[loss] + ops.softplus(ops.cast(y_pred[..., 3], "float32"))


def _vmf_nll(kappa, cos):
    return _LOG_4PI + log_sinhc(kappa) - kappa * cos


@keras.saving.register_keras_serializable(package="edtrain")
def vmf_loss(y_true, y_pred):
    """Negative log-likelihood of the truth under a von Mises–Fisher distribution on the
    sphere whose mean is the output's direction (its first three components) and whose
    concentration is ``concentration(y_pred)``.

    NLL = log 4π + log(sinh κ / κ) − κ cos θ; ∂NLL/∂κ = coth κ − 1/κ − cos θ, zero when the
    mean cosine of the predicted distribution equals the observed one: κ is calibrated by the
    loss itself, and the direction's gradient is weighted by how sure the network is."""
    return _vmf_nll(concentration(y_pred), cosine(y_true, y_pred))


@keras.saving.register_keras_serializable(package="edtrain")
def angular_vmf_loss(y_true, y_pred):
    """θ (the angular loss) for the direction, plus the vMF negative log-likelihood of κ about
    that direction with the direction held fixed (its gradient stopped): κ learns how far off
    each direction is, the direction learns as with the angular loss, unweighted by κ."""
    cos = ops.stop_gradient(cosine(y_true, y_pred))
    return angle(y_true, y_pred) + _vmf_nll(concentration(y_pred, "angular_vmf"), cos)


def sense_probability(y_pred):
    """For an axis-and-sense output, the probability that the direction's sense is right:
    σ(|s|), from ½ (a coin toss) to 1."""
    return ops.sigmoid(ops.abs(ops.cast(y_pred[..., 3], "float32")))


@keras.saving.register_keras_serializable(package="edtrain")
def axial_sense_loss(y_true, y_pred):
    """min(θ, π − θ) for the axis, plus the binary cross-entropy of a head–tail logit s.

    The output's direction is an axis a turned to the sign of s (model.SensedAxis), so the
    axis angle is a's and s is a classifier of whether a points along the truth; its
    target, a·t > 0, is read back as (d·t > 0) = (s ≥ 0). Unlike θ + min(θ, π − θ), whose
    two terms cancel on a head–tail flip, a flipped electron still teaches the axis, and the
    sense is learned as a probability for every electron."""
    theta = angle(y_true, y_pred)
    logit = ops.cast(y_pred[..., 3], "float32")
    along = ops.cast((cosine(y_true, y_pred) > 0) == (logit >= 0), "float32")
    cross_entropy = ops.softplus(logit) - ops.stop_gradient(along) * logit
    return ops.minimum(theta, math.pi - theta) + cross_entropy


@keras.saving.register_keras_serializable(package="edtrain")
def axial_direction_loss(y_true, y_pred):
    """min(θ, π − θ) for an axis and θ for a direction, two heads of one network.

    The output's units 4–6 are the axis head's, 7–9 the direction head's, and its direction
    is read from both (model.AxisByDirection): the axis is learned by the axial angle alone,
    so a head–tail flip still teaches it (where θ + min(θ, π − θ) cancels), and the sense by
    the angle as the angular loss teaches it."""
    theta = angle(y_true, y_pred[..., 3:6])
    return ops.minimum(theta, math.pi - theta) + angle(y_true, y_pred[..., 6:9])


@keras.saving.register_keras_serializable(package="edtrain")
def axial_bins_loss(y_true, y_pred):
    """The cross-entropy of a distribution over axis bins (units 10 on, ``AXIS_BINS``)
    against a Watson-shaped target around the true axis, plus θ for the direction head
    (units 7–9), as in ``axial_direction_loss``.

    A regressed axis lands between the readings of a cluster the network cannot decide on
    (a short track along y against one along x or z); a distribution keeps them apart, and
    the axis is read as its principal axis (model.BinnedAxis)."""
    t = _unit(ops.cast(y_true, "float32"))
    logits = ops.cast(y_pred[..., 9 : 9 + len(AXIS_BINS)], "float32")
    cos = ops.matmul(t, ops.transpose(ops.convert_to_tensor(AXIS_BINS)))
    target = ops.softmax(AXIS_BIN_KAPPA * ops.square(cos), axis=-1)
    cross_entropy = -ops.sum(target * ops.log_softmax(logits, axis=-1), axis=-1)
    return cross_entropy + angle(y_true, y_pred[..., 6:9])


LOSSES: dict[str, LossFn] = {
    "cosine": cosine_loss,
    "angular": angular_loss,
    "focal_angular": focal_angular_loss,
    "hybrid": hybrid_loss,
    "angular_axial": angular_axial_loss,
    "axial_sense": axial_sense_loss,
    "axial_direction": axial_direction_loss,
    "axial_bins": axial_bins_loss,
    "vmf": vmf_loss,
    "angular_vmf": angular_vmf_loss,
}


# Each plane's image shows the direction projected onto that plane's (row, column) axes: rows
# run along −x on both faces and the columns along these wire-normal directions, in the face
# label frame with the consistent orientation (edtrain.render.orientation_flips; U's and V's
# wires at WIRE_ANGLE_DEG to the vertical, X's vertical). docs/training.md, "Plane supervision".
_SIN, _COS = math.sin(math.radians(WIRE_ANGLE_DEG)), math.cos(math.radians(WIRE_ANGLE_DEG))
PLANE_COLUMN_AXES = ((0.0, _SIN, _COS), (0.0, -_SIN, _COS), (0.0, 0.0, 1.0))  # U, V, X
PLANE_OUTPUTS = 2 * len(PLANE_COLUMN_AXES)


def plane_projections(y_true):
    """(…, 3, 2): the truth's direction as each plane draws it, (along the rows, along the
    columns) in cm: its projection onto the plane's (−x, column axis) plane; its length is
    how much of the direction the plane sees (0 for a track along the plane's wires)."""
    t = ops.cast(y_true, "float32")
    rows = ops.repeat(-t[..., None, :1], len(PLANE_COLUMN_AXES), axis=-2)
    columns = ops.einsum("...k,pk->...p", t, ops.convert_to_tensor(PLANE_COLUMN_AXES))
    return ops.concatenate([rows, columns[..., None]], axis=-1)


def plane_loss(y_true, planes):
    """Mean over the planes of the angle between each plane's predicted 2-D direction and
    the truth's projection (``plane_projections``), weighted by the projection's length: a
    track along a plane's wires is a dot there, whose direction the plane cannot say."""
    target = plane_projections(y_true)
    pred = ops.reshape(ops.cast(planes, "float32"), ops.shape(target))
    flat = ops.zeros_like(target[..., :1])  # 2-D vectors as 3-D ones in a plane, for `angle`
    theta = angle(ops.concatenate([target, flat], -1), ops.concatenate([pred, flat], -1))
    return ops.mean(ops.norm(target, axis=-1) * theta, axis=-1)


def get_loss(name: str, plane_weight: float = 0.0) -> LossFn:
    """The loss registered under ``name`` (an unknown name lists the valid ones); with a
    ``plane_weight`` the ``PLANE_OUTPUTS`` units after the loss's own (``output_size``) are
    the planes' 2-D directions and ``plane_weight`` × ``plane_loss`` is added."""
    try:
        loss = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}") from None
    if not plane_weight:
        return loss
    offset = output_size(name)

    def plane_supervised(y_true, y_pred):
        planes = y_pred[..., offset : offset + PLANE_OUTPUTS]
        return loss(y_true, y_pred) + plane_weight * plane_loss(y_true, planes)

    plane_supervised.__name__ = f"{name}_plane_supervised"
    return plane_supervised
