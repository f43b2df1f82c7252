"""The three-branch CNN: the predecessor's parameter counts, normalization saved with it."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops
from tiny_dataset import tiny_config

from edtrain.model import AdcNormalization, PlaneSlice, build_model

PREDECESSOR = {"kernel_size": 3, "filter_growth": 2.0, "batch_norm": True, "dense_layers": 2}
PREDECESSOR |= {"dense_units": 256, "dropout": 0.3}


@pytest.mark.parametrize(("layers", "filters", "millions"), [(3, 32, 6.64), (4, 64, 11.02)])
def test_parameter_counts_match_the_predecessor(layers: int, filters: int, millions: float):
    model = build_model({**PREDECESSOR, "conv_layers": layers, "filters": filters}, {})
    assert model.count_params() / 1e6 == pytest.approx(millions, abs=0.005)
    assert model.output_shape == (None, 3)


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
