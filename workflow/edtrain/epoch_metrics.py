"""Streaming angular-error metrics in degrees for the per-epoch training history.

Percentiles cannot be streamed exactly, so each quantile metric accumulates a histogram of
the error in 0.1° bins and interpolates inside the bin: exact to 0.1°, backend-neutral and
jit-compatible, with no pass over the validation set beyond the one Keras already makes.
The definitions match ``edtrain.metrics`` (68 % containment = 68th percentile of the error;
sign-folded error = min(θ, 180° − θ)); the test-set numbers come from there, not from here.
"""

from __future__ import annotations

import keras
from keras import ops

from edtrain.losses import angle

_DEG_PER_RAD = 57.29577951308232
_BINS = 1800  # 0.1° bins over [0°, 180°]


def _errors_deg(y_true, y_pred, folded: bool):
    deg = angle(y_true, y_pred) * _DEG_PER_RAD
    return ops.minimum(deg, 180.0 - deg) if folded else deg


@keras.saving.register_keras_serializable(package="edtrain")
class AngularErrorQuantile(keras.metrics.Metric):
    """The q-th percentile (0–100) of the angular error in degrees, optionally sign-folded."""

    def __init__(self, q: float, folded: bool = False, name: str | None = None, **kwargs):
        default = f"{'folded_' if folded else ''}q{q:g}_deg"
        super().__init__(name=name or default, **kwargs)
        self.q = float(q)
        self.folded = bool(folded)
        self.counts = self.add_variable(
            shape=(_BINS,), initializer="zeros", dtype="float32", name="counts"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        deg = _errors_deg(y_true, y_pred, self.folded)
        index = ops.clip(ops.cast(deg * (_BINS / 180.0), "int32"), 0, _BINS - 1)
        self.counts.assign_add(ops.sum(ops.one_hot(index, _BINS, dtype="float32"), axis=0))

    def result(self):
        cdf = ops.cumsum(self.counts)
        target = cdf[-1] * (self.q / 100.0)
        below = ops.cast(ops.sum(ops.cast(cdf < target, "int32")), "int32")
        below = ops.minimum(below, _BINS - 1)
        before = ops.where(below > 0, ops.take(cdf, ops.maximum(below - 1, 0)), 0.0)
        in_bin = ops.maximum(ops.take(self.counts, below), 1.0)
        position = ops.cast(below, "float32") + ops.clip((target - before) / in_bin, 0.0, 1.0)
        return position * (180.0 / _BINS)

    def reset_state(self):
        self.counts.assign(ops.zeros((_BINS,), dtype="float32"))

    def get_config(self):
        return {**super().get_config(), "q": self.q, "folded": self.folded}


@keras.saving.register_keras_serializable(package="edtrain")
class MeanAngularError(keras.metrics.MeanMetricWrapper):
    """Mean angular error in degrees."""

    def __init__(self, name: str = "mean_deg", **kwargs):
        kwargs.pop("fn", None)
        super().__init__(fn=_mean_fn, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="edtrain")
class FractionOver90(keras.metrics.MeanMetricWrapper):
    """Fraction of samples with an error above 90° (head–tail failures)."""

    def __init__(self, name: str = "frac_over_90", **kwargs):
        kwargs.pop("fn", None)
        super().__init__(fn=_over_90_fn, name=name, **kwargs)


def _mean_fn(y_true, y_pred):
    return _errors_deg(y_true, y_pred, folded=False)


def _over_90_fn(y_true, y_pred):
    return ops.cast(_errors_deg(y_true, y_pred, folded=False) > 90.0, "float32")


def angular_metrics() -> list[keras.metrics.Metric]:
    """The per-epoch history metrics: mean, median, 68 %, folded 68 %, fraction > 90°."""
    return [
        MeanAngularError(),
        AngularErrorQuantile(50, name="median_deg"),
        AngularErrorQuantile(68),
        AngularErrorQuantile(68, folded=True),
        FractionOver90(),
    ]
