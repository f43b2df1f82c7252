"""Charge, drift, wire projection, shaped waveforms and the trigger-primitive finder
(docs/physics.md §2).

Everything runs on the whole batch at once: deposits are binned onto (event, plane, APA, channel,
sample) cells with ``np.unique``/``bincount``; each channel's signal is cut into segments separated
by quiet gaps longer than the response, segments of similar length share one dense array, the
response is applied tap by tap to that whole array, and TPs are the runs above threshold found with
``np.diff`` on the mask. Truth per TP (MARLEY charge fraction, deposited energy, dominant source)
comes from cumulative sums of the unshaped cells over the TP's window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edtrain import detector
from edtrain.simulation.transport import DENSITY_G_CM3, Deposits

W_ION_MEV = 23.6e-6
MODBOX_ALPHA = 0.93
MODBOX_BETA = 0.212  # (kV/cm)(g/cm²)/MeV
E_FIELD_KV_CM = 0.5
DIFFUSION_L_CM2_S = 4.0
DIFFUSION_T_CM2_S = 8.8
LIFETIME_US = 10_000.0

# Effective response, calibrated on the real ES dump (benchmarks/calibrate_realism.py): the
# nominal 2.2 µs / 150 e⁻ per ADC of docs/physics.md §2 give TPs ~30 % narrower and ~3× smaller
# integrals than the real file (whose clusters follow upstream's 3600 ADC/MeV); field response and
# the real gain widen and raise them.
PEAKING_SAMPLES = 7.0  # ≈ 3.6 µs
SHAPING_ORDER = 4
KERNEL_SAMPLES = 32
ELECTRONS_PER_ADC = 55.0  # collection, at the peak of the response
# Induction: with upstream's clustering on both sides, a 5-sample lobe at 0.36 of collection's
# peak gave U/V main clusters 0.84×/0.66× the real dump's median adc_integral (0.63–0.66× in a
# second, CC-electron file) and 0.8–0.9× its SoT; these give 1.15×/0.89× and 1.0×/0.89×.
INDUCTION_LOBE_SAMPLES = 7.0
INDUCTION_PEAK_RATIO = 0.38  # positive-lobe peak of induction relative to collection
NOISE_ADC = 4.0
TRUTH_LAG_SAMPLES = 4  # charge arrives up to about one peaking time before threshold
_MAX_TICK = 1 << 14
_PLANE_IDS = {p: i for i, p in enumerate(detector.PLANES)}


def recombination(dedx_mev_cm: np.ndarray) -> np.ndarray:
    """ModBox survival fraction R = ln(α + ξ)/ξ, ξ = β·(dE/dx)/(ρ·E)."""
    xi = MODBOX_BETA * np.maximum(dedx_mev_cm, 1e-3) / (DENSITY_G_CM3 * E_FIELD_KV_CM)
    return np.log(MODBOX_ALPHA + xi) / xi


def _response(t: np.ndarray) -> np.ndarray:
    """Unipolar semi-Gaussian CR-(RC)^n response, 1 at the peaking time, 0 for t ≤ 0."""
    x = np.maximum(t, 0.0) / PEAKING_SAMPLES
    return np.where(t > 0, x**SHAPING_ORDER * np.exp(SHAPING_ORDER * (1.0 - x)), 0.0)


def response_kernel(plane: str) -> np.ndarray:
    """ADC per drifted electron arriving in a sample, at lags 0..KERNEL_SAMPLES−1.

    Collection is unipolar; induction is bipolar (positive lobe first, zero net area) with a
    positive peak INDUCTION_PEAK_RATIO of collection's, which is why upstream converts U/V with
    900 ADC/MeV instead of 3600.
    """
    t = np.arange(KERNEL_SAMPLES) + 0.5
    unipolar = _response(t) / ELECTRONS_PER_ADC
    if plane == "X":
        return unipolar
    bipolar = _response(t) - _response(t - INDUCTION_LOBE_SAMPLES)
    return bipolar / bipolar.max() * INDUCTION_PEAK_RATIO / ELECTRONS_PER_ADC


@dataclass
class TriggerPrimitives:
    """Concatenated TPs of a batch; time_start in ADC samples (× 32 gives the 16 ns ticks)."""

    event: np.ndarray
    plane: np.ndarray  # 0 U, 1 V, 2 X
    apa: np.ndarray
    channel: np.ndarray  # within the APA, 0–2559
    time_start: np.ndarray
    sot: np.ndarray
    samples_to_peak: np.ndarray
    adc_peak: np.ndarray
    adc_integral: np.ndarray
    marley_fraction: np.ndarray  # fraction of the TP's charge from MARLEY sources
    energy: np.ndarray  # true deposited energy in the TP window [MeV]
    source: np.ndarray  # dominant source id (−1 if none)

    def take(self, index: np.ndarray) -> TriggerPrimitives:
        return TriggerPrimitives(**{k: v[index] for k, v in vars(self).items()})

    @property
    def size(self) -> int:
        return int(self.event.size)


def drifted_charge(
    rng: np.random.Generator, deposits: Deposits
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Electrons reaching the wires, diffused position (n, 3) and arrival time [samples]."""
    charge = deposits.energy / W_ION_MEV * recombination(deposits.dedx)
    t_samples = detector.drift_samples(deposits.position[:, 0])
    t_seconds = (t_samples - detector.TRIGGER_OFFSET_SAMPLES) * detector.SAMPLE_US * 1e-6
    charge = charge * np.exp(-t_seconds * 1e6 / LIFETIME_US)
    sigma_l = np.sqrt(2 * DIFFUSION_L_CM2_S * t_seconds) / detector.CM_PER_SAMPLE
    sigma_t = np.sqrt(2 * DIFFUSION_T_CM2_S * t_seconds)
    z = rng.standard_normal((3, charge.size))
    position = deposits.position.copy()
    position[:, 1] += sigma_t * z[0]
    position[:, 2] += sigma_t * z[1]
    return charge, position, t_samples + sigma_l * z[2]


def trigger_primitives(
    rng: np.random.Generator,
    deposits: Deposits,
    source_event: np.ndarray,
    source_is_marley: np.ndarray,
) -> TriggerPrimitives:
    """All TPs the deposits of a batch produce on the U, V and X planes of their APAs."""
    charge, position, t_samples = drifted_charge(rng, deposits)
    x, y, z = position.T
    inside = (
        (np.abs(x) < detector.DRIFT_LENGTH_CM)
        & (y > detector.DETECTOR_Y_CM[0])
        & (y < detector.DETECTOR_Y_CM[1])
        & (z > detector.DETECTOR_Z_CM[0])
        & (z < detector.DETECTOR_Z_CM[1])
        & (charge > 0)
    )
    x, y, z, t_samples = x[inside], y[inside], z[inside], t_samples[inside]
    charge, energy, source = charge[inside], deposits.energy[inside], deposits.source[inside]
    apa = detector.apa_index(y, z)
    event = source_event[source]
    keys, ticks = [], []
    for plane in detector.PLANES:
        channel = detector.plane_channel(plane, x, y, z)
        row = ((event * 3 + _PLANE_IDS[plane]) * detector.N_APA + apa) * detector.CHANNELS_PER_APA
        keys.append(row + channel)
        tick = np.floor(t_samples + detector.PLANE_TIME_OFFSET_SAMPLES[plane])
        ticks.append(np.clip(tick, 0, _MAX_TICK - 1).astype(np.int64))
    row_key = np.concatenate(keys)
    tick = np.concatenate(ticks)
    q = np.tile(charge, 3)
    cell_key, cell = np.unique(row_key * _MAX_TICK + tick, return_inverse=True)
    cell_q = np.bincount(cell, q)
    cell_qm = np.bincount(cell, q * np.tile(source_is_marley[source], 3))
    cell_e = np.bincount(cell, np.tile(energy, 3))
    # Dominant deposit of each cell: the last of each cell after sorting by (cell, charge).
    order = np.lexsort((q, cell))
    last = np.r_[cell[order][1:] != cell[order][:-1], True]
    cell_source = np.empty(cell_key.size, dtype=np.int64)
    cell_source[cell[order][last]] = np.tile(source, 3)[order][last]
    return _waveform_tps(rng, cell_key, cell_q, cell_qm, cell_e, cell_source)


@dataclass
class _Layout:
    """Where segments ``segs`` (one plane, one width bucket) sit in a dense (n, width) array."""

    segs: np.ndarray
    width: int
    segment: np.ndarray  # segment of every cell
    column: np.ndarray  # column of every cell within its segment
    seg_start: np.ndarray  # first sample of every segment
    seg_row: np.ndarray  # (event, plane, APA, channel) key of every segment


def _waveform_tps(rng, cell_key, cell_q, cell_qm, cell_e, cell_source) -> TriggerPrimitives:
    """Segment the cells per channel, shape, add noise, digitize and find TPs, bucket by bucket.

    A segment ends where a channel is quiet for longer than the response, so segments are
    independent; grouping them by power-of-two width keeps the dense arrays small.
    """
    cells = (cell_q, cell_qm, cell_e, cell_source)
    row_key = cell_key // _MAX_TICK
    tick = cell_key % _MAX_TICK
    new_segment = np.r_[True, (row_key[1:] != row_key[:-1]) | (np.diff(tick) > KERNEL_SAMPLES)]
    segment = np.cumsum(new_segment) - 1
    seg_start = tick[new_segment]
    seg_row = row_key[new_segment]
    column = tick - seg_start[segment]
    seg_width = np.zeros(seg_start.size, dtype=np.int64)
    np.maximum.at(seg_width, segment, column + KERNEL_SAMPLES + 1)
    seg_plane = (seg_row // (detector.N_APA * detector.CHANNELS_PER_APA)) % 3
    seg_bucket = np.maximum(5, np.ceil(np.log2(seg_width))).astype(np.int64)
    parts = []
    for plane_id, plane in enumerate(detector.PLANES):
        kernel = response_kernel(plane)
        threshold = detector.THRESHOLD_ADC[plane]
        for bucket in np.unique(seg_bucket[seg_plane == plane_id]):
            segs = np.flatnonzero((seg_plane == plane_id) & (seg_bucket == bucket))
            layout = _Layout(segs, 1 << int(bucket), segment, column, seg_start, seg_row)
            parts.append(_bucket_tps(rng, layout, kernel, threshold, cells))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return TriggerPrimitives(*([empty] * 9), np.zeros(0), np.zeros(0), empty)
    return TriggerPrimitives(*(np.concatenate([p[i] for p in parts]) for i in range(12)))


def find_tps(adc: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Trigger primitives of digitized waveforms ``adc`` (rows × samples): every run of samples
    strictly above threshold. Returns row, start, sot, samples_to_peak (first maximum),
    adc_peak and adc_integral (sum of the samples over threshold), all int64, row-major order.
    A run still open at a row's last sample is closed there."""
    adc = np.asarray(adc)
    width = adc.shape[1]
    above = np.pad(adc > threshold, ((0, 0), (1, 1)))
    edges = np.diff(above.astype(np.int8), axis=1)
    row, start = np.nonzero(edges == 1)
    _, end = np.nonzero(edges == -1)
    if row.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return dict.fromkeys(
            ("row", "start", "sot", "samples_to_peak", "adc_peak", "adc_integral"), empty
        )
    masked = np.where(above[:, 1:-1], adc, 0).astype(np.int64)
    cum = np.cumsum(np.pad(masked, ((0, 0), (1, 0))), axis=1)
    integral = cum[row, end] - cum[row, start]
    start_flat = row * width + start
    # Runs are separated by zeros in ``masked``, so a reduceat from each start sees only its run.
    # First sample reaching the peak: maximize value·width − column.
    key = (masked * width + (width - 1 - np.arange(width))[None, :]).reshape(-1)
    best = np.maximum.reduceat(key, start_flat)
    peak_col = width - 1 - best % width
    return {
        "row": row.astype(np.int64),
        "start": start.astype(np.int64),
        "sot": (end - start).astype(np.int64),
        "samples_to_peak": (peak_col - start).astype(np.int64),
        "adc_peak": (best // width).astype(np.int64),
        "adc_integral": integral.astype(np.int64),
    }


def _bucket_tps(rng, layout: _Layout, kernel, threshold, cells) -> tuple[np.ndarray, ...]:
    """TPs and their truth for one bucket of segments, in TriggerPrimitives field order."""
    cell_q, cell_qm, cell_e, cell_source = cells
    segs, width = layout.segs, layout.width
    local = np.full(layout.seg_start.size, -1, dtype=np.int64)
    local[segs] = np.arange(segs.size)
    in_bucket = local[layout.segment] >= 0
    r, c = local[layout.segment[in_bucket]], layout.column[in_bucket]
    shape = (segs.size, width)
    q = np.zeros(shape)
    q[r, c] = cell_q[in_bucket]
    qm = np.zeros(shape)
    qm[r, c] = cell_qm[in_bucket]
    e = np.zeros(shape)
    e[r, c] = cell_e[in_bucket]
    owner = np.full(shape, -1, dtype=np.int64)
    owner[r, c] = cell_source[in_bucket]

    signal = np.zeros(shape)
    for lag, weight in enumerate(kernel):
        signal[:, lag:] += weight * q[:, : width - lag]
    adc = np.rint(signal + NOISE_ADC * rng.standard_normal(shape))
    found = find_tps(adc, threshold)
    tp_row, tp_start, tp_end = found["row"], found["start"], found["start"] + found["sot"]
    peak_col = tp_start + found["samples_to_peak"]
    lo = np.maximum(tp_start - TRUTH_LAG_SAMPLES, 0)
    truth = []
    for grid in (q, qm, e):
        cg = np.cumsum(np.pad(grid, ((0, 0), (1, 0))), axis=1)
        truth.append(cg[tp_row, tp_end] - cg[tp_row, lo])
    tq, tqm, te = truth
    marley_fraction = np.divide(tqm, tq, out=np.zeros_like(tq), where=tq > 0)
    filled = np.maximum.accumulate(np.where(owner >= 0, np.arange(width)[None, :], 0), axis=1)
    at = np.maximum(peak_col - TRUTH_LAG_SAMPLES + 1, 0)
    source = owner[tp_row, filled[tp_row, at]]

    seg = segs[tp_row]
    row = layout.seg_row[seg]
    channel = row % detector.CHANNELS_PER_APA
    apa = (row // detector.CHANNELS_PER_APA) % detector.N_APA
    plane = (row // (detector.CHANNELS_PER_APA * detector.N_APA)) % 3
    event = row // (detector.CHANNELS_PER_APA * detector.N_APA * 3)
    return (
        event,
        plane,
        apa,
        channel,
        layout.seg_start[seg] + tp_start,
        found["sot"],
        found["samples_to_peak"],
        found["adc_peak"],
        found["adc_integral"],
        marley_fraction,
        te,
        source,
    )
