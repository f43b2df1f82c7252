"""Events per second per core of `edtrain simulate` (full chain, file writing included), and the
oracle's 68 % containment on the produced events (docs/physics.md §4: ≈ 24° vertex-free, SN
spectrum).

One process is one core: the production runs with --jobs 1; events/s/core divides the events by
the process's CPU time (the wall time is printed too, but on a shared machine it measures the
neighbours as well). Outputs go to a temporary directory.

    python benchmarks/simulation_speed.py [--files 2] [--events-per-file 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from edtrain.cli import main as edtrain
from edtrain.simulation.simulate import PRODUCTION_DIR, TRUTH_DIR


def oracle_table(truth: pd.DataFrame) -> str:
    """Markdown rows: oracle 68 % containment and median, pooled and by electron energy."""
    lines = [
        "| electrons | n | vertex-free 68 % | vertex-free median | vertex-known 68 % |",
        "|---|---|---|---|---|",
    ]
    selections = [("all (T ≥ 2 MeV)", truth.electron_ke_mev >= 0)]
    selections.append(("T ≥ 5 MeV", truth.electron_ke_mev >= 5))
    selections.append(("with a main U/V/X triplet", truth.has_main_triplet))
    for lo, hi in ((4, 6), (9, 11), (18, 22), (27, 33)):
        selections.append((f"{lo}–{hi} MeV", truth.electron_ke_mev.between(lo, hi)))
    for name, sel in selections:
        free = truth.oracle_error_deg[sel]
        known = truth.oracle_vertex_known_error_deg[sel]
        lines.append(
            f"| {name} | {sel.sum()} | {np.percentile(free, 68):.1f}° | "
            f"{np.median(free):.1f}° | {np.percentile(known, 68):.1f}° |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--events-per-file", type=int, default=500)
    parser.add_argument("--spectrum", default="supernova")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    events = args.files * args.events_per_file
    with tempfile.TemporaryDirectory() as tmp:
        command = ["simulate", "--out", tmp, "--files", str(args.files)]
        command += ["--events-per-file", str(args.events_per_file), "--seed", str(args.seed)]
        command += ["--spectrum", args.spectrum, "--jobs", "1"]
        start, cpu_start = time.perf_counter(), time.process_time()
        rc = edtrain(command)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        truth_dir = Path(tmp) / PRODUCTION_DIR / TRUTH_DIR
        truth = pd.concat(pd.read_parquet(p) for p in sorted(truth_dir.glob("*.parquet")))
    if rc != 0:
        return rc
    print(
        f"cpu cores visible: {os.cpu_count()}; one process; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{events} events in {args.files} files ({args.spectrum}): {wall:.2f} s wall "
        f"({events / wall:.0f} events/s), {cpu:.2f} s CPU ({events / cpu:.0f} events/s/core)"
    )
    print()
    print(oracle_table(truth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
