"""Dataset assembly speed and memory: `edtrain chunk` + `edtrain assemble` against the
predecessor's loader (benchmarks/predecessor_loader.py) on the same synthetic nov11-layout files.

The production is fake but shaped like nov11: 4239 files for 170,709 triplets (≈ 40.3 per file),
each plane file with ~120 clusters of which only the matched main-track ones are used (that row
count reproduces the predecessor's 0.2 MB of RSS per triplet). Files are written once under
--workdir; each size N reads a folder of links to the first ceil(N / 40.27) basenames, so
10k ⊂ 50k ⊂ 170k. Every process runs alone with warm caches; peak RSS comes from wait4. Each
loader runs --repeats times, the loaders in turn, and the table shows each loader's run of
median wall time (ratios are of medians) with every run's wall time beside it. With a size
under 1000 first (40: one basename), that run measures each loader's fixed costs (start-up,
imports, output files) and a second table gives the rate per triplet beyond them.

    .venv/bin/python benchmarks/assembly_speed.py --sizes 40 10000 50000 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

from edtrain.formats import columns as col
from edtrain.formats.npz import write_plane_npz

TRIPLETS_PER_FILE = 170_709 / 4239
ROWS_PER_PLANE = 120
HERE = os.path.dirname(os.path.abspath(__file__))
EDTRAIN = [sys.executable, "-m", "edtrain.cli"]


def basename(i: int) -> str:
    stamp = "20231111T120000"
    return (
        f"prodmarley_nue_flat_es_dune10kt_1x2x2_{stamp}_gen_{i:06d}"
        f"_supernova_g4_detsim_ana_{stamp}_bg_matched"
    )


def _plane_rows(plane: str, events, match_ids, main, rng, width=14):
    n = len(events)
    meta = np.zeros((n, width), dtype=np.float32)
    meta[:, col.EVENT], meta[:, col.MATCH_ID], meta[:, col.IS_MAIN_TRACK] = events, match_ids, main
    meta[:, col.IS_MARLEY] = match_ids >= 0
    meta[:, col.IS_ES] = 1
    meta[:, col.POS] = rng.uniform(-300, 300, size=(n, 3))
    meta[:, col.MOM] = rng.normal(size=(n, 3)) * 0.01
    meta[:, col.CLUSTER_ENERGY] = rng.uniform(2, 40, n)
    meta[:, col.PARTICLE_ENERGY] = meta[:, col.CLUSTER_ENERGY] * 1.1
    meta[:, col.PLANE] = col.PLANE_ID[plane]
    images = np.zeros((n, *col.IMAGE_SHAPE), dtype=np.float32)
    images[:, 50:80, 12:20] = rng.integers(0, 900, size=(n, 30, 8))
    return images, meta


def write_fake_basename(folder: str, i: int) -> None:
    """One basename of ~40 triplets, each plane padded with unmatched and noise clusters."""
    rng = np.random.default_rng(i)
    n = 40 + int(rng.random() < TRIPLETS_PER_FILE - 40)
    events = 10_000 + rng.choice(5_000, ROWS_PER_PLANE, replace=False)
    match_ids = np.arange(ROWS_PER_PLANE)
    for plane in col.PLANES:
        extra = 3 if plane == "X" else 0  # main-track X clusters without U/V partners
        m = np.where(np.arange(ROWS_PER_PLANE) < n + extra, match_ids, -1)
        main = (np.arange(ROWS_PER_PLANE) < n + extra) & (plane == "X")
        if plane != "X":
            m[n : n + extra] = -1
        order = rng.permutation(ROWS_PER_PLANE)
        images, meta = _plane_rows(plane, events[order], m[order], main[order], rng)
        write_plane_npz(os.path.join(folder, f"{basename(i)}_plane{plane}.npz"), images, meta)


def production(workdir: str, size: int) -> str:
    """The folder for a size: links to the first files of one shared fake production."""
    files = os.path.join(workdir, "files")
    os.makedirs(files, exist_ok=True)
    n_files = math.ceil(size / TRIPLETS_PER_FILE)
    for i in range(n_files):
        if not os.path.exists(os.path.join(files, f"{basename(i)}_planeX.npz")):
            write_fake_basename(files, i)
    folder = os.path.join(workdir, f"prod_{size}")
    os.makedirs(folder, exist_ok=True)
    for i in range(n_files):
        for plane in col.PLANES:
            name = f"{basename(i)}_plane{plane}.npz"
            link = os.path.join(folder, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join("..", "files", name), link)
    return folder


def warm(folder: str) -> int:
    """Read every file once so that both loaders start from the page cache; returns bytes."""
    total = 0
    for entry in os.scandir(folder):
        with open(entry.path, "rb") as f:
            while chunk := f.read(1 << 24):
                total += len(chunk)
    return total


def measured(commands: list[list[str]], log: str) -> tuple[float, float, list[int], list[str]]:
    """Run commands concurrently; wall time, CPU time (all), each one's peak RSS and stdout."""
    start = time.perf_counter()
    procs, outs = [], []
    for k, cmd in enumerate(commands):
        out = open(f"{log}.{k}.out", "w+")  # closed below
        err = open(f"{log}.{k}.err", "w")  # closed below
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=err), out, err))
    rss, cpu = [], 0.0
    for proc, out, err in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.close()
        if proc.returncode != 0:
            raise RuntimeError(f"{proc.args} failed; see {err.name}")
        rss.append(usage.ru_maxrss * 1024)
        cpu += usage.ru_utime + usage.ru_stime
        out.seek(0)
        outs.append(out.read())
        out.close()
    return time.perf_counter() - start, cpu, rss, outs


def run_edtrain(folder: str, out: str, chunks: int, jobs: int) -> dict:
    """chunk (``jobs`` at a time) then assemble; times, peak RSS and the manifest."""
    os.makedirs(out)
    chunk_dirs = [os.path.join(out, f"chunk{i}") for i in range(chunks)]
    chunk_wall, chunk_cpu, chunk_rss = 0.0, 0.0, []
    for first in range(0, chunks, jobs):
        batch = range(first, min(first + jobs, chunks))
        cmds = [[*EDTRAIN, "chunk", "--inputs", folder, "--out", chunk_dirs[i]] for i in batch]
        cmds = [
            [*c, "--chunk", str(i), "--chunks", str(chunks)]
            for c, i in zip(cmds, batch, strict=True)
        ]
        wall, cpu, rss, _ = measured(cmds, os.path.join(out, f"chunk{first}"))
        chunk_wall += wall
        chunk_cpu += cpu
        chunk_rss += rss
    dataset = os.path.join(out, "dataset")
    cmd = [
        *EDTRAIN,
        "assemble",
        "--chunks",
        *chunk_dirs,
        "--out",
        dataset,
        "--test-fraction",
        "0.1",
    ]
    assemble_wall, assemble_cpu, assemble_rss, _ = measured([cmd], os.path.join(out, "assemble"))
    with open(os.path.join(dataset, "manifest.json")) as f:
        manifest = json.load(f)
    return {
        "chunk_s": chunk_wall,
        "assemble_s": assemble_wall,
        "wall_s": chunk_wall + assemble_wall,
        "chunk_cpu_s": chunk_cpu,
        "assemble_cpu_s": assemble_cpu,
        "cpu_s": chunk_cpu + assemble_cpu,
        "peak_rss_bytes": max(chunk_rss + assemble_rss),
        "chunk_rss_bytes": max(chunk_rss),
        "assemble_rss_bytes": assemble_rss[0],
        "triplets": manifest["samples"],
        "bytes_read": sum(i.get("bytes_read", 0) for i in manifest["inputs"]),
        "dataset_hash": manifest["dataset_hash"],
    }


def run_predecessor(folder: str, out: str) -> dict:
    os.makedirs(out)
    cmd = [sys.executable, os.path.join(HERE, "predecessor_loader.py"), folder]
    wall, cpu, rss, outs = measured([cmd], os.path.join(out, "predecessor"))
    return {**json.loads(outs[0]), "wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": rss[0]}


def benchmark(size: int, args: argparse.Namespace) -> dict:
    """Each loader ``args.repeats`` times, in turn; per loader the run of median wall time."""
    folder = production(args.workdir, size)
    out = os.path.join(args.workdir, f"run_{size}")
    loaders = {
        "edtrain_1": lambda d: run_edtrain(folder, d, chunks=1, jobs=1),
        "edtrain_n": lambda d: run_edtrain(folder, d, args.chunks, args.jobs),
    }
    if size <= args.predecessor_max:
        loaders["predecessor"] = lambda d: run_predecessor(folder, d)
    runs: dict[str, list[dict]] = {name: [] for name in loaders}
    result: dict = {"size": size, "production_bytes": warm(folder)}
    for _ in range(args.repeats):  # in turn, so drifting machine state hits all alike
        for name, run in loaders.items():
            subprocess.run(["rm", "-rf", out], check=True)
            os.makedirs(out)
            warm(folder)
            runs[name].append(run(os.path.join(out, name)))
    subprocess.run(["rm", "-rf", out], check=True)
    for name, done in runs.items():
        result[name] = {
            **sorted(done, key=lambda m: m["wall_s"])[len(done) // 2],
            "walls": [round(m["wall_s"], 2) for m in done],
        }
    hashes = {m["dataset_hash"] for name in ("edtrain_1", "edtrain_n") for m in runs[name]}
    result["identical_across_chunkings"] = len(hashes) == 1
    return result


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    mb = 1 / 2**20
    head = (
        "| triplets | loader | processes | wall s | triplets/s | vs predecessor | CPU s "
        "| triplets/CPU-s | vs predecessor | peak RSS MB (chunk / assemble) | RSS/triplet kB "
        "| read/triplet kB | wall s, every run |\n" + "|---" * 13 + "|"
    )
    lines = [head]
    for r in results:
        old = r.get("predecessor")
        runs = [("predecessor", "1", old), ("edtrain", "1", r["edtrain_1"])]
        runs.append(("edtrain", f"{args.chunks} chunks, {args.jobs} at a time", r["edtrain_n"]))
        for name, procs, m in runs:
            if m is None:
                lines.append(f"| {r['size']} | predecessor | 1 | not run (RAM) |" + " |" * 9)
                continue
            n, rss = m["triplets"], m["peak_rss_bytes"]
            wall, cpu = m["wall_s"], m["cpu_s"]
            per_step = ""
            if "chunk_rss_bytes" in m:
                per_step = (
                    f" ({m['chunk_rss_bytes'] * mb:,.0f} / {m['assemble_rss_bytes'] * mb:,.0f})"
                )
            ratio = f"{old['wall_s'] / wall:.1f}×" if old else ""
            cpu_ratio = f"{old['cpu_s'] / cpu:.1f}×" if old else ""
            lines.append(
                f"| {n} | {name} | {procs} | {wall:.1f} | {n / wall:,.0f} | {ratio} | {cpu:.1f} "
                f"| {n / cpu:,.0f} | {cpu_ratio} | {rss * mb:,.0f}{per_step} | {rss / n / 1e3:.1f} "
                f"| {m['bytes_read'] / n / 1e3:.0f} | {', '.join(map(str, m['walls']))} |"
            )
    return "\n".join(lines)


def marginal(results: list[dict], args: argparse.Namespace) -> str:
    """Wall time per triplet beyond the smallest size's run, which measures the fixed costs
    (process start-up, imports, output files): the loaders' rates once they are running."""
    base, *rest = results
    loaders = [("predecessor", "predecessor"), ("edtrain_1", "edtrain, 1 chunk")]
    loaders.append(("edtrain_n", f"edtrain, {args.chunks} chunks {args.jobs} at a time"))
    fixed = ", ".join(
        f"{label} {base[key]['wall_s']:.2f} s" for key, label in loaders if key in base
    )
    lines = [
        f"Fixed costs (the {base['edtrain_1']['triplets']}-triplet run): {fixed}.\n",
        "| triplets | loader | µs per triplet beyond them | triplets/s | vs predecessor |",
        "|---|---|---|---|---|",
    ]
    for r in rest:
        rate = {}
        for key, label in loaders:
            if key not in r or key not in base:
                continue
            extra = r[key]["triplets"] - base[key]["triplets"]
            rate[key] = (r[key]["wall_s"] - base[key]["wall_s"]) / extra
            ratio = f"{rate['predecessor'] / rate[key]:.1f}×" if "predecessor" in rate else ""
            lines.append(
                f"| {r[key]['triplets']} | {label} | {rate[key] * 1e6:.1f} "
                f"| {1 / rate[key]:,.0f} | {ratio} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--workdir", default=os.path.join(HERE, "out", "assembly"))
    parser.add_argument("--chunks", type=int, default=2, help="chunks of the parallel run")
    parser.add_argument("--jobs", type=int, default=2, help="chunk processes at a time")
    parser.add_argument("--repeats", type=int, default=3, help="runs per loader (median shown)")
    parser.add_argument(
        "--predecessor-max", type=int, default=50_000, help="largest size the old loader runs at"
    )
    args = parser.parse_args()
    results = []
    for size in sorted(args.sizes):
        results.append(benchmark(size, args))
        print(json.dumps(results[-1]), flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
    print(markdown(results, args))
    if len(results) > 1 and results[0]["size"] < 1000:
        print("\n" + marginal(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
