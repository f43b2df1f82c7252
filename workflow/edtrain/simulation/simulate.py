"""The ``edtrain simulate`` command: a synthetic production in the real EOS layout.

Each file is simulated from its own generator seeded with (seed, file index), so files are
independent, reproducible one by one and can be produced by any number of processes or jobs.
Per file: the matched-cluster ROOT file, the flat (14-column, nov11) and per-plane (18-column)
image npz files, and a truth parquet with the oracle; ``production.json`` is written last and is
the marker that the whole production is complete.
"""

from __future__ import annotations

import argparse
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from edtrain import __version__, detector
from edtrain.formats.root import cluster_file_writer, write_cluster_file
from edtrain.render import FLIP_CONVENTIONS, render_planes
from edtrain.simulation import GENERATOR_VERSION
from edtrain.simulation.background import GENERATORS
from edtrain.simulation.clustering import CUTS, MARLEY, Clusters
from edtrain.simulation.events import Batch, simulate_batch
from edtrain.simulation.kinematics import SPECTRA
from edtrain.simulation.matching import time_order

log = logging.getLogger(__name__)

PRODUCTION_DIR = Path("eos/user/e/evilla/dune/sn-tps/production_es")
CONDITIONS = "tick3_ch2_min2_tot3_e2p0"
MATCHED_DIR = f"es_matched_clusters_{CONDITIONS}"
FLAT_IMAGES_DIR = "cluster_images_nov11"
PLANE_IMAGES_DIR = f"es_cluster_images_{CONDITIONS}"
TRUTH_DIR = "truth"
SUMMARY = "production.json"
EVENT_BASE = 10_000  # MC-like event numbers: EVENT_BASE + file·events_per_file + i + 1


def basename(file_index: int, spectrum: str = "flat") -> str:
    """Upstream-style basename (fixed timestamps: names must not depend on the wall clock)."""
    return (
        f"prodmarley_nue_{spectrum}_es_dune10kt_1x2x2_20251111T120000_gen_{file_index:06d}"
        "_supernova_g4_detsim_ana_20251111T130000"
    )


def _cluster_truth(batch: Batch, event_number: np.ndarray) -> dict[str, np.ndarray]:
    """Per-cluster truth columns from the dominant source and the event's neutrino."""
    c = batch.clusters
    src = batch.sources.iloc[np.maximum(c.source, 0)]
    known = c.source >= 0
    truth = batch.truth.iloc[c.event]
    nu_mom = truth[["nu_dir_x", "nu_dir_y", "nu_dir_z"]].to_numpy() * (
        truth.nu_energy_mev.to_numpy()[:, None] / 1000.0
    )

    def pick(column: str) -> np.ndarray:
        return np.where(known, src[column].to_numpy(), 0.0)

    labels = np.array(GENERATORS)[src.generator.to_numpy()]
    # upstream: the dominant particle's neutrino; background particles carry energy 0,
    # clusters without truth −1
    signal = known & (src.generator.to_numpy() == MARLEY)
    nu_energy = np.where(signal, np.rint(truth.nu_energy_mev.to_numpy()), np.where(known, 0, -1))
    nu_mom = nu_mom * signal[:, None]
    return {
        "event": event_number[c.event],
        "true_pos_x": pick("x"),
        "true_pos_y": pick("y"),
        "true_pos_z": pick("z"),
        "true_mom_x": pick("px"),
        "true_mom_y": pick("py"),
        "true_mom_z": pick("pz"),
        "true_pdg": np.where(known, src.pdg.to_numpy(), 0),
        "true_label": np.where(known, labels, "UNKNOWN"),
        "true_neutrino_energy": nu_energy,
        "is_es_interaction": signal,
        "true_neutrino_mom_x": nu_mom[:, 0],
        "true_neutrino_mom_y": nu_mom[:, 1],
        "true_neutrino_mom_z": nu_mom[:, 2],
    }


def _tree_data(c: Clusters, truth: dict[str, np.ndarray], select: np.ndarray) -> dict:
    """Branch arrays of the selected clusters for one tree: accepted clusters in upstream's
    matched-file order (``matching.time_order``), discarded ones in cluster_id order."""
    idx = np.flatnonzero(select)
    if c.accepted[idx].all():
        idx = time_order(c, idx)
    counts = np.diff(c.offsets)[idx]
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    tp_index = np.repeat(c.offsets[idx], counts) + within
    tps = c.tps
    data = {k: v[idx] for k, v in truth.items()}
    data.update(
        {
            "n_tps": counts,
            "true_particle_energy": c.particle_energy[idx],
            "supernova_tp_fraction": c.marley_tp_fraction[idx],
            "generator_tp_fraction": c.generator_tp_fraction[idx],
            "marley_tp_fraction": c.marley_tp_fraction[idx],
            "total_charge": c.total_charge[idx],
            "total_energy": c.total_energy[idx],
            "is_main_cluster": c.is_main[idx],
            "cluster_id": c.cluster_id[idx],
            "match_id": c.match_id[idx],
            "match_type": c.match_type[idx],
            "matching_clusterId_U": c.matching_u[idx],
            "matching_clusterId_V": c.matching_v[idx],
            "tp_offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            "tp_detector_channel": tps.channel[tp_index],
            "tp_detector": tps.apa[tp_index],
            "tp_samples_over_threshold": tps.sot[tp_index],
            "tp_samples_to_peak": tps.samples_to_peak[tp_index],
            "tp_time_start": tps.time_start[tp_index] * detector.TICKS_PER_SAMPLE,
            "tp_adc_peak": tps.adc_peak[tp_index],
            "tp_adc_integral": tps.adc_integral[tp_index],
            "tp_simide_energy": tps.energy[tp_index],
        }
    )
    return data


def write_file(
    root: Path,
    file_index: int,
    seed: int,
    events_per_file: int,
    spectrum: str,
    convention: str,
) -> dict[str, int]:
    """Simulate and write one input file's outputs; returns its counts."""
    rng = np.random.default_rng([seed, file_index])
    batch = simulate_batch(rng, events_per_file, spectrum)
    c = batch.clusters
    event_number = EVENT_BASE + file_index * events_per_file + np.arange(events_per_file) + 1
    truth = _cluster_truth(batch, event_number)
    trees = {
        directory: {
            plane: _tree_data(c, truth, (c.plane == p) & (c.accepted == keep))
            for p, plane in enumerate(detector.PLANES)
        }
        for directory, keep in (("clusters", True), ("discarded", False))
    }
    name = basename(file_index, spectrum)
    base = root / PRODUCTION_DIR
    for sub in (
        MATCHED_DIR,
        FLAT_IMAGES_DIR,
        TRUTH_DIR,
        *(f"{PLANE_IMAGES_DIR}/{p}" for p in detector.PLANES),
    ):
        (base / sub).mkdir(parents=True, exist_ok=True)
    write_cluster_file(base / MATCHED_DIR / f"{name}_bg_matched.root", trees, CUTS)
    planes = render_planes(trees["clusters"], convention)
    for plane, (images, meta) in planes.items():
        stem = f"{name}_bg_matched_plane{plane}.npz"
        np.savez(base / FLAT_IMAGES_DIR / stem, images=images, metadata=meta[:, :14])
        np.savez(base / PLANE_IMAGES_DIR / plane / stem, images=images, metadata=meta)

    x = trees["clusters"]["X"]
    triplet = (x["matching_clusterId_U"] >= 0) & (x["matching_clusterId_V"] >= 0)
    main_x = x["is_main_cluster"] & triplet
    main_match = pd.Series(x["match_id"][main_x], index=x["event"][main_x])
    events = pd.DataFrame({"basename": name, "event": event_number})
    events = pd.concat([events, batch.truth], axis=1)
    events["main_match_id"] = main_match.reindex(event_number).fillna(-1).to_numpy().astype(int)
    events["has_main_triplet"] = events.main_match_id >= 0
    events.to_parquet(base / TRUTH_DIR / f"{name}_truth.parquet", index=False)
    return {
        "events": events_per_file,
        **{f"clusters_{p}": int(trees["clusters"][p]["event"].size) for p in detector.PLANES},
        **{f"discarded_{p}": int(trees["discarded"][p]["event"].size) for p in detector.PLANES},
        "matched_triplets": int(triplet.sum()),
        "main_triplets": int(main_x.sum()),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="production root directory")
    parser.add_argument(
        "--files", required=True, type=int, help="number of files (one ES run each)"
    )
    parser.add_argument(
        "--events-per-file", required=True, type=int, help="supernova ES events in each file"
    )
    parser.add_argument(
        "--seed", required=True, type=int, help="the same seed gives the same files, byte for byte"
    )
    parser.add_argument(
        "--spectrum",
        choices=SPECTRA,
        default="supernova",
        help="neutrino energy spectrum (default: supernova)",
    )
    parser.add_argument("--first-file", type=int, default=0, help="index of the first file")
    parser.add_argument(
        "--flip-convention",
        choices=FLIP_CONVENTIONS,
        default="consistent",
        help="image orientation (docs/simulation.md; default: consistent)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.epilog = (
        "example: edtrain simulate --out prod --files 4 --events-per-file 200 --seed 1 --jobs 2"
    )


def main(args: argparse.Namespace) -> int:
    if args.files < 1 or args.events_per_file < 1 or args.jobs < 1 or args.first_file < 0:
        log.error("--files, --events-per-file and --jobs must be ≥ 1, --first-file ≥ 0")
        return 2
    indices = range(args.first_file, args.first_file + args.files)
    task = (args.seed, args.events_per_file, args.spectrum, args.flip_convention)
    if args.jobs == 1:
        counts = [write_file(args.out, i, *task) for i in indices]
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            counts = list(pool.map(_write_file_star, [(args.out, i, *task) for i in indices]))
    totals = {k: int(sum(c[k] for c in counts)) for k in counts[0]}
    summary = {
        "edtrain_version": __version__,
        "generator_version": GENERATOR_VERSION,
        "production": str(PRODUCTION_DIR),
        "files": args.files,
        "first_file": args.first_file,
        "events_per_file": args.events_per_file,
        "events": totals.pop("events"),
        "seed": args.seed,
        "file_seeds": [[args.seed, i] for i in indices],
        "spectrum": args.spectrum,
        "flip_convention": args.flip_convention,
        "label_frame": "detector (labels never flipped)",
        "cluster_files": cluster_file_writer(),
        "directories": {
            "matched_clusters": MATCHED_DIR,
            "flat_images": FLAT_IMAGES_DIR,
            "plane_images": PLANE_IMAGES_DIR,
            "truth": TRUTH_DIR,
        },
        "basenames": [basename(i, args.spectrum) for i in indices],
        "counts": totals,
    }
    (args.out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    log.info("wrote %d files, %d events under %s", args.files, summary["events"], args.out)
    return 0


def _write_file_star(arguments: tuple) -> dict[str, int]:
    return write_file(*arguments)
