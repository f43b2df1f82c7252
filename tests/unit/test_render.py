"""The upstream renderer on hand-made TPs: area, centring, compression, cropping, overlap, flips."""

from __future__ import annotations

import numpy as np
import pytest

from edtrain.render import orientation_flips, render_clusters, upstream_x_sign


def _render(tps, plane="X", offsets=None, **flips):
    a = np.array(tps, dtype=np.float64)
    offsets = np.array([0, len(tps)]) if offsets is None else np.asarray(offsets)
    ch, start, sot, stp, peak, integral = a.T
    return render_clusters(ch, start * 32, sot, stp, peak, integral, offsets, plane, **flips)


def test_single_tp_area_peak_and_centring():
    image = _render([(1700, 100, 10, 4, 500, 3000)])[0]
    assert image.dtype == np.float32 and image.shape == (128, 32)
    rows, cols = np.nonzero(image)
    # 10 samples over threshold → extent 11 → pad (128 − 11)//2 = 58; one channel → pad 15.
    assert rows.min() == 58 and rows.max() == 67
    assert set(cols.tolist()) == {15}
    assert image[58 + 4, 15] == 500  # the peak sits at start + samples_to_peak
    assert image[58, 15] == 60  # the pentagon starts at the X threshold
    assert image.sum() == pytest.approx(3000, rel=0.08)  # area follows adc_integral


def test_induction_threshold_and_flat_pentagon():
    image = _render([(10, 0, 4, 2, 71, 200)], plane="U")[0]  # integral below 70·SoT
    np.testing.assert_allclose(image[image > 0][[0, 1, 3]], 70.0)
    assert image.max() == 71


def test_unique_channels_become_consecutive_columns():
    image = _render(
        [(100, 0, 5, 2, 300, 1000), (105, 0, 5, 2, 300, 1000), (300, 0, 5, 2, 300, 1000)]
    )
    cols = np.unique(np.nonzero(image[0])[1])
    np.testing.assert_array_equal(cols, [14, 15, 16])  # pad (32 − 3)//2 = 14


def test_overlapping_tps_keep_the_maximum():
    a, b = (5, 0, 6, 3, 200, 900), (5, 2, 6, 1, 400, 1800)
    both = _render([a, b])[0]
    # Together the extent is 9 samples (pad 59); alone each spans 7 (pad 60).
    alone_a = np.roll(_render([a])[0], -1, axis=0)
    alone_b = np.roll(_render([b])[0], 1, axis=0)
    np.testing.assert_array_equal(both, np.maximum(alone_a, alone_b))


def test_large_clusters_are_cropped_from_the_high_end():
    wide = _render([(ch, 0, 6, 2, 300, 1000) for ch in range(40)])[0]  # 40 channels
    cols = np.nonzero(wide)[1]
    assert cols.min() == 0 and cols.max() == 31  # no padding, channels 32–39 dropped
    long = _render([(7, t, 10, 2, 300, 1500) for t in range(0, 200, 10)])[0]  # 200 samples
    rows = np.nonzero(long)[0]
    assert rows.min() == 0 and rows.max() == 127  # no padding, late samples dropped
    np.testing.assert_array_equal(long[:10], _render([(7, 0, 10, 2, 300, 1500)])[0][58:68])


def test_flips_reverse_the_axes():
    base = _render([(1, 0, 10, 2, 500, 2500), (2, 5, 10, 8, 300, 1500)])[0]
    flipped = _render(
        [(1, 0, 10, 2, 500, 2500), (2, 5, 10, 8, 300, 1500)],
        flip_time=np.array([True]),
        flip_channel=np.array([True]),
    )[0]
    np.testing.assert_array_equal(flipped, base[::-1, ::-1])


def test_several_clusters_and_an_empty_one_render_independently():
    tps = [(1, 0, 10, 2, 500, 2500), (7, 50, 8, 3, 300, 1500), (8, 52, 8, 3, 300, 1500)]
    images = _render(tps, offsets=[0, 1, 1, 3])
    assert images.shape == (3, 128, 32)
    np.testing.assert_array_equal(images[0], _render(tps[:1])[0])
    assert not images[1].any()
    np.testing.assert_array_equal(images[2], _render(tps[1:])[0])


def test_flip_conventions():
    side = np.array([-1, 1, -1, 1])
    apa = np.array([0, 0, 1, 1])
    t, c = orientation_flips("X", side, apa, "consistent")
    np.testing.assert_array_equal(t, [False, True, False, True])
    assert not c.any()
    t, c = orientation_flips("U", side, apa, "consistent")
    np.testing.assert_array_equal(c, t)
    # Upstream reads the drift side with an inverted rule on odd APAs.
    x_channels = np.array([1700, 2200, 1700, 2200])
    np.testing.assert_array_equal(upstream_x_sign(x_channels, apa), [-1, 1, 1, -1])
    t, c = orientation_flips("U", upstream_x_sign(x_channels, apa), apa, "upstream")
    np.testing.assert_array_equal(t, [False, True, True, False])
    np.testing.assert_array_equal(c, [True, False, True, False])
    with pytest.raises(ValueError, match="convention"):
        orientation_flips("X", side, apa, "sideways")
