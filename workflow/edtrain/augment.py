"""Training-time augmentation by the one symmetry that is exact for real data too.

A rotation by π about the drift axis x maps (x, y, z) → (x, −y, −z). It maps every wire plane
onto itself (a wire at angle θ to y stays a wire at θ), keeps the drift time, and negates the
wire-normal coordinate of every plane: in the images it reverses the order of the columns of
U, V and X (columns are the cluster's channels in order), whichever way the drift side's flips
turned them. The renderer centres a cluster in the 32 columns with ``(32 − extent) // 2`` on
the low side and then flips the whole image, so the rotated cluster occupies the same columns
as the original (one column away from a plain reversal where 32 − extent is odd). Clusters that
reach an image edge may have been cropped, so their reversal is not what the renderer would
draw: such samples are never rotated. The label rotates with the image in either frame
(the face frame only multiplies y by the side).
docs/training.md § Augmentation.
"""

from __future__ import annotations

import numpy as np

X_ROTATION = np.array([1.0, -1.0, -1.0], dtype=np.float32)


def rotatable(images: np.ndarray) -> np.ndarray:
    """Per sample (N, 3, H, W), whether no plane's cluster touches an image edge. A cluster
    cropped in time (longer than the image) starts on the first or last row and may have lost
    whole channels; one cropped in channels fills every column; either way its reversal would
    not be a rendering. Only clusters nearly as long or wide as the image are left out."""
    signal = images != 0
    columns, rows = np.any(signal, axis=2), np.any(signal, axis=3)  # (N, 3, W), (N, 3, H)
    edges = columns[..., 0] | columns[..., -1] | rows[..., 0] | rows[..., -1]
    return ~np.any(edges, axis=1)


def rotate_x(images: np.ndarray) -> np.ndarray:
    """The images of the clusters rotated by π about x: each plane's columns reversed in
    place, on the columns the cluster occupies (for a rendered, centred cluster that is a
    reversal of the image moved by at most one column)."""
    width = images.shape[-1]
    columns = np.any(images != 0, axis=2)  # (N, 3, W)
    first = np.argmax(columns, axis=-1)
    last = width - 1 - np.argmax(columns[..., ::-1], axis=-1)  # empty plane: 0 and W − 1
    # output column j shows input column first + last − j (mod W: only zeros wrap)
    source = (first + last)[..., None] - np.arange(width)
    index = np.broadcast_to((source % width)[:, :, None, :], images.shape)
    return np.take_along_axis(images, index, axis=-1)


def augment(
    images: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each rotatable sample rotated by π about x with probability 1/2, label with it."""
    chosen = (rng.random(len(images)) < 0.5) & rotatable(images)
    if not chosen.any():
        return images, labels
    images, labels = images.copy(), labels.copy()
    images[chosen] = rotate_x(images[chosen])
    labels[chosen] *= X_ROTATION
    return images, labels
