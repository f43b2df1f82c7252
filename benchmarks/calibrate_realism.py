"""Compare synthetic main-electron clusters with a real DUNE ES TP dump (issue 2 acceptance).

For main electron clusters of 7–24 MeV electrons, per plane: median SoT, adc_peak, adc_integral
(over the clusters' TPs), TPs per cluster, channel span and tick span, real vs synthetic, and the
ratio (acceptance: every ratio within ×1.5). The real file is clustered with the production's own
clustering code, so both sides go through identical cuts.

    python benchmarks/calibrate_realism.py REAL_FILE.root

REAL_FILE.root: a real DUNE ES TP-stream simulation file (TTree of TPs with their back-tracked
truth), as the team calibrates with; none ships with the project.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
import uproot

from edtrain import detector
from edtrain.simulation.clustering import Clusters, cluster_tps
from edtrain.simulation.events import simulate_batch
from edtrain.simulation.readout import TriggerPrimitives

TP_TREE = "triggerAnaDumpTPs/TriggerPrimitives/tpmakerTPC__TriggerAnaTree1x2x2"
TRUTH_TREE = "triggerAnaDumpTPs/mctruths"
ELECTRON_TRACK_IDS = (2, -2)  # backtracker id of the ES electron (and its descendants)
ENERGY_RANGE_MEV = (7.0, 24.0)
QUANTITIES = ("sot", "adc_peak", "adc_integral", "tps", "channel_span", "tick_span")


def real_clusters(path: str) -> tuple[Clusters, np.ndarray]:
    """Cluster the real TPs with the production's clustering; returns clusters and electron T."""
    try:
        tps = uproot.open(path)[TP_TREE].arrays(library="np")
        truth = uproot.open(path)[TRUTH_TREE].arrays(library="np")
    except (OSError, KeyError) as err:
        raise SystemExit(f"cannot read {TP_TREE!r} / {TRUTH_TREE!r} from {path}: {err}") from err
    events, event = np.unique(tps["Event"], return_inverse=True)
    is_electron = np.isin(tps["bt_primary_track_id"], ELECTRON_TRACK_IDS)
    channel = tps["channel"].astype(np.int64)
    real = TriggerPrimitives(
        event=event.astype(np.int64),
        plane=tps["readout_view"].astype(np.int64),
        apa=channel // detector.CHANNELS_PER_APA,
        channel=channel % detector.CHANNELS_PER_APA,
        time_start=(tps["time_start"] // detector.TICKS_PER_SAMPLE).astype(np.int64),
        sot=tps["samples_over_threshold"].astype(np.int64),
        samples_to_peak=tps["samples_to_peak"].astype(np.int64),
        adc_peak=tps["adc_peak"].astype(np.int64),
        adc_integral=tps["adc_integral"].astype(np.int64),
        marley_fraction=is_electron.astype(np.float64),
        energy=tps["bt_edep"].astype(np.float64),
        source=np.where(is_electron, event, -1).astype(np.int64),
    )
    # The primary electron of each event: status-1 pdg-11 MC truth, T = E − m [MeV].
    final = (truth["status_code"] == 1) & (truth["pdg"] == 11)
    kinetic = np.zeros(events.size)
    which = np.searchsorted(events, truth["Event"][final])
    kinetic[which] = truth["energy"][final] * 1000.0 - 0.511
    return cluster_tps(real, np.zeros(events.size, dtype=np.int64)), kinetic


def main_cluster_stats(clusters: Clusters, electron_ke: np.ndarray) -> pd.DataFrame:
    """Per-plane medians for the main clusters of events whose electron is in ENERGY_RANGE_MEV:
    SoT, adc_peak, adc_integral over their TPs; TPs, channel and tick span per cluster."""
    lo, hi = ENERGY_RANGE_MEV
    ke = electron_ke[clusters.event]
    chosen = clusters.is_main & (ke >= lo) & (ke <= hi)
    tps, starts = clusters.tps, clusters.offsets[:-1]
    cluster_of_tp = np.repeat(np.arange(clusters.size), np.diff(clusters.offsets))
    plane_names = np.array(detector.PLANES)
    end = tps.time_start + tps.sot
    per_cluster = pd.DataFrame(
        {
            "plane": plane_names[clusters.plane],
            "tps": np.diff(clusters.offsets),
            "channel_span": np.maximum.reduceat(tps.channel, starts)
            - np.minimum.reduceat(tps.channel, starts)
            + 1,
            "tick_span": np.maximum.reduceat(end, starts)
            - np.minimum.reduceat(tps.time_start, starts),
        }
    )[chosen]
    in_chosen = chosen[cluster_of_tp]
    tp_frame = pd.DataFrame(
        {
            "plane": plane_names[tps.plane[in_chosen]],
            "sot": tps.sot[in_chosen],
            "adc_peak": tps.adc_peak[in_chosen],
            "adc_integral": tps.adc_integral[in_chosen],
        }
    )
    tp_medians = tp_frame.groupby("plane")[["sot", "adc_peak", "adc_integral"]].median()
    size_medians = per_cluster.groupby("plane")[["tps", "channel_span", "tick_span"]].median()
    counts = per_cluster.groupby("plane").size().rename("clusters")
    return tp_medians.join(size_medians).join(counts)


def realism_table(real: pd.DataFrame, synthetic: pd.DataFrame) -> str:
    """Markdown table: per plane and quantity, real and synthetic medians and their ratio."""
    lines = [
        "| plane | quantity | real median | synthetic median | ratio | within ×1.5 |",
        "|---|---|---|---|---|---|",
    ]
    for plane in detector.PLANES:
        for q in QUANTITIES:
            r, s = float(real.loc[plane, q]), float(synthetic.loc[plane, q])
            ratio = s / r
            ok = "yes" if 1 / 1.5 <= ratio <= 1.5 else "NO"
            lines.append(f"| {plane} | {q} | {r:g} | {s:g} | {ratio:.2f} | {ok} |")
    counts = (
        f"main clusters used (U/V/X): real "
        f"{'/'.join(str(int(real.loc[p, 'clusters'])) for p in detector.PLANES)}, synthetic "
        f"{'/'.join(str(int(synthetic.loc[p, 'clusters'])) for p in detector.PLANES)}"
    )
    return "\n".join(lines) + "\n\n" + counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", help="a real DUNE ES TP-stream simulation file (.root)")
    parser.add_argument("--events", type=int, default=2000, help="synthetic events (flat spectrum)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    real_cl, real_ke = real_clusters(args.real)
    real = main_cluster_stats(real_cl, real_ke)
    batch = simulate_batch(np.random.default_rng(args.seed), args.events, "flat")
    synthetic = main_cluster_stats(batch.clusters, batch.truth.electron_ke_mev.to_numpy())
    table = realism_table(real, synthetic)
    print(table)
    return 0 if "| NO |" not in table else 1


if __name__ == "__main__":
    sys.exit(main())
