"""Non-MARLEY activity in the same readout as each ES event (docs/physics.md §2, §3).

Radiological betas (³⁹Ar: almost never above threshold; ⁴²K: MeV betas plus a 1.5 MeV γ) and
neutron captures on ⁴⁰Ar (a 6.1 MeV γ cascade of Compton blips) are placed in the event's APA at
random drift distances, so the main cluster is not alone and matching must choose.
"""

from __future__ import annotations

import numpy as np

from edtrain import detector
from edtrain.simulation.kinematics import isotropic_directions

GENERATORS: tuple[str, ...] = (
    "marley",
    "Ar39GenInLAr",
    "K42From42ArGenInLAr",
    "NeutronGenInRock",
)
MEAN_PER_EVENT: dict[str, float] = {
    "Ar39GenInLAr": 2.0,
    "K42From42ArGenInLAr": 1.0,
    "NeutronGenInRock": 0.5,
}
_ENDPOINT_MEV = {"Ar39GenInLAr": 0.565, "K42From42ArGenInLAr": 3.52}
K42_GAMMA_MEV, K42_GAMMA_FRACTION = 1.525, 0.18
CAPTURE_MEV, CAPTURE_GAMMAS = 6.1, 3


def _positions_in_apa(rng: np.random.Generator, apa: np.ndarray) -> np.ndarray:
    """Uniform points inside the given APAs' drift volumes (both sides)."""
    n = apa.size
    column, row = apa // 2, apa % 2
    y = detector.DETECTOR_Y_CM[0] + (row + rng.uniform(0.02, 0.98, n)) * detector.APA_HEIGHT_CM
    z = detector.DETECTOR_Z_CM[0] + (column + rng.uniform(0.02, 0.98, n)) * detector.APA_WIDTH_CM
    x = rng.choice([-1.0, 1.0], n) * rng.uniform(1.0, detector.DRIFT_LENGTH_CM - 1.0, n)
    return np.stack([x, y, z], axis=1)


def background_sources(rng: np.random.Generator, event_apa: np.ndarray) -> dict[str, np.ndarray]:
    """Background decays of a batch: per source its event, generator code, pdg, position, and
    the electrons and photons it emits (each tagged with the source's row)."""
    rows = []
    for code, name in enumerate(GENERATORS[1:], start=1):
        count = rng.poisson(MEAN_PER_EVENT[name], event_apa.size)
        event = np.repeat(np.arange(event_apa.size), count)
        rows.append((np.full(event.size, code), event))
    generator = np.concatenate([r[0] for r in rows])
    event = np.concatenate([r[1] for r in rows])
    n = event.size
    position = _positions_in_apa(rng, event_apa[event])
    kinetic = np.zeros(n)
    beta = generator < 3
    endpoint = np.where(generator == 1, _ENDPOINT_MEV["Ar39GenInLAr"], _ENDPOINT_MEV[GENERATORS[2]])
    kinetic[beta] = (endpoint * rng.beta(2.0, 3.0, n))[beta]

    k42_gamma = (generator == 2) & (rng.random(n) < K42_GAMMA_FRACTION)
    capture = np.flatnonzero(generator == 3)
    shares = rng.dirichlet(np.ones(CAPTURE_GAMMAS), capture.size) * CAPTURE_MEV
    photon_source = np.concatenate([np.flatnonzero(k42_gamma), np.repeat(capture, CAPTURE_GAMMAS)])
    photon_energy = np.concatenate([np.full(k42_gamma.sum(), K42_GAMMA_MEV), shares.reshape(-1)])
    return {
        "event": event,
        "generator": generator,
        "pdg": np.where(beta, 11, 22),
        "position": position,
        "direction": isotropic_directions(rng, n),
        "kinetic": kinetic,
        "photon_source": photon_source,
        "photon_energy": photon_energy,
        "photon_direction": isotropic_directions(rng, photon_source.size),
    }
