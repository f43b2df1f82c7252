"""Charge/readout and the TP finder on known pulses."""

from __future__ import annotations

import numpy as np
import pytest

from edtrain import detector
from edtrain.simulation import readout
from edtrain.simulation.readout import find_tps
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
