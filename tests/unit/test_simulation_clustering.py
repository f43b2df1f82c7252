"""Upstream's clustering and matching rules, each on a hand-made TP sequence.

Every sequence here is one where upstream's greedy pass and a connected-components clustering
disagree, or where upstream's matching differs from a best-overlap matching."""

from __future__ import annotations

import numpy as np
import pytest

from edtrain.simulation.clustering import ENERGY_CUT_MEV, cluster_tps, greedy_labels
from edtrain.simulation.readout import TriggerPrimitives

U, V, X = 0, 1, 2
BIG_X = ENERGY_CUT_MEV * 3600  # one such TP passes the X energy cut
BIG_UV = ENERGY_CUT_MEV * 900
# sources 0–1 MARLEY (generator 0), 2–3 background (generator 1)
GENERATOR = np.array([0, 0, 1, 1])


def _tps(rows) -> TriggerPrimitives:
    """TPs from (event, plane, channel, start, sot, adc_integral, source) rows, in reading
    order, all in APA 0 unless a row has an eighth field."""
    a = np.array([tuple(r) + (0,) * (8 - len(r)) for r in rows], dtype=np.float64)
    n = len(rows)
    return TriggerPrimitives(
        event=a[:, 0].astype(np.int64),
        plane=a[:, 1].astype(np.int64),
        apa=a[:, 7].astype(np.int64),
        channel=a[:, 2].astype(np.int64),
        time_start=a[:, 3].astype(np.int64),
        sot=a[:, 4].astype(np.int64),
        samples_to_peak=(a[:, 4] // 2).astype(np.int64),
        adc_peak=np.full(n, 500, dtype=np.int64),
        adc_integral=a[:, 5].astype(np.int64),
        marley_fraction=(GENERATOR[a[:, 6].astype(int)] == 0).astype(np.float64),
        energy=np.ones(n),
        source=a[:, 6].astype(np.int64),
    )


def _labels(rows) -> list[int]:
    return greedy_labels(_tps(rows)).tolist()


def test_a_tp_joins_the_first_cluster_in_reading_order_and_clusters_never_merge():
    a1, a2 = (0, X, 1700, 100, 10, 1, 0), (0, X, 1701, 100, 10, 1, 0)
    b1, b2 = (0, X, 1704, 100, 10, 1, 0), (0, X, 1705, 100, 10, 1, 0)
    bridge = (0, X, 1702, 100, 10, 1, 0)  # within 2 channels of a2 and of b1
    # read after both clusters exist: joins the first one, the two stay apart
    assert _labels([a1, a2, b1, b2, bridge]) == [0, 0, 1, 1, 0]
    # read before b1: b1 and b2 then join the grown first cluster
    assert _labels([a1, a2, bridge, b1, b2]) == [0, 0, 0, 0, 0]


def test_a_cluster_with_a_tp_on_the_same_channel_too_far_in_time_is_rejected():
    first = (0, X, 1700, 100, 10, 1, 0)  # ends at 110
    neighbour = (0, X, 1701, 110, 10, 1, 0)  # ends at 120
    late = (0, X, 1700, 118, 10, 1, 0)  # 0 from the neighbour, 8 samples after the first
    assert _labels([first, neighbour, late]) == [0, 0, 1]
    within = (0, X, 1700, 113, 10, 1, 0)  # 3 samples after the first: allowed
    assert _labels([first, neighbour, within]) == [0, 0, 0]


def test_time_gap_and_channel_limits():
    base = (0, X, 1700, 100, 10, 1, 0)
    assert _labels([base, (0, X, 1702, 113, 10, 1, 0)]) == [0, 0]  # gap 3, 2 channels
    assert _labels([base, (0, X, 1702, 114, 10, 1, 0)]) == [0, 1]  # gap 4
    assert _labels([base, (0, X, 1703, 100, 10, 1, 0)]) == [0, 1]  # 3 channels


def test_induction_channels_join_across_the_wrap_around_edge_collection_faces_never():
    assert _labels([(0, U, 0, 100, 10, 1, 0), (0, U, 799, 100, 10, 1, 0)]) == [0, 0]
    assert _labels([(0, V, 1599, 100, 10, 1, 0), (0, V, 800, 100, 10, 1, 0)]) == [0, 0]
    assert _labels([(0, U, 0, 100, 10, 1, 0), (0, U, 797, 100, 10, 1, 0)]) == [0, 1]
    assert _labels([(0, X, 2079, 100, 10, 1, 0), (0, X, 2080, 100, 10, 1, 0)]) == [0, 1]
    assert _labels([(0, X, 2078, 100, 10, 1, 0), (0, X, 2079, 100, 10, 1, 0)]) == [0, 0]


def test_groups_are_separate_per_event_plane_and_apa():
    rows = [
        (0, X, 1700, 100, 10, 1, 0),
        (1, X, 1700, 100, 10, 1, 0),  # other event
        (0, X, 1700, 100, 10, 1, 0, 1),  # other APA
        (0, X, 1701, 101, 10, 1, 0),
        (0, U, 1701, 101, 10, 1, 0),  # other plane
    ]
    assert _labels(rows) == [0, 0, 0, 0, 0]
    clusters = cluster_tps(_tps(rows), GENERATOR)
    assert np.diff(clusters.offsets).tolist() == [2]  # the others have one TP each


def test_cluster_ids_count_the_file_by_event_then_plane_then_creation():
    rows = [
        (1, X, 1700, 100, 10, 1, 0),
        (1, X, 1701, 100, 10, 1, 0),
        (0, X, 1900, 50, 10, 1, 0),
        (0, X, 1901, 50, 10, 1, 0),
        (0, X, 1700, 90, 10, 1, 0),
        (0, X, 1701, 90, 10, 1, 0),
        (0, U, 10, 90, 10, BIG_UV, 0),
        (0, U, 11, 90, 10, 1, 0),
    ]
    clusters = cluster_tps(_tps(rows), GENERATOR)
    first_tp = clusters.tps.channel[clusters.offsets[:-1]]
    assert clusters.cluster_id.tolist() == [0, 1, 2, 3]
    assert list(zip(clusters.event, clusters.plane, first_tp, strict=True)) == [
        (0, U, 10),
        (0, X, 1900),  # created first: read first
        (0, X, 1700),
        (1, X, 1700),
    ]
    # discarded clusters (under the energy cut) take ids too
    assert clusters.accepted.tolist() == [True, False, False, False]


def test_cuts_tot_min_tps_and_energy():
    rows = [
        (0, X, 1700, 100, 10, BIG_X, 0),
        (0, X, 1701, 100, 3, BIG_X, 0),  # SoT 3: dropped before clustering
        (0, X, 1800, 100, 10, BIG_X, 0),  # then a single TP: no cluster
        (0, X, 1801, 100, 10, BIG_X, 0),
        (0, X, 1900, 100, 10, 3000, 2),
        (0, X, 1901, 100, 10, 3000, 2),  # 6000 ADC < 2 MeV × 3600
    ]
    clusters = cluster_tps(_tps(rows), GENERATOR)
    assert np.diff(clusters.offsets).tolist() == [2, 2]
    assert clusters.accepted.tolist() == [True, False]
    assert clusters.total_charge.tolist() == [2 * BIG_X, 6000]
    assert clusters.total_energy[0] == pytest.approx(2 * ENERGY_CUT_MEV)


def test_truth_is_the_particle_with_most_tps_and_main_is_the_most_energetic_marley_cluster():
    rows = [
        # cluster 0: three background TPs outnumber two MARLEY TPs with most of the charge
        (0, X, 1700, 100, 10, 100, 2),
        (0, X, 1701, 100, 10, 100, 2),
        (0, X, 1702, 100, 10, 100, 2),
        (0, X, 1703, 100, 10, 9000, 0),
        (0, X, 1704, 100, 10, 9000, 0),
        # cluster 1: MARLEY, less energetic than cluster 0 but the only "marley" one
        (0, X, 1900, 100, 10, 4000, 0),
        (0, X, 1901, 100, 10, 4000, 0),
        # cluster 2: a tie, two TPs each: the lower-ranked source wins (source 1, MARLEY)
        (0, X, 2200, 100, 10, 100, 3),
        (0, X, 2201, 100, 10, 100, 3),
        (0, X, 2202, 100, 10, 100, 1),
        (0, X, 2203, 100, 10, 100, 1),
    ]
    clusters = cluster_tps(_tps(rows), GENERATOR)
    assert clusters.source.tolist() == [2, 0, 1]
    assert clusters.marley_tp_fraction.tolist() == [0.4, 1.0, 0.5]
    assert clusters.particle_energy[0] == pytest.approx(300 / 3600)
    assert clusters.is_main.tolist() == [False, True, False]
    ranked = cluster_tps(_tps(rows), GENERATOR, source_rank=np.array([0, 3, 1, 2]))
    assert ranked.source[2] == 3  # now source 3 comes first
    no_truth = _tps(rows[5:7])
    no_truth.source[:] = -1
    unknown = cluster_tps(no_truth, GENERATOR)
    assert unknown.source.tolist() == [-1] and not unknown.is_main.any()
    assert unknown.generator_tp_fraction.tolist() == [0.0]


def _planes(event, x_start, u_start, v_start, source=0, x_channel=1700):
    """Two-TP clusters of one event in X, U, V (a start of None leaves the plane out)."""
    rows = []
    for plane, start, channel, adc in (
        (X, x_start, x_channel, BIG_X),
        (U, u_start, 100, BIG_UV),
        (V, v_start, 900, BIG_UV),
    ):
        if start is not None:
            rows += [(event, plane, channel + i, start, 10, adc, source) for i in range(2)]
    return rows


def test_matching_pairs_main_x_clusters_only_with_the_first_partner_in_time():
    rows = _planes(0, 1000, 995, 998)
    rows += [(0, U, 300, 1005, 10, BIG_UV, 2), (0, U, 301, 1005, 10, BIG_UV, 2)]  # later U
    rows += _planes(1, 500, 510, None)  # no V: a partial match
    rows += _planes(2, 3000, 2000, 2000)  # partners too far in time: unmatched
    rows += _planes(3, 700, 700, 700, source=2)  # background: not main, never matched
    clusters = cluster_tps(_tps(rows), GENERATOR)
    key = {
        (e, p, ch): i
        for i, (e, p, ch) in enumerate(
            zip(
                clusters.event,
                clusters.plane,
                clusters.tps.channel[clusters.offsets[:-1]],
                strict=True,
            )
        )
    }
    x0, u0, v0, u0_late = key[0, X, 1700], key[0, U, 100], key[0, V, 900], key[0, U, 300]
    x1, u1 = key[1, X, 1700], key[1, U, 100]
    # match ids count matched main X clusters in time order: event 1 (500) before event 0
    assert clusters.match_id[[x1, u1, x0, u0, v0]].tolist() == [0, 0, 1, 1, 1]
    assert clusters.match_type[[x1, u1, x0, u0, v0]].tolist() == [3] * 5
    assert clusters.matching_u[x0] == clusters.cluster_id[u0]
    assert clusters.matching_v[x0] == clusters.cluster_id[v0]
    assert clusters.matching_u[x1] == clusters.cluster_id[u1] and clusters.matching_v[x1] == -1
    matched = {x1, u1, x0, u0, v0}
    others = [i for i in range(clusters.size) if i not in matched]
    assert u0_late in others and key[3, X, 1700] in others and key[2, X, 1700] in others
    assert (clusters.match_id[others] == -1).all() and (clusters.match_type[others] == -1).all()
    assert (clusters.matching_u[others] == -1).all()


def test_matching_takes_the_first_overlapping_cluster_even_if_another_overlaps_more():
    # a small U cluster starting first in time, and the electron's own U cluster after it
    rows = _planes(0, 1000, None, 1000)
    rows += [(0, U, 300, 990, 10, BIG_UV, 2), (0, U, 301, 990, 10, BIG_UV, 2)]
    rows += [(0, U, 100, 1000, 10, BIG_UV, 0), (0, U, 101, 1000, 10, BIG_UV, 0)]
    clusters = cluster_tps(_tps(rows), GENERATOR)
    x = np.flatnonzero(clusters.plane == X)[0]
    first_u = np.flatnonzero((clusters.plane == U) & (clusters.source == 2))[0]
    assert clusters.matching_u[x] == clusters.cluster_id[first_u]
