"""The x-rotation augmentation is exact: what it makes of a rendered image is the renderer's
image of the rotated cluster, and the label turns with it."""

from __future__ import annotations

import numpy as np
import pytest

from edtrain import detector
from edtrain.augment import X_ROTATION, augment, rotatable, rotate_x
from edtrain.batch_stream import ImageBatches
from edtrain.frame import reflect
from edtrain.render import render_clusters


def _clusters(rng: np.random.Generator, n: int):
    """``n`` random clusters as concatenated TP arrays: 1–45 channels wide (some wider than
    the image), some longer than the image in time, several TPs per channel."""
    sizes = rng.integers(1, 40, size=n)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    total = offsets[-1]
    width = np.repeat(rng.integers(1, 46, size=n), sizes)
    channel = 1000 + rng.integers(0, width)
    length = np.repeat(rng.choice([20, 60, 200], size=n), sizes)  # samples; 200 > 128 rows
    sot = rng.integers(2, 15, size=total)
    start_samples = rng.integers(0, length)
    adc_peak = rng.uniform(80, 600, size=total)
    return {
        "channel": channel,
        "time_start_ticks": (1_000 + start_samples) * detector.TICKS_PER_SAMPLE,
        "sot": sot,
        "samples_to_peak": rng.integers(0, sot),
        "adc_peak": adc_peak,
        "adc_integral": adc_peak * sot * rng.uniform(0.4, 0.9, size=total),
        "cluster_offsets": offsets,
    }


@pytest.mark.parametrize("plane", detector.PLANES)
def test_rotation_is_the_rendering_of_the_rotated_cluster(plane):
    """π about x negates the wire-normal coordinate, i.e. the channel order, and keeps the
    drift time: render the clusters with negated channels and compare pixel for pixel."""
    rng = np.random.default_rng(7)
    n = 400
    tps = _clusters(rng, n)
    flip_time, flip_channel = rng.random(n) < 0.5, rng.random(n) < 0.5
    images = render_clusters(**tps, plane=plane, flip_time=flip_time, flip_channel=flip_channel)
    rotated = render_clusters(
        **(tps | {"channel": -tps["channel"]}),
        plane=plane,
        flip_time=flip_time,
        flip_channel=flip_channel,
    )
    # every plane of a stack is the same plane's image here: per-cluster checks
    stack = np.repeat(images[:, None], 3, axis=1)
    ok = rotatable(stack)
    assert 0.2 < ok.mean() < 0.95, "the sample should hold both cropped and whole clusters"
    extent = np.count_nonzero(np.any(images[ok] != 0, axis=1), axis=1)
    odd = (32 - extent) % 2 == 1
    assert odd.any() and (~odd).any() and (flip_channel[ok] & odd).any()
    np.testing.assert_array_equal(rotate_x(stack[ok])[:, 0], rotated[ok])
    # a plain reversal is off by one column where 32 − extent is odd: the test can tell
    assert not np.array_equal(images[ok][odd][:, :, ::-1], rotated[ok][odd])


class _AlwaysRotate:
    """A generator whose draws all choose rotation."""

    def random(self, size: int) -> np.ndarray:
        return np.zeros(size)


def test_a_cropped_plane_keeps_its_sample_unrotated():
    image = np.zeros((2, 3, 128, 32), dtype=np.float16)
    image[:, :, 60, 10:20] = np.arange(1, 11)
    image[1, 2, 60, 0:5] = 5.0  # X touches an edge: maybe cropped
    np.testing.assert_array_equal(rotatable(image), [True, False])
    labels = np.array([[0.6, 0.0, 0.8], [0.6, 0.0, 0.8]], dtype=np.float32)
    out_images, out_labels = augment(image, labels, _AlwaysRotate())
    np.testing.assert_array_equal(out_labels, labels * np.array([[1, -1, -1], [1, 1, 1]]))
    np.testing.assert_array_equal(out_images[1], image[1])
    assert not np.array_equal(out_images[0], image[0])


def test_the_label_rotates_the_same_in_both_frames():
    rng = np.random.default_rng(3)
    labels = rng.normal(size=(50, 3)).astype(np.float32)
    side = rng.choice(np.array([-1, 1]), size=50)
    for frame in ("detector", "face"):
        np.testing.assert_array_equal(
            reflect(labels * X_ROTATION, side, frame), reflect(labels, side, frame) * X_ROTATION
        )


class _Images:
    """The ``read`` of a dataset's images, from an array."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def read(self, rows: np.ndarray) -> np.ndarray:
        return self.images[rows]


def test_training_batches_are_augmented_reproducibly():
    images = np.zeros((64, 3, 128, 32), dtype=np.float16)
    images[:, :, 50:60, 10:13] = [1.0, 2.0, 3.0]  # a cluster on columns 10–12
    images = _Images(images)
    labels = np.tile(np.array([[0.6, 0.0, 0.8]], dtype=np.float32), (64, 1))
    rows = np.arange(64)
    first = ImageBatches(images, rows, labels, 32, seed=5, augment=True)
    again = ImageBatches(images, rows, labels, 32, seed=5, augment=True)
    first.set_epoch(3)
    again.set_epoch(3)
    x1, y1 = first[1]
    x2, y2 = again[1]
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    turned = y1[:, 2] < 0
    assert 0 < np.count_nonzero(turned) < 32, "about half the batch rotated"
    mirrored = [*range(10), 12, 11, 10, *range(13, 32)]  # the same columns, reversed
    expected = images.images[: np.count_nonzero(turned)][..., mirrored]
    np.testing.assert_array_equal(x1[turned], expected)
    first.set_epoch(4)
    assert not np.array_equal(first[1][1], y1), "another epoch, other rotations"
    with pytest.raises(ValueError, match="augmentation needs a seed"):
        ImageBatches(images, rows, labels, 32, augment=True)
