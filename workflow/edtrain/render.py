"""Upstream's cluster → 128×32 image renderer (docs/data_format.md §5), vectorized over TPs.

The same function renders synthetic clusters and real ROOT clusters, so images from both sources
are pixel-for-pixel comparable. Upstream draws each TP as a "pentagon" over its samples over
threshold: threshold → rise shoulder → adc_peak → fall shoulder → threshold, shoulder heights from
a 21×21 grid search that matches the area above threshold to ``adc_integral − threshold·SoT``;
overlapping TPs keep the maximum. The unique channels of a cluster become consecutive columns,
the bounding box is centred and anything beyond the window is cropped from the high end.

Orientation (the flips) is decided by :func:`orientation_flips`; labels are never flipped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from edtrain import detector
from edtrain.formats import columns

IMAGE_ROWS = 128
IMAGE_COLUMNS = 32
FLIP_CONVENTIONS: tuple[str, ...] = ("consistent", "upstream")
# Upstream's candidate shoulder heights (fractions of peak − threshold), i-major like its loops.
_GRID_I = np.repeat(np.arange(21) / 20.0, 21)
_GRID_J = np.tile(np.arange(21) / 20.0, 21)
_SHOULDER_CHUNK = 2048


def _pentagon_shoulders(
    start: np.ndarray,
    peak_t: np.ndarray,
    end: np.ndarray,
    peak: np.ndarray,
    integral: np.ndarray,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Shoulder heights (absolute ADC) upstream's 21×21 grid search picks.

    Many grid points give the same area, so which one wins is decided by floating-point noise:
    the shoelace sum is evaluated in upstream's order on absolute times and the first minimum in
    i-major order is kept, which reproduces upstream's choice exactly. Chunked to bound memory.
    """
    h_rise = np.full(start.shape, threshold)
    h_fall = np.full(start.shape, threshold)
    for lo in range(0, start.size, _SHOULDER_CHUNK):
        sl = slice(lo, lo + _SHOULDER_CHUNK)
        ts, tp, te = start[sl], peak_t[sl], end[sl]
        t1, t2 = (ts + tp) / 2.0, (tp + te) / 2.0
        height = peak[sl] - threshold
        residual = integral[sl] - threshold * (te - ts)
        h1 = _GRID_I[:, None] * height  # (441, n)
        h2 = _GRID_J[:, None] * height
        area = ts * h1 - t1 * 0.0
        area = area + (t1 * height - tp * h1)
        area = area + (tp * h2 - t2 * height)
        area = area + (t2 * 0.0 - te * h2)
        area = area + (te * 0.0 - ts * 0.0)
        best = np.argmin(np.abs(np.abs(area) * 0.5 - residual), axis=0)
        flat = residual <= 0
        h_rise[sl] = np.where(flat, threshold, threshold + _GRID_I[best] * height)
        h_fall[sl] = np.where(flat, threshold, threshold + _GRID_J[best] * height)
    return h_rise, h_fall


def _pentagon_values(
    t: np.ndarray,
    start: np.ndarray,
    peak_t: np.ndarray,
    end: np.ndarray,
    rise_t: np.ndarray,
    fall_t: np.ndarray,
    h_rise: np.ndarray,
    h_fall: np.ndarray,
    peak: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """ADC value of each pixel sample t of its TP's pentagon (upstream's piecewise segments)."""

    def ramp(t0, t1, v0, v1, at_zero_span):
        span = t1 - t0
        safe = np.where(span > 0, span, 1.0)
        return np.where(span > 0, v0 + (t - t0) / safe * (v1 - v0), at_zero_span)

    return np.select(
        [t < rise_t, t < peak_t, t == peak_t, t <= fall_t],
        [
            ramp(start, rise_t, threshold, h_rise, h_rise),
            ramp(rise_t, peak_t, h_rise, peak, peak),
            peak,
            ramp(peak_t, fall_t, peak, h_fall, h_fall),
        ],
        ramp(fall_t, end, h_fall, threshold, np.full_like(peak, threshold)),
    )


def render_clusters(
    channel: np.ndarray,
    time_start_ticks: np.ndarray,
    sot: np.ndarray,
    samples_to_peak: np.ndarray,
    adc_peak: np.ndarray,
    adc_integral: np.ndarray,
    cluster_offsets: np.ndarray,
    plane: str,
    flip_time: np.ndarray | None = None,
    flip_channel: np.ndarray | None = None,
) -> np.ndarray:
    """Images (n_clusters, 128, 32) float32 of clusters given as concatenated per-TP arrays.

    ``cluster_offsets`` (n_clusters + 1) delimits each cluster's TPs; ``time_start_ticks`` is in
    16 ns ticks (÷ 32 → ADC samples), as in the ROOT files. ``flip_time``/``flip_channel`` are
    per-cluster booleans (see :func:`orientation_flips`). An empty cluster renders as zeros.
    """
    if plane not in detector.THRESHOLD_ADC:
        raise ValueError(f"unknown plane {plane!r}: expected one of {detector.PLANES}")
    offsets = np.asarray(cluster_offsets, dtype=np.int64)
    n_clusters = offsets.size - 1
    images = np.zeros((n_clusters, IMAGE_ROWS, IMAGE_COLUMNS), dtype=np.float32)
    n_tps = offsets[-1] - offsets[0] if n_clusters > 0 else 0
    if n_tps == 0:
        return images
    threshold = detector.THRESHOLD_ADC[plane]
    sl = slice(offsets[0], offsets[-1])
    channel = np.asarray(channel, dtype=np.int64)[sl]
    start = np.floor(np.asarray(time_start_ticks, dtype=np.float64)[sl] / 32.0)
    sot = np.asarray(sot, dtype=np.float64)[sl]
    stp = np.asarray(samples_to_peak, dtype=np.float64)[sl]
    peak = np.maximum(np.asarray(adc_peak, dtype=np.float64)[sl], 0.0)
    integral = np.asarray(adc_integral, dtype=np.float64)[sl]
    cluster = np.repeat(np.arange(n_clusters), np.diff(offsets))
    nonempty = np.diff(offsets) > 0

    end = start + sot
    t_min = np.full(n_clusters, np.inf)
    np.minimum.at(t_min, cluster, start)
    t_max = np.full(n_clusters, -np.inf)
    np.maximum.at(t_max, cluster, end)
    n_ticks = np.where(nonempty, t_max - t_min + 1, 0)

    order = np.lexsort((channel, cluster))
    sorted_cluster = cluster[order]
    sorted_channel = channel[order]
    new_value = np.ones(order.size, dtype=bool)
    new_value[1:] = (sorted_channel[1:] != sorted_channel[:-1]) | (
        sorted_cluster[1:] != sorted_cluster[:-1]
    )
    dense = np.cumsum(new_value) - 1
    first_in_sorted = np.searchsorted(sorted_cluster, sorted_cluster)
    column = np.empty_like(dense)
    column[order] = dense - dense[first_in_sorted]
    n_channels = np.zeros(n_clusters, dtype=np.int64)
    np.maximum.at(n_channels, cluster, column + 1)

    pad_rows = np.maximum(0, (IMAGE_ROWS - n_ticks) // 2).astype(np.int64)
    pad_cols = np.maximum(0, (IMAGE_COLUMNS - n_channels) // 2)

    peak_t = np.clip(start + stp, start, end)
    rise_t = np.rint((start + peak_t) / 2.0)
    fall_t = np.rint((peak_t + end) / 2.0)
    h_rise, h_fall = _pentagon_shoulders(start, peak_t, end, peak, integral, threshold)

    widths = sot.astype(np.int64)
    tp_of_pixel = np.repeat(np.arange(sot.size), widths)
    t = start[tp_of_pixel] + (
        np.arange(tp_of_pixel.size) - np.repeat(np.cumsum(widths) - widths, widths)
    )
    values = _pentagon_values(
        t,
        start[tp_of_pixel],
        peak_t[tp_of_pixel],
        end[tp_of_pixel],
        rise_t[tp_of_pixel],
        fall_t[tp_of_pixel],
        h_rise[tp_of_pixel],
        h_fall[tp_of_pixel],
        peak[tp_of_pixel],
        threshold,
    )
    pix_cluster = cluster[tp_of_pixel]
    row = (t - t_min[pix_cluster]).astype(np.int64) + pad_rows[pix_cluster]
    col = column[tp_of_pixel] + pad_cols[pix_cluster]
    inside = (row < IMAGE_ROWS) & (col < IMAGE_COLUMNS)
    flat = (pix_cluster * IMAGE_ROWS + row) * IMAGE_COLUMNS + col
    np.maximum.at(images.reshape(-1), flat[inside], values[inside].astype(np.float32))

    if flip_time is not None:
        ft = np.asarray(flip_time, dtype=bool)
        images[ft] = images[ft, ::-1, :]
    if flip_channel is not None:
        fc = np.asarray(flip_channel, dtype=bool)
        images[fc] = images[fc, :, ::-1]
    return images


def upstream_x_sign(x_channel: np.ndarray, apa: np.ndarray) -> np.ndarray:
    """Upstream's drift side of an X cluster: the physical rule, inverted for odd APAs."""
    physical = detector.x_side_of_collection_channel(x_channel)
    return np.where(np.asarray(apa) % 2 == 0, physical, -physical)


def orientation_flips(
    plane: str, x_sign: np.ndarray, apa: np.ndarray, convention: str = "consistent"
) -> tuple[np.ndarray, np.ndarray]:
    """(flip_time, flip_channel) per cluster for drift side ``x_sign`` (±1) and APA number.

    ``consistent``: only the drift side matters, identically for every APA: the x > 0 side is
    flipped in time on all planes (rows then always run along −x) and in channel on U/V (their
    wrapped wires run mirrored on that face), so X columns always run along +z.
    ``upstream``: upstream's table (is_top_apa = even APA), to be fed :func:`upstream_x_sign`.
    """
    x_sign = np.asarray(x_sign)
    far = x_sign == 1
    if convention == "consistent":
        return far, far if plane in ("U", "V") else np.zeros_like(far)
    if convention != "upstream":
        raise ValueError(f"unknown flip convention {convention!r}: expected {FLIP_CONVENTIONS}")
    top = np.asarray(apa) % 2 == 0
    near = x_sign == -1
    if plane == "X":
        return far, np.zeros_like(far)
    if plane == "V":
        flip_time = (top & far) | (~top & far)
        flip_channel = (top & far) | (~top & near)
        return flip_time, flip_channel
    if plane == "U":
        flip_time = (top & far) | (~top & far)
        flip_channel = (top & near) | (~top & far)
        return flip_time, flip_channel
    raise ValueError(f"unknown plane {plane!r}: expected one of {detector.PLANES}")


def drift_sides(trees: dict[str, dict], convention: str = "consistent") -> dict[str, np.ndarray]:
    """Drift side used for each accepted cluster's flips: X from its first TP's channel, U/V
    inherited from the X cluster with the same match_id (+1 when unmatched, as upstream)."""
    x = trees["X"]
    first_channel = x["tp_detector_channel"][x["tp_offsets"][:-1]]
    first_apa = x["tp_detector"][x["tp_offsets"][:-1]]
    if convention == "upstream":
        x_sign = upstream_x_sign(first_channel, first_apa)
    else:
        x_sign = detector.x_side_of_collection_channel(first_channel)
    signs = {"X": x_sign}
    matched = x["match_id"] >= 0
    lookup = pd.Series(x_sign[matched], index=x["match_id"][matched])
    lookup = lookup[~lookup.index.duplicated()]
    for plane in ("U", "V"):
        mid = trees[plane]["match_id"]
        signs[plane] = lookup.reindex(mid).fillna(1).to_numpy().astype(np.int64)
    return signs


def render_planes(
    trees: dict[str, dict], convention: str = "consistent"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Upstream's image step for one cluster file: per plane, images (N, 128, 32) float32 and
    the 18-column metadata (docs/data_format.md §2), rows in tree order.

    ``trees[plane]`` holds the branches of one plane's accepted clusters as flat arrays: one
    value per cluster for scalars, flat ``tp_*`` arrays delimited by ``tp_offsets`` (see
    ``edtrain.formats.root.read_planes``, which reads real or synthetic files in this layout).
    """
    signs = drift_sides(trees, convention)
    out = {}
    for plane in detector.PLANES:
        d = trees[plane]
        offsets = d["tp_offsets"]
        apa = d["tp_detector"][offsets[:-1]] if offsets[-1] else np.zeros(0, dtype=np.int64)
        flip_time, flip_channel = orientation_flips(plane, signs[plane], apa, convention)
        images = render_clusters(
            d["tp_detector_channel"],
            d["tp_time_start"],
            d["tp_samples_over_threshold"],
            d["tp_samples_to_peak"],
            d["tp_adc_peak"],
            d["tp_adc_integral"],
            offsets,
            plane,
            flip_time,
            flip_channel,
        )
        meta = np.zeros((images.shape[0], len(columns.NAMES_18)), dtype=np.float32)
        meta[:, columns.EVENT] = d["event"]
        meta[:, columns.IS_MARLEY] = d["marley_tp_fraction"] > 0.5
        meta[:, columns.IS_MAIN_TRACK] = d["is_main_cluster"]
        meta[:, columns.IS_ES] = d["is_es_interaction"]
        meta[:, columns.POS] = np.stack([d["true_pos_x"], d["true_pos_y"], d["true_pos_z"]], 1)
        meta[:, columns.MOM] = np.stack([d["true_mom_x"], d["true_mom_y"], d["true_mom_z"]], 1)
        meta[:, columns.CLUSTER_ENERGY] = images.sum(axis=(1, 2)) / detector.ADC_PER_MEV[plane]
        meta[:, columns.PARTICLE_ENERGY] = d["true_particle_energy"]
        meta[:, columns.PLANE] = columns.PLANE_ID[plane]
        meta[:, columns.MATCH_ID] = d["match_id"]
        meta[:, columns.NU_ENERGY] = d["true_neutrino_energy"]
        meta[:, columns.NU_MOM] = np.stack(
            [d["true_neutrino_mom_x"], d["true_neutrino_mom_y"], d["true_neutrino_mom_z"]], 1
        )
        out[plane] = (images, meta)
    return out
