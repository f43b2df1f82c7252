"""Test-time augmentation: two readings of a cluster make the output exactly equivariant."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from tiny_dataset import clusters, tiny_config

from edtrain import config as edconfig
from edtrain import losses, symmetrize
from edtrain.augment import X_ROTATION, rotatable, rotate_x
from edtrain.metrics import unit
from edtrain.model import build_model


@pytest.mark.parametrize("loss", edconfig.AXIS_HEAD_LOSSES)
def test_two_readings_make_the_output_equivariant(loss) -> None:
    """The combined output on a rotated cluster is the combined output rotated: exactly, for
    any weights, where one reading is not; a cluster that cannot be rotated is read once."""
    keras.utils.set_random_seed(3)
    config = tiny_config(loss=loss)
    head = losses.head(loss)
    outputs, bins = losses.output_size(loss), losses.axis_bins(loss)
    network = build_model(config["model"], config["input"], outputs, head, bins=bins)
    images = clusters(np.random.default_rng(0), 48)
    turned = rotatable(images)
    assert 0.5 < turned.mean() < 1
    rotated = images.copy()
    rotated[turned] = rotate_x(images[turned])

    combined = unit(symmetrize.predict(network, [images[:30], images[30:]], head)[:, :3])
    combined_rotated = unit(symmetrize.predict(network, [rotated], head)[:, :3])
    np.testing.assert_allclose(combined_rotated[turned], combined[turned] * X_ROTATION, atol=1e-5)

    once = unit(keras.ops.convert_to_numpy(network.predict_on_batch(images))[:, :3])
    once_rotated = unit(keras.ops.convert_to_numpy(network.predict_on_batch(rotated))[:, :3])
    assert np.abs(once_rotated[turned] - once[turned] * X_ROTATION).max() > 1e-2
    # 1e-4: an untrained network's nearly flat axis-bin distributions (axial_bins) leave
    # their principal axis sensitive in float32 to the batch a cluster was read in
    np.testing.assert_allclose(combined[~turned], once[~turned], atol=1e-4)


def test_the_axis_losses_are_those_with_a_head() -> None:
    """config names them without importing Keras; they must be the losses with a head."""
    assert set(edconfig.AXIS_HEAD_LOSSES) == set(losses.HEADS)
