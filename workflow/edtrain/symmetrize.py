"""Test-time augmentation by the x-rotation (``input.test_augment``).

The rotation by π about the drift axis is exact (``edtrain.augment``), so a network's answer
on a cluster and its answer on the rotated cluster, rotated back, are two readings of one
event. Combined, they make the output exactly equivariant under the rotation and average out
what the network learned of it only approximately. Two directions a head–tail flip apart
average to a vector pointing sideways (measured on v21: worse than either reading), so only
outputs with an axis are combined: the two axes after turning one onto the other, then the
sense from what both readings say of it, read out by the network's own head layer
(docs/training.md, "Test-time augmentation").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import keras
import numpy as np

from edtrain.augment import X_ROTATION, rotatable, rotate_x
from edtrain.metrics import unit
from edtrain.model import AxisByDirection, BinnedAxis


def _sign(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1.0, -1.0)


def _aligned_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b with b turned into a's hemisphere: the mean of two axes."""
    return a + _sign(np.sum(a * b, axis=1))[:, None] * b


def _axes_and_directions(first: np.ndarray, second: np.ndarray, back: np.ndarray) -> np.ndarray:
    """AxisByDirection's inputs: the mean axis and the sum of the unit directions."""
    axis = _aligned_sum(unit(first[:, 3:6]), unit(second[:, 3:6] * back))
    direction = unit(first[:, 6:9]) + unit(second[:, 6:9] * back)
    return np.concatenate([axis, direction], axis=1)


def _sensed_axes(first: np.ndarray, second: np.ndarray, back: np.ndarray) -> np.ndarray:
    """SensedAxis' inputs: the mean axis and the mean of the two readings' head–tail logits,
    each as it bears on that axis (|s|, signed by whether the axis points the way the
    reading's sense does)."""
    readings = [(unit(first[:, :3]), first[:, 3]), (unit(second[:, :3] * back), second[:, 3])]
    axis = _aligned_sum(readings[0][0], readings[1][0])
    logit = sum(np.abs(s) * _sign(np.sum(axis * d, axis=1)) for d, s in readings) / 2
    return np.concatenate([axis, logit[:, None]], axis=1)


def _scatter(logits: np.ndarray, binned: BinnedAxis) -> np.ndarray:
    """The scatter matrix BinnedAxis reads, in float64, so that the combination stays exactly
    equivariant where a distribution is nearly flat (its principal axis then ill-conditioned)."""
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return (probs @ binned.outer.astype(np.float64)).reshape(-1, 3, 3)


def _pooled_axis(
    first: np.ndarray, second: np.ndarray, back: np.ndarray, binned: BinnedAxis
) -> np.ndarray:
    """The principal axis of the two readings' distributions over the axis bins taken
    together (their mean scatter matrix, the second's rotated back), the axis ``BinnedAxis``
    reads from one and as long as that matrix's largest eigenvalue: where the readings
    disagree it follows the surer one, where the mean of their two axes would land between
    them, and the disagreement lowers the concentration."""
    logits = slice(3 + AxisByDirection.INPUTS, 3 + AxisByDirection.INPUTS + binned.bins)
    flips = back[:, :, None] * back[:, None, :]
    scatter = (_scatter(first[:, logits], binned) + flips * _scatter(second[:, logits], binned)) / 2
    values, vectors = np.linalg.eigh(scatter)
    return vectors[..., -1] * values[:, -1:]


# per head layer (model.HEADS), its inputs from the two readings of a cluster, the second's
# vectors rotated back by the given factors
READINGS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "axis_by_direction": _axes_and_directions,
    "sensed_axis": _sensed_axes,
}


def combine(
    first: np.ndarray,
    second: np.ndarray,
    turned: np.ndarray,
    head: keras.layers.Layer,
    binned: BinnedAxis | None = None,
) -> np.ndarray:
    """One raw output per cluster from its reading (``first``) and its rotated image's
    (``second``, rotated back where ``turned``: a cluster that cannot be rotated was read
    twice as it is), through the ``head`` layer again; with a ``binned`` axis
    (``loss: axial_bins``) the axis is that of both readings' distributions. Columns after
    the head's (the bins' logits, plane supervision) are the first reading's."""
    back = np.where(turned[:, None], X_ROTATION, np.float32(1.0))
    first, second = first.astype(np.float64), second.astype(np.float64)
    inputs = READINGS[head.name](first, second, back)
    if binned is not None:  # a cluster read twice as it is keeps its one reading's axis
        inputs[:, :3] = np.where(
            turned[:, None], _pooled_axis(first, second, back, binned), first[:, 3:6]
        )
    inputs = inputs.astype(np.float32)
    heads = keras.ops.convert_to_numpy(head(inputs))
    return np.concatenate([heads, first[:, heads.shape[1] :]], axis=1).astype(np.float32)


def predict(network: keras.Model, batches: Iterable[np.ndarray], head: str) -> np.ndarray:
    """The network's raw outputs, each combined with its output on the cluster rotated by π
    about x (``combine``), for ``head`` the name of its head layer (``losses.head``)."""
    layer = network.get_layer(head)
    binned = next((lay for lay in network.layers if isinstance(lay, BinnedAxis)), None)
    out = []
    for images in batches:
        turned = rotatable(images)
        rotated = images.copy()
        rotated[turned] = rotate_x(images[turned])
        both = network.predict_on_batch(np.concatenate([images, rotated]))
        both = keras.ops.convert_to_numpy(both)
        out.append(combine(both[: len(images)], both[len(images) :], turned, layer, binned))
    return np.concatenate(out)
