"""Direction losses with finite values and gradients everywhere (keras.ops only).

The predecessor's angular loss was ``arccos(clip(cos, -1, 1))``: d/dx arccos(x) is infinite
at |x| = 1, so one sample predicted exactly right (or exactly reversed) turned the whole
gradient into inf/NaN, and gradient clipping cannot repair an inf. Here the angle is
``atan2(|p̂ × t̂|, p̂ · t̂)`` with a smoothed norm, whose gradient is bounded at 0° and 180°, and
vectors are normalized with a smoothed length so a zero-length prediction is finite too.

Every loss returns one value per sample; Keras averages them over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

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
    """cos of the angle between truth and prediction, per sample."""
    return ops.sum(_unit(y_true) * _unit(y_pred), axis=-1)


def angle(y_true, y_pred):
    """Angle between truth and prediction in radians, in [0, π], finite gradient everywhere."""
    t, p = _unit(y_true), _unit(y_pred)
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


# log(sinh κ / κ): its series below _SERIES_BELOW, the exact form above (docs/training.md).
_SERIES_BELOW = 0.5
_LOG_4PI = 2.5310242469692907


def log_sinhc(kappa):
    """log(sinh κ / κ) for κ ≥ 0, finite with finite gradient for every float32 κ.

    The direct form overflows (sinh κ) near κ ≈ 89 in float32 and is 0/0 at κ = 0. Each branch
    is evaluated on inputs clamped to its own range, so the branch not taken is finite too (a
    NaN there would still poison the gradient through ``where``)."""
    small = ops.minimum(kappa, _SERIES_BELOW)
    k2 = ops.square(small)
    series = k2 / 6.0 - ops.square(k2) / 180.0 + k2 * ops.square(k2) / 2835.0
    large = ops.maximum(kappa, _SERIES_BELOW)
    exact = large - 0.6931471805599453 + ops.log(-ops.expm1(-2.0 * large)) - ops.log(large)
    return ops.where(kappa < _SERIES_BELOW, series, exact)


def concentration(y_pred):
    """The vMF concentration κ of a raw 3-vector output: its length (IceCube's convention)."""
    v = ops.cast(y_pred, "float32")
    return ops.sqrt(ops.sum(ops.square(v), axis=-1) + _EPS_SQUARED)


@keras.saving.register_keras_serializable(package="edtrain")
def vmf_loss(y_true, y_pred):
    """Negative log-likelihood of the truth under a von Mises–Fisher distribution on the
    sphere whose mean is the prediction's direction and whose concentration κ is its length.

    NLL = log 4π + log(sinh κ / κ) − κ cos θ; ∂NLL/∂κ = coth κ − 1/κ − cos θ, zero when the
    mean cosine of the predicted distribution equals the observed one: κ is calibrated by the
    loss itself, and the direction's gradient is weighted by how sure the network is."""
    kappa = concentration(y_pred)
    return _LOG_4PI + log_sinhc(kappa) - kappa * cosine(y_true, y_pred)


LOSSES: dict[str, LossFn] = {
    "cosine": cosine_loss,
    "angular": angular_loss,
    "focal_angular": focal_angular_loss,
    "hybrid": hybrid_loss,
    "vmf": vmf_loss,
}


def get_loss(name: str) -> LossFn:
    """The loss registered under ``name``; an unknown name lists the valid ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}") from None
