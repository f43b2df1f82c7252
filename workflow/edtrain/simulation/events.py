"""One batch of ES events, from neutrinos to clusters, plus the truth table with the oracle.

Source ids: rows 0..n−1 are the events' MARLEY electrons (source i belongs to event i), the
background decays follow. Every deposit, TP and cluster points back to a source, which is how
clusters get their truth (label, momentum, position) the way upstream's backtracker does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from edtrain import detector
from edtrain.simulation.background import GENERATORS, background_sources
from edtrain.simulation.clustering import Clusters, cluster_tps
from edtrain.simulation.kinematics import es_events, momentum_mev
from edtrain.simulation.oracle import oracle_directions
from edtrain.simulation.readout import trigger_primitives
from edtrain.simulation.transport import Particles, shower


@dataclass
class Batch:
    """What a file needs: the source table, the clusters and the per-event truth."""

    sources: pd.DataFrame  # event, generator, pdg, x, y, z, px, py, pz [GeV/c], kinetic [MeV]
    clusters: Clusters
    truth: pd.DataFrame  # one row per event


def _vertices(rng: np.random.Generator, n: int) -> np.ndarray:
    """Vertices anywhere in the active volume: drift side, APA and depth at random."""
    x = rng.choice([-1.0, 1.0], n) * rng.uniform(1.0, detector.DRIFT_LENGTH_CM - 1.0, n)
    y = rng.uniform(*detector.DETECTOR_Y_CM, n) * 0.99
    z = rng.uniform(*detector.DETECTOR_Z_CM, n)
    return np.stack([x, y, z], axis=1)


def simulate_batch(rng: np.random.Generator, n_events: int, spectrum: str) -> Batch:
    """Simulate ``n_events`` ES events with their background, down to matched clusters."""
    es = es_events(rng, n_events, spectrum)
    vertex = _vertices(rng, n_events)
    event_apa = detector.apa_index(vertex[:, 1], vertex[:, 2])
    bg = background_sources(rng, event_apa)
    n_bg = bg["event"].size

    electrons = Particles(
        np.concatenate([vertex, bg["position"]]),
        np.concatenate([es["direction"], bg["direction"]]),
        np.concatenate([es["kinetic"], bg["kinetic"]]),
        np.arange(n_events + n_bg),
    )
    live = electrons.kinetic > 0  # neutron-capture sources emit photons only
    electrons = Particles(
        *(getattr(electrons, f)[live] for f in ("position", "direction", "kinetic", "source"))
    )
    photons = Particles(
        bg["position"][bg["photon_source"]],
        bg["photon_direction"],
        bg["photon_energy"],
        n_events + bg["photon_source"],
    )
    deposits, trajectory, counts = shower(rng, electrons, photons)

    generator = np.concatenate([np.zeros(n_events, dtype=np.int64), bg["generator"]])
    source_event = np.concatenate([np.arange(n_events), bg["event"]])
    tps = trigger_primitives(rng, deposits, source_event, (generator == 0).astype(np.float64))
    pdg = np.concatenate([np.full(n_events, 11), bg["pdg"]])
    position = np.concatenate([vertex, bg["position"]])
    # upstream's order of particles for ties in a cluster's dominant particle
    names = np.array(GENERATORS)[generator]
    rank = np.empty(generator.size, dtype=np.int64)
    rank[np.lexsort((*position.T[::-1], pdg, names))] = np.arange(generator.size)
    # upstream reads an event's TPs in time order
    tps = tps.take(np.lexsort((tps.channel, tps.time_start, tps.event)))
    clusters = cluster_tps(tps, generator, rank)

    kinetic = np.concatenate([es["kinetic"], bg["kinetic"]])
    direction = np.concatenate([es["direction"], bg["direction"]])
    momentum = direction * (momentum_mev(kinetic) / 1000.0)[:, None]
    sources = pd.DataFrame(
        {
            "event": source_event,
            "generator": generator,
            "pdg": pdg,
            "x": position[:, 0],
            "y": position[:, 1],
            "z": position[:, 2],
            "px": momentum[:, 0],
            "py": momentum[:, 1],
            "pz": momentum[:, 2],
            "kinetic": kinetic,
        }
    )
    oracle = oracle_directions(rng, trajectory, n_events, vertex, es["direction"], es["kinetic"])
    truth = pd.DataFrame(
        {
            "nu_energy_mev": es["nu_energy"],
            "nu_dir_x": es["nu_dir"][:, 0],
            "nu_dir_y": es["nu_dir"][:, 1],
            "nu_dir_z": es["nu_dir"][:, 2],
            "electron_ke_mev": es["kinetic"],
            "electron_dir_x": es["direction"][:, 0],
            "electron_dir_y": es["direction"][:, 1],
            "electron_dir_z": es["direction"][:, 2],
            "vertex_x": vertex[:, 0],
            "vertex_y": vertex[:, 1],
            "vertex_z": vertex[:, 2],
            "apa": event_apa,
            "drift_side": np.where(vertex[:, 0] > 0, 1, -1),
            "oracle_dir_x": oracle["direction"][:, 0],
            "oracle_dir_y": oracle["direction"][:, 1],
            "oracle_dir_z": oracle["direction"][:, 2],
            "oracle_error_deg": oracle["error_deg"],
            "oracle_vertex_known_error_deg": oracle["vertex_known_error_deg"],
            "oracle_length_cm": oracle["length_cm"],
            "oracle_points": oracle["n_points"],
            "n_brems": counts["n_brems"][:n_events],
            "n_delta": counts["n_delta"][:n_events],
        }
    )
    return Batch(sources, clusters, truth)
