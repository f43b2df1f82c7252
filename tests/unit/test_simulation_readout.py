"""Charge/readout, the TP finder on known pulses, and the clustering cuts and matching."""

from __future__ import annotations

import numpy as np
import pytest

from edtrain import detector
from edtrain.simulation import readout
from edtrain.simulation.clustering import ENERGY_CUT_MEV, cluster_tps
from edtrain.simulation.readout import TriggerPrimitives, find_tps
from edtrain.simulation.transport import Deposits


def test_find_tps_on_known_pulses():
    adc = np.array(
        [
            [0, 50, 70, 100, 80, 65, 59, 0, 61, 61, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [90, 90, 10, 0, 0, 0, 0, 0, 0, 70, 120],  # runs touching both edges
        ]
    )
    tps = find_tps(adc, 60)
    np.testing.assert_array_equal(tps["row"], [0, 0, 2, 2])
    np.testing.assert_array_equal(tps["start"], [2, 8, 0, 9])
    np.testing.assert_array_equal(tps["sot"], [4, 2, 2, 2])
    np.testing.assert_array_equal(tps["samples_to_peak"], [1, 0, 0, 1])
    np.testing.assert_array_equal(tps["adc_peak"], [100, 61, 90, 120])
    np.testing.assert_array_equal(tps["adc_integral"], [315, 122, 180, 190])


def test_find_tps_without_signal():
    assert find_tps(np.zeros((2, 8)), 60)["row"].size == 0


def test_recombination_gives_the_mip_charge_yield():
    electrons_per_mev = readout.recombination(np.array([2.1]))[0] / readout.W_ION_MEV
    assert electrons_per_mev == pytest.approx(3.0e4, rel=0.05)


def test_response_kernels():
    collection = readout.response_kernel("X")
    induction = readout.response_kernel("U")
    assert np.all(collection >= 0)
    assert collection.max() == pytest.approx(1.0 / readout.ELECTRONS_PER_ADC, rel=0.05)
    assert induction.max() == pytest.approx(
        readout.INDUCTION_PEAK_RATIO / readout.ELECTRONS_PER_ADC
    )
    assert np.argmax(induction) < np.argmin(induction)  # positive lobe first
    assert abs(induction.sum()) < 0.05 * np.abs(induction).sum()


def test_a_point_deposit_gives_the_shaped_pulse(monkeypatch):
    monkeypatch.setattr(readout, "NOISE_ADC", 0.0)
    energy = 1.0  # MeV at the APA face, x < 0, in APA 0
    deposits = Deposits(
        np.array([[-0.001, -300.0, 100.0]]), np.array([energy]), np.array([2.1]), np.array([0])
    )
    tps = readout.trigger_primitives(
        np.random.default_rng(0), deposits, np.array([0]), np.array([1.0])
    )
    x = tps.take(np.flatnonzero(tps.plane == 2))
    assert x.size == 1
    charge = energy / readout.W_ION_MEV * readout.recombination(np.array([2.1]))[0]
    expected = find_tps(np.rint(charge * readout.response_kernel("X"))[None, :], 60)
    assert x.adc_peak[0] == expected["adc_peak"][0]
    assert x.sot[0] == expected["sot"][0]
    assert x.adc_integral[0] == expected["adc_integral"][0]
    assert x.channel[0] == detector.plane_channel("X", *np.array([[-0.001], [-300.0], [100.0]]))[0]
    assert x.marley_fraction[0] == 1.0 and x.source[0] == 0
    assert x.energy[0] == pytest.approx(energy, rel=1e-6)
    # Induction planes see it too, earlier than X.
    assert set(tps.plane.tolist()) == {0, 1, 2}
    assert tps.time_start[tps.plane == 0][0] < x.time_start[0]


def _tps(rows):
    """TriggerPrimitives from (event, plane, channel, start, sot, integral, marley) rows."""
    a = np.array(rows, dtype=np.float64)
    n = len(rows)
    return TriggerPrimitives(
        event=a[:, 0].astype(np.int64),
        plane=a[:, 1].astype(np.int64),
        apa=np.zeros(n, dtype=np.int64),
        channel=a[:, 2].astype(np.int64),
        time_start=a[:, 3].astype(np.int64),
        sot=a[:, 4].astype(np.int64),
        samples_to_peak=(a[:, 4] // 2).astype(np.int64),
        adc_peak=np.full(n, 500, dtype=np.int64),
        adc_integral=a[:, 5].astype(np.int64),
        marley_fraction=a[:, 6],
        energy=np.ones(n),
        source=np.where(a[:, 6] > 0.5, a[:, 0], 1000).astype(np.int64),
    )


def test_clustering_cuts_main_flag_and_matching():
    big = ENERGY_CUT_MEV * 3600 / 2 + 10  # two of these pass the X energy cut
    rows = [
        # event 0, X: a chain joined through ch/time limits, plus a far TP and a short one
        (0, 2, 1700, 100, 10, big, 1),
        (0, 2, 1702, 112, 10, big, 1),  # gap 2 samples, 2 channels: joins
        (0, 2, 1703, 100, 3, big, 1),  # SoT 3: dropped before clustering
        (0, 2, 1710, 100, 10, 100, 1),  # alone: fewer than 2 TPs, dropped
        (0, 2, 1800, 300, 10, 300, 0),  # background pair, under the energy cut
        (0, 2, 1801, 305, 10, 300, 0),
        # event 0, U and V partners in time with the X cluster (shifted by the plane offsets)
        (0, 0, 10, 94, 10, 4000, 1),
        (0, 0, 11, 100, 10, 4000, 1),
        (0, 1, 810, 97, 10, 4000, 1),
        (0, 1, 811, 103, 10, 4000, 1),
        # event 0, a U cluster far in time: must not be matched
        (0, 0, 300, 900, 10, 4000, 0),
        (0, 0, 301, 905, 10, 4000, 0),
    ]
    clusters = cluster_tps(_tps(rows), np.zeros(1001, dtype=np.int64))
    n_tps = np.diff(clusters.offsets)
    assert clusters.size == 5
    main_x = np.flatnonzero((clusters.plane == 2) & clusters.is_main)
    assert main_x.size == 1 and n_tps[main_x[0]] == 2
    assert clusters.accepted[main_x[0]]
    assert clusters.total_charge[main_x[0]] == pytest.approx(2 * big)
    assert not clusters.accepted[(clusters.plane == 2) & ~clusters.is_main].any()
    matched = clusters.match_id >= 0
    assert sorted(clusters.plane[matched].tolist()) == [0, 1, 2]
    assert set(clusters.match_type[matched].tolist()) == {3}
    far_u = (clusters.plane == 0) & (clusters.marley_tp_fraction == 0)
    assert clusters.match_id[far_u][0] == -1
    x = main_x[0]
    assert clusters.matching_u[x] == clusters.cluster_id[matched & (clusters.plane == 0)][0]
    assert clusters.matching_v[x] == clusters.cluster_id[matched & (clusters.plane == 1)][0]
