"""Upstream's clustering cuts, main-cluster flag and three-plane matching (DATA_FORMAT §4, §6).

TPs with SoT ≤ TOT_CUT are dropped; two TPs of the same event, plane and APA join when their
channels differ by ≤ CHANNEL_LIMIT and the gap between their time intervals is ≤ TICK_LIMIT
samples (transitively); clusters need ≥ MIN_TPS TPs; those under ENERGY_CUT_MEV go to
``discarded/``. The main cluster is the most energetic MARLEY cluster of an event in a plane.
Matching pairs each accepted X cluster with the U and V clusters of the same event and APA whose
time windows overlap best, keeping only mutual best choices, so background clusters compete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from edtrain import detector
from edtrain.simulation.readout import TriggerPrimitives

TICK_LIMIT = 3
CHANNEL_LIMIT = 2
MIN_TPS = 2
TOT_CUT = 3
ENERGY_CUT_MEV = 2.0
MATCH_TOLERANCE_SAMPLES = 5
CUTS: dict[str, float] = {
    "tick_limit": TICK_LIMIT,
    "channel_limit": CHANNEL_LIMIT,
    "min_tps_to_cluster": MIN_TPS,
    "tot_cut": TOT_CUT,
    "energy_cut": ENERGY_CUT_MEV,
    "adc_to_mev_collection": detector.ADC_PER_MEV["X"],
    "adc_to_mev_induction": detector.ADC_PER_MEV["U"],
}
_ADC_PER_MEV = np.array([detector.ADC_PER_MEV[p] for p in detector.PLANES])


@dataclass
class Clusters:
    """Clusters of a batch; ``tps`` is ordered cluster by cluster, delimited by ``offsets``."""

    tps: TriggerPrimitives
    offsets: np.ndarray
    event: np.ndarray
    plane: np.ndarray
    apa: np.ndarray
    total_charge: np.ndarray
    total_energy: np.ndarray
    accepted: np.ndarray
    source: np.ndarray  # dominant source (by deposited energy)
    marley_tp_fraction: np.ndarray
    generator_tp_fraction: np.ndarray
    is_main: np.ndarray
    cluster_id: np.ndarray  # sequential per plane
    match_id: np.ndarray
    match_type: np.ndarray  # 3 = three-plane match, 0 = unmatched
    matching_u: np.ndarray  # cluster_id of the matched U/V cluster (X rows), −1 otherwise
    matching_v: np.ndarray

    @property
    def size(self) -> int:
        return int(self.event.size)

    def time_window(self) -> tuple[np.ndarray, np.ndarray]:
        """First and last+1 sample of every cluster, corrected to the X plane's clock."""
        start = np.minimum.reduceat(self.tps.time_start, self.offsets[:-1])
        end = np.maximum.reduceat(self.tps.time_start + self.tps.sot, self.offsets[:-1])
        shift = np.array([detector.PLANE_TIME_OFFSET_SAMPLES[p] for p in detector.PLANES])
        return start - shift[self.plane], end - shift[self.plane]


def _connected_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest member index of each node's connected component (label propagation)."""
    labels = np.arange(n)
    while True:
        previous = labels.copy()
        np.minimum.at(labels, a, labels[b])
        np.minimum.at(labels, b, labels[a])
        labels = labels[labels]
        if np.array_equal(labels, previous):
            return labels


def _join_pairs(tps: TriggerPrimitives) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of TPs that join, scanning neighbours in (group, channel) order."""
    key = ((tps.event * 3 + tps.plane) * detector.N_APA + tps.apa) * 4096 + tps.channel
    order = np.lexsort((tps.time_start, key))
    key = key[order]
    start = tps.time_start[order]
    end = start + tps.sot[order]
    reach = np.searchsorted(key, key + CHANNEL_LIMIT, side="right") - np.arange(key.size)
    pairs_a, pairs_b = [], []
    for offset in range(1, int(reach.max(initial=1))):
        i = np.arange(key.size - offset)
        j = i + offset
        gap = np.maximum(start[i], start[j]) - np.minimum(end[i], end[j])
        join = (key[j] - key[i] <= CHANNEL_LIMIT) & (gap <= TICK_LIMIT)
        pairs_a.append(order[i[join]])
        pairs_b.append(order[j[join]])
    if not pairs_a:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(pairs_a), np.concatenate(pairs_b)


def cluster_tps(tps: TriggerPrimitives, source_generator: np.ndarray) -> Clusters:
    """Clusters of a batch's TPs; ``source_generator`` maps a source id to a generator code
    (0 = MARLEY) so the generator TP fraction can be computed."""
    tps = tps.take(np.flatnonzero(tps.sot > TOT_CUT))
    a, b = _join_pairs(tps)
    labels = _connected_labels(tps.size, a, b)
    _, label, n_tps = np.unique(labels, return_inverse=True, return_counts=True)
    keep_tp = n_tps[label] >= MIN_TPS
    tps, label = tps.take(np.flatnonzero(keep_tp)), label[keep_tp]
    _, label = np.unique(label, return_inverse=True)
    # Order clusters by (event, plane, first time) for stable, readable ids.
    n = int(label.max(initial=-1)) + 1
    first_time = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_time, label, tps.time_start)
    cl_event = np.zeros(n, dtype=np.int64)
    cl_event[label] = tps.event
    cl_plane = np.zeros(n, dtype=np.int64)
    cl_plane[label] = tps.plane
    cl_order = np.lexsort((first_time, cl_plane, cl_event))
    rank = np.empty(n, dtype=np.int64)
    rank[cl_order] = np.arange(n)
    label = rank[label]
    tp_order = np.lexsort((tps.time_start, tps.channel, label))
    tps, label = tps.take(tp_order), label[tp_order]
    offsets = np.r_[0, np.cumsum(np.bincount(label, minlength=n))].astype(np.int64)
    starts = offsets[:-1]

    event = tps.event[starts]
    plane = tps.plane[starts]
    apa = tps.apa[starts]
    total_charge = np.bincount(label, tps.adc_integral, minlength=n)
    total_energy = total_charge / _ADC_PER_MEV[plane]
    accepted = total_energy >= ENERGY_CUT_MEV
    tp_is_marley = tps.marley_fraction > 0.5
    marley_fraction = np.bincount(label, tp_is_marley, minlength=n) / np.diff(offsets)
    source = _dominant(label, tps.source, tps.energy, n)
    tp_generator = np.where(tps.source >= 0, source_generator[np.maximum(tps.source, 0)], -1)
    cl_generator = np.where(source >= 0, source_generator[np.maximum(source, 0)], -2)
    generator_fraction = np.bincount(
        label, tp_generator == cl_generator[label], minlength=n
    ) / np.diff(offsets)
    is_main = _main_flags(event, plane, total_energy, marley_fraction > 0.5)
    cluster_id = np.zeros(n, dtype=np.int64)
    for p in range(3):
        on = plane == p
        cluster_id[on] = np.arange(int(on.sum()))
    clusters = Clusters(
        tps=tps,
        offsets=offsets,
        event=event,
        plane=plane,
        apa=apa,
        total_charge=total_charge,
        total_energy=total_energy,
        accepted=accepted,
        source=source,
        marley_tp_fraction=marley_fraction,
        generator_tp_fraction=generator_fraction,
        is_main=is_main,
        cluster_id=cluster_id,
        match_id=np.full(n, -1),
        match_type=np.zeros(n, dtype=np.int64),
        matching_u=np.full(n, -1),
        matching_v=np.full(n, -1),
    )
    _match(clusters)
    return clusters


def _dominant(label: np.ndarray, value: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Per cluster, the ``value`` with the largest summed ``weight`` (−1 for empty clusters)."""
    table = pd.DataFrame({"c": label, "v": value, "w": weight}).groupby(["c", "v"]).w.sum()
    table = table.reset_index().sort_values(["c", "w"]).drop_duplicates("c", keep="last")
    out = np.full(n, -1, dtype=np.int64)
    out[table.c.to_numpy()] = table.v.to_numpy()
    return out


def _main_flags(event, plane, energy, is_marley) -> np.ndarray:
    """True for the most energetic MARLEY cluster of each (event, plane)."""
    flags = np.zeros(event.size, dtype=bool)
    candidates = np.flatnonzero(is_marley)
    if candidates.size:
        order = candidates[np.lexsort((energy[candidates], plane[candidates], event[candidates]))]
        group = event[order] * 3 + plane[order]
        last = np.r_[group[1:] != group[:-1], True]
        flags[order[last]] = True
    return flags


def _match(clusters: Clusters) -> None:
    """Fill match_id/match_type/matching ids: mutual best time overlap X↔U and X↔V."""
    start, end = clusters.time_window()
    table = pd.DataFrame(
        {
            "i": np.arange(clusters.size),
            "group": clusters.event * detector.N_APA + clusters.apa,
            "plane": clusters.plane,
            "start": start,
            "end": end,
        }
    )[clusters.accepted]
    xs = table[table.plane == 2]
    partner = {}
    for p in (0, 1):
        pairs = xs.merge(table[table.plane == p], on="group", suffixes=("_x", "_p"))
        overlap = np.minimum(pairs.end_x, pairs.end_p) - np.maximum(pairs.start_x, pairs.start_p)
        pairs = pairs.assign(score=overlap)[overlap >= -MATCH_TOLERANCE_SAMPLES]
        best_p = pairs.sort_values(["i_x", "score"]).drop_duplicates("i_x", keep="last")
        best_x = pairs.sort_values(["i_p", "score"]).drop_duplicates("i_p", keep="last")
        mutual = best_p.merge(best_x[["i_x", "i_p"]], on=["i_x", "i_p"])
        partner[p] = pd.Series(mutual.i_p.to_numpy(), index=mutual.i_x.to_numpy())
    both = partner[0].index.intersection(partner[1].index).sort_values()
    x_idx = both.to_numpy()
    u_idx = partner[0].loc[both].to_numpy()
    v_idx = partner[1].loc[both].to_numpy()
    # match_id counts within the file in event order; the X index order is event order.
    match = np.arange(x_idx.size)
    for idx in (x_idx, u_idx, v_idx):
        clusters.match_id[idx] = match
        clusters.match_type[idx] = 3
    clusters.matching_u[x_idx] = clusters.cluster_id[u_idx]
    clusters.matching_v[x_idx] = clusters.cluster_id[v_idx]
