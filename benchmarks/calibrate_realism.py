"""Compare synthetic main-electron clusters with a real DUNE ES TP dump.

For main electron clusters of 7–24 MeV electrons, per plane: median SoT, adc_peak, adc_integral
(over the clusters' TPs), TPs per cluster, channel span and tick span, real vs synthetic, their
ratio and its bootstrap interval (whole clusters resampled on both sides: a real file holds only
a few). Acceptance: every ratio within ×1.5, U and V adc_integral within ×1.25. The real TPs are
clustered with the production's own code (upstream's algorithm), so both sides go through
identical clustering and cuts.

    python benchmarks/calibrate_realism.py REAL_FILE.root

REAL_FILE.root: a real DUNE ES TP-stream simulation file (a TTree of TPs with their
back-tracked truth, ``triggerAnaDumpTPs/...``, as DUNE's trigger-analysis module writes it);
none ships with the project. Such files come from DUNE's supernova-trigger simulation
productions (ask the DUNE DAQ/trigger group for one).
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
CLUSTER_QUANTITIES = ("tps", "channel_span", "tick_span")  # one value per cluster
# Acceptance: every ratio within ×1.5, the induction planes' charge within ×1.25.
LIMITS = {("U", "adc_integral"): 1.25, ("V", "adc_integral"): 1.25}
BOOTSTRAP = 2000


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


def main_clusters(clusters: Clusters, electron_ke: np.ndarray) -> pd.DataFrame:
    """One row per TP of the main clusters of events whose electron is in ENERGY_RANGE_MEV:
    plane, cluster, SoT, adc_peak, adc_integral, and its cluster's TPs, channel and tick span."""
    lo, hi = ENERGY_RANGE_MEV
    ke = electron_ke[clusters.event]
    chosen = clusters.is_main & (ke >= lo) & (ke <= hi)
    tps, starts = clusters.tps, clusters.offsets[:-1]
    sizes = np.diff(clusters.offsets)
    cluster_of_tp = np.repeat(np.arange(clusters.size), sizes)
    end = tps.time_start + tps.sot
    span = {
        "tps": sizes,
        "channel_span": np.maximum.reduceat(tps.channel, starts)
        - np.minimum.reduceat(tps.channel, starts)
        + 1,
        "tick_span": np.maximum.reduceat(end, starts) - np.minimum.reduceat(tps.time_start, starts),
    }
    frame = pd.DataFrame(
        {
            "plane": np.array(detector.PLANES)[tps.plane],
            "cluster": cluster_of_tp,
            "sot": tps.sot,
            "adc_peak": tps.adc_peak,
            "adc_integral": tps.adc_integral,
            **{k: v[cluster_of_tp] for k, v in span.items()},
        }
    )
    return frame[chosen[cluster_of_tp]]


def _median_and_resamples(tps: pd.DataFrame, quantity: str, rng: np.random.Generator):
    """The median of a quantity over a plane's main clusters (over their TPs for TP
    quantities, over clusters for the cluster sizes), and its BOOTSTRAP resamples, drawing
    whole clusters with replacement."""
    if quantity in CLUSTER_QUANTITIES:
        tps = tps.drop_duplicates("cluster")
    _, cluster = np.unique(tps["cluster"].to_numpy(), return_inverse=True)
    values = tps[quantity].to_numpy(np.float64)
    n = int(cluster.max()) + 1
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP)
    order = np.argsort(values, kind="stable")
    weight = np.cumsum(counts[:, cluster[order]], axis=1)
    middle = np.argmax(weight >= weight[:, -1:] / 2, axis=1)
    return float(np.median(values)), values[order][middle]


def realism_table(real: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0) -> str:
    """Markdown table: per plane and quantity, real and synthetic medians, their ratio with the
    16–84 % bootstrap interval, and whether it meets the acceptance (LIMITS)."""
    rng = np.random.default_rng(seed)
    lines = [
        "| plane | quantity | real median | synthetic median | ratio | bootstrap 16–84 % | limit "
        "| within |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for plane in detector.PLANES:
        for q in QUANTITIES:
            r, r_boot = _median_and_resamples(real[real.plane == plane], q, rng)
            s, s_boot = _median_and_resamples(synthetic[synthetic.plane == plane], q, rng)
            ratio, (lo, hi) = s / r, np.percentile(s_boot / r_boot, [16, 84])
            limit = LIMITS.get((plane, q), 1.5)
            ok = "yes" if 1 / limit <= ratio <= limit else "NO"
            lines.append(
                f"| {plane} | {q} | {r:g} | {s:g} | {ratio:.2f} | {lo:.2f}–{hi:.2f} | ×{limit:g} "
                f"| {ok} |"
            )
    used = [
        "/".join(str(frame[frame.plane == p].cluster.nunique()) for p in detector.PLANES)
        for frame in (real, synthetic)
    ]
    return "\n".join(lines) + f"\n\nmain clusters used (U/V/X): real {used[0]}, synthetic {used[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", help="a real DUNE ES TP-stream simulation file (.root)")
    parser.add_argument("--events", type=int, default=2000, help="synthetic events (flat spectrum)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    real = main_clusters(*real_clusters(args.real))
    batch = simulate_batch(np.random.default_rng(args.seed), args.events, "flat")
    synthetic = main_clusters(batch.clusters, batch.truth.electron_ke_mev.to_numpy())
    table = realism_table(real, synthetic, args.seed)
    print(table)
    return 0 if "| NO |" not in table else 1


if __name__ == "__main__":
    sys.exit(main())
