"""Upstream's clustering, cluster truth and main-cluster flag, vectorized (docs/data_format.md).

Upstream (online-pointing-utils, ``make_cluster``) clusters each event and plane in one greedy
pass over its TPs in the order it reads them (time order): a TP joins the first existing
cluster, in creation order, of its APA that has a TP within TICK_LIMIT samples in time and
CHANNEL_LIMIT channels (U and V also across the plane's wrap-around edge, X never across its two
faces), unless that cluster already holds a TP on the same channel more than TICK_LIMIT samples
away; otherwise it starts a cluster. Clusters never merge. Here the pass runs once per position
within the (event, plane, APA) groups, on every group at once. TPs with SoT ≤ TOT_CUT are dropped
first; clusters need ≥ MIN_TPS TPs; those under ENERGY_CUT_MEV go to ``discarded/``.
``cluster_id`` counts the clusters of a file (accepted and discarded) event by event, U, V then X,
in creation order. A cluster's truth is that of its dominant particle, the source with the most
TPs; the main cluster of an event and plane is its most energetic cluster labelled "marley".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from edtrain import detector
from edtrain.simulation.matching import match_clusters
from edtrain.simulation.readout import TriggerPrimitives

TICK_LIMIT = 3
CHANNEL_LIMIT = 2
MIN_TPS = 2
TOT_CUT = 3
ENERGY_CUT_MEV = 2.0
CUTS: dict[str, float] = {
    "tick_limit": TICK_LIMIT,
    "channel_limit": CHANNEL_LIMIT,
    "min_tps_to_cluster": MIN_TPS,
    "adc_integral_cut_induction": int(ENERGY_CUT_MEV * detector.ADC_PER_MEV["U"]),
    "adc_integral_cut_collection": int(ENERGY_CUT_MEV * detector.ADC_PER_MEV["X"]),
    "tot_cut": TOT_CUT,
    "energy_cut": ENERGY_CUT_MEV,
    "adc_to_mev_collection": detector.ADC_PER_MEV["X"],
    "adc_to_mev_induction": detector.ADC_PER_MEV["U"],
}
MARLEY = 0  # generator code of the signal (edtrain.simulation.background.GENERATORS)
_ADC_PER_MEV = np.array([detector.ADC_PER_MEV[p] for p in detector.PLANES])
_X_PLANE = detector.PLANES.index("X")
_INDUCTION_CHANNELS = 800  # per induction plane and APA: the wrap-around period
_X_FACE_SPLIT = 2080  # X channels 1600–2079 face x < 0, 2080–2559 face x > 0


@dataclass
class Clusters:
    """Clusters of a file, in ``cluster_id`` order; ``tps`` is ordered cluster by cluster (each
    cluster's TPs in the order they joined), delimited by ``offsets``."""

    tps: TriggerPrimitives
    offsets: np.ndarray
    event: np.ndarray
    plane: np.ndarray
    apa: np.ndarray
    total_charge: np.ndarray
    total_energy: np.ndarray
    accepted: np.ndarray
    source: np.ndarray  # dominant particle: the source with the most TPs (−1: no truth)
    particle_energy: np.ndarray  # ADC-based energy of the dominant particle's TPs [MeV]
    marley_tp_fraction: np.ndarray
    generator_tp_fraction: np.ndarray  # fraction of TPs with truth
    is_main: np.ndarray
    cluster_id: np.ndarray
    match_id: np.ndarray
    match_type: np.ndarray  # 3 matched (upstream writes 3 for any match), −1 unmatched
    matching_u: np.ndarray  # cluster_id of the matched U/V cluster (X rows), −1 otherwise
    matching_v: np.ndarray

    @property
    def size(self) -> int:
        return int(self.event.size)

    def tick_window(self) -> tuple[np.ndarray, np.ndarray]:
        """Per cluster, upstream's time range for matching: the first TP start and the last
        start + SoT, in 16 ns ticks (upstream adds the SoT's samples to ticks unconverted)."""
        ticks = self.tps.time_start * detector.TICKS_PER_SAMPLE
        start = np.minimum.reduceat(ticks, self.offsets[:-1])
        end = np.maximum.reduceat(ticks + self.tps.sot, self.offsets[:-1])
        return start, end


def _joinable(tps: TriggerPrimitives, k: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Upstream's channel condition between TPs ``k`` and ``j`` of one plane and APA: within
    CHANNEL_LIMIT, across the wrap-around edge for U and V, never across the two X faces."""
    diff = np.abs(tps.channel[k] - tps.channel[j])
    induction = tps.plane[k] != _X_PLANE
    wrapped = induction & (diff >= _INDUCTION_CHANNELS - CHANNEL_LIMIT)
    faces = ~induction & ((tps.channel[k] >= _X_FACE_SPLIT) != (tps.channel[j] >= _X_FACE_SPLIT))
    return ((diff <= CHANNEL_LIMIT) | wrapped) & ~faces


def greedy_labels(tps: TriggerPrimitives) -> np.ndarray:
    """Per TP, the index of its cluster among its (event, plane, APA)'s clusters in creation
    order, visiting each group's TPs in the given order."""
    group = (tps.event * 3 + tps.plane) * detector.N_APA + tps.apa
    order = np.argsort(group, kind="stable")
    sizes = np.bincount(group[order] if group.size else group)
    sizes = sizes[sizes > 0]
    first = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    labels = np.zeros(tps.size, dtype=np.int64)  # indexed by position in ``order``
    created = np.zeros(sizes.size, dtype=np.int64)
    start, end = tps.time_start[order], tps.time_start[order] + tps.sot[order]
    ordered = tps.take(order)
    for step in range(int(sizes.max(initial=0))):
        live = np.flatnonzero(sizes > step)
        k = first[live] + step
        if step == 0:
            labels[k] = 0
            created[live] = 1
            continue
        j = first[live][:, None] + np.arange(step)  # the TPs before k in its group
        kk = np.broadcast_to(k[:, None], j.shape)
        gap = np.maximum(np.maximum(start[kk] - end[j], start[j] - end[kk]), 0)
        near = gap <= TICK_LIMIT
        same = ordered.channel[j] == ordered.channel[kk]
        cell = np.arange(live.size)[:, None] * step + labels[j]  # (row, candidate)
        reject = np.bincount(cell.ravel(), (same & ~near).ravel(), live.size * step) > 0
        joinable = near & (same | _joinable(ordered, kk, j))
        accept = np.bincount(cell.ravel(), joinable.ravel(), live.size * step) > 0
        eligible = (accept & ~reject).reshape(live.size, step)
        joins = eligible.any(axis=1)
        labels[k] = np.where(joins, eligible.argmax(axis=1), created[live])
        created[live] += ~joins
    out = np.empty_like(labels)
    out[order] = labels
    return out


def _dominant(
    cluster: np.ndarray, source: np.ndarray, source_rank: np.ndarray, n: int
) -> np.ndarray:
    """Per cluster, the source with the most TPs, ties to the lowest ``source_rank`` (upstream's
    map order); −1 where no TP has a source."""
    known = source >= 0
    table = pd.DataFrame({"c": cluster[known], "s": source[known]})
    counts = table.value_counts().rename("n").reset_index()
    counts["rank"] = source_rank[counts.s.to_numpy()]
    counts = counts.sort_values(["c", "n", "rank"], ascending=[True, False, True])
    best = counts.drop_duplicates("c")
    out = np.full(n, -1, dtype=np.int64)
    out[best.c.to_numpy()] = best.s.to_numpy()
    return out


def _main_flags(event, plane, energy, is_marley) -> np.ndarray:
    """True for the most energetic "marley" cluster of each (event, plane); on equal energy the
    first created, as upstream's strict comparison keeps it (clusters are in creation order)."""
    table = pd.DataFrame({"event": event, "plane": plane, "energy": -energy})[is_marley]
    best = table.sort_values(["event", "plane", "energy"], kind="stable")
    flags = np.zeros(event.size, dtype=bool)
    flags[best.drop_duplicates(["event", "plane"]).index.to_numpy()] = True
    return flags


def cluster_tps(
    tps: TriggerPrimitives, source_generator: np.ndarray, source_rank: np.ndarray | None = None
) -> Clusters:
    """Clusters of one file's TPs, matched (``edtrain.simulation.matching``).

    ``tps`` in the order upstream would read them; ``source_generator`` maps a source id to its
    generator code (MARLEY = 0); ``source_rank`` orders sources for ties in the dominant particle
    (upstream compares generator name, pdg, then start position; default: by id).
    """
    rank = np.arange(source_generator.size) if source_rank is None else source_rank
    tps = tps.take(np.flatnonzero(tps.sot > TOT_CUT))
    local = greedy_labels(tps)
    group = (tps.event * 3 + tps.plane) * detector.N_APA + tps.apa
    _, label = np.unique(group * (local.max(initial=0) + 1) + local, return_inverse=True)
    n_tps = np.bincount(label)
    keep = n_tps[label] >= MIN_TPS
    tps, label = tps.take(np.flatnonzero(keep)), label[keep]
    position = np.arange(tps.size)  # the TPs' reading order, kept through the filters
    # cluster_id: by event, plane, then creation = reading position of the cluster's first TP.
    _, label = np.unique(label, return_inverse=True)
    n = int(label.max(initial=-1)) + 1
    created = np.full(n, tps.size, dtype=np.int64)
    np.minimum.at(created, label, position)
    c_event, c_plane = np.zeros(n, np.int64), np.zeros(n, np.int64)
    c_event[label], c_plane[label] = tps.event, tps.plane
    rank_of = np.empty(n, dtype=np.int64)
    rank_of[np.lexsort((created, c_plane, c_event))] = np.arange(n)
    label = rank_of[label]
    tp_order = np.lexsort((position, label))
    tps, label = tps.take(tp_order), label[tp_order]
    offsets = np.r_[0, np.cumsum(np.bincount(label, minlength=n))].astype(np.int64)
    starts, sizes = offsets[:-1], np.diff(offsets)

    plane = tps.plane[starts]
    tp_energy = tps.adc_integral / _ADC_PER_MEV[tps.plane]
    total_energy = np.bincount(label, tp_energy, minlength=n)
    source = _dominant(label, tps.source, rank, n)
    tp_generator = np.where(tps.source >= 0, source_generator[np.maximum(tps.source, 0)], -1)
    label_generator = np.where(source >= 0, source_generator[np.maximum(source, 0)], -1)
    clusters = Clusters(
        tps=tps,
        offsets=offsets,
        event=tps.event[starts],
        plane=plane,
        apa=tps.apa[starts],
        total_charge=np.bincount(label, tps.adc_integral, minlength=n),
        total_energy=total_energy,
        accepted=total_energy >= ENERGY_CUT_MEV,
        source=source,
        particle_energy=np.bincount(
            label, tp_energy * ((tps.source == source[label]) & (tps.source >= 0)), minlength=n
        ),
        marley_tp_fraction=np.bincount(label, tp_generator == MARLEY, minlength=n) / sizes,
        generator_tp_fraction=np.bincount(label, tps.source >= 0, minlength=n) / sizes,
        is_main=_main_flags(tps.event[starts], plane, total_energy, label_generator == MARLEY),
        cluster_id=np.arange(n, dtype=np.int64),
        match_id=np.full(n, -1, dtype=np.int64),
        match_type=np.full(n, -1, dtype=np.int64),
        matching_u=np.full(n, -1, dtype=np.int64),
        matching_v=np.full(n, -1, dtype=np.int64),
    )
    match_clusters(clusters)
    return clusters
