"""The ``chunk`` command: one share of a production's basenames → a chunk directory.

Basenames are assigned to chunks by a hash of the name, so chunks are independent jobs and adding
files to a production never moves existing ones. A chunk directory holds ``images.npy`` (float16),
``samples.parquet`` (row i ↔ images[i]) and ``chunk.json`` (inputs, skips, counts, selection),
written last so that its presence means the chunk is complete.

Samples are gathered in memory up to ``RUN_ROWS`` at a time and written sorted by key hash, so a
chunk is a few sorted runs: ``assemble`` then merges runs with long sequential reads instead of
gathering single samples from all over every chunk file.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from edtrain.dataset.allocator import reuse_freed_memory
from edtrain.dataset.discover import chunk_of, discover
from edtrain.dataset.extract import BadFile, columns_to_table, extract
from edtrain.dataset.images import ImageWriter, aligned_empty
from edtrain.dataset.manifest import (
    CHUNK_MANIFEST,
    Skip,
    SkipRow,
    add_counts,
    report_skips,
    row_records,
    skip_records,
    write_json,
)
from edtrain.dataset.match import Cuts
from edtrain.dataset.progress import progress
from edtrain.dataset.storage import storage_for

# edtrain.imaging.FLIP_CONVENTIONS, repeated so that npz-only jobs need not import the renderer
# (and pandas with it); a test keeps the two equal
FLIP_CONVENTIONS: tuple[str, ...] = ("consistent", "upstream")
IMAGES = "images.npy"
SAMPLES = "samples.parquet"
FORMAT = "edtrain-chunk-1"
RUN_ROWS = 4096  # samples sorted in memory per run: 96 MiB of images, in three buffers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inputs", nargs="+", required=True, metavar="PATH", help="image directories"
    )
    parser.add_argument("--chunk", type=int, required=True, metavar="I", help="0 ≤ I < N")
    parser.add_argument("--chunks", type=int, required=True, metavar="N", help="number of chunks")
    parser.add_argument("--out", required=True, metavar="CHUNK_DIR")
    parser.add_argument(
        "--es-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="only ES interactions (is_es == 1); default on",
    )
    parser.add_argument(
        "--marley-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="only MARLEY signal clusters (is_marley == 1); default on",
    )
    parser.add_argument("--energy-min", type=float, metavar="MEV", help="cluster energy ≥ MEV")
    parser.add_argument("--energy-max", type=float, metavar="MEV", help="cluster energy < MEV")
    parser.add_argument(
        "--flip-convention",
        choices=FLIP_CONVENTIONS,
        default="consistent",
        help="image orientation for cluster ROOT inputs (npz inputs are already rendered)",
    )
    parser.add_argument("--strict", action="store_true", help="fail if anything is skipped")


class SortedRuns:
    """Collects samples and appends them to ``writer`` in runs sorted by key hash."""

    def __init__(self, writer: ImageWriter, run_rows: int):
        self._writer = writer
        self._buffer = aligned_empty(run_rows)
        self._sorted = [aligned_empty(run_rows), aligned_empty(run_rows)]  # one being written
        self._pending: list[dict[str, np.ndarray]] = []
        self._count = 0
        self.columns: list[dict[str, np.ndarray]] = []  # written rows, in file order

    def add(self, columns: dict[str, np.ndarray], images: np.ndarray) -> None:
        n = len(images)
        if self._count + n > len(self._buffer):
            self.flush()
        if n > len(self._buffer):  # one basename larger than a run: a run of its own
            self._write(columns, images, np.empty_like(images))
            return
        self._buffer[self._count : self._count + n] = images
        self._pending.append(columns)
        self._count += n

    def flush(self) -> None:
        if self._count:
            parts = self._pending
            columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
            self._sorted.reverse()  # the other one: the writer is done with it (ImageWriter)
            self._write(columns, self._buffer[: self._count], self._sorted[0][: self._count])
        self._pending, self._count = [], 0

    def _write(self, columns: dict[str, np.ndarray], images: np.ndarray, out: np.ndarray) -> None:
        order = np.argsort(columns["key_hash"], kind="stable")
        np.take(images, order, axis=0, out=out)
        self._writer.append(out)
        self.columns.append({name: values[order] for name, values in columns.items()})


def _file_record(path: str) -> dict[str, Any]:
    return {"path": path, "size": storage_for(path).size(path)}


def build_chunk(
    inputs: list[str], chunk: int, chunks: int, cuts: Cuts, out: str, convention: str = "consistent"
) -> dict[str, Any]:
    """Write the chunk's images and table into ``out``; return its manifest (not yet written).

    ``convention`` orients images rendered from cluster ROOT files (see ``extract``).
    """
    if not 0 <= chunk < chunks:
        raise ValueError(f"chunk {chunk} is not in 0..{chunks - 1}")
    sources, discovery_skips = discover(inputs)
    keep = chunk_of([s.basename for s in sources], chunks) == chunk
    sources = [s for s, k in zip(sources, keep, strict=True) if k]
    keep = chunk_of([s.basename for s in discovery_skips], chunks) == chunk
    file_skips: list[Skip] = [s for s, k in zip(discovery_skips, keep, strict=True) if k]
    records = [_file_record(s.path) for s in file_skips if storage_for(s.path).isfile(s.path)]
    skipped_rows: list[SkipRow] = []
    counts: list[dict[str, int]] = []
    os.makedirs(out, exist_ok=True)
    with ImageWriter(os.path.join(out, IMAGES)) as writer:
        runs = SortedRuns(writer, RUN_ROWS)
        for source in progress(sources, f"chunk {chunk}/{chunks}"):
            try:
                found = extract(source, cuts, convention)
            except BadFile as bad:
                file_skips.append(Skip(bad.path, bad.reason, source.basename))
                paths = [source.cluster_file] if source.cluster_file else source.planes.values()
                records += [_file_record(path) for path in paths]
                continue
            runs.add(found.columns, found.images)
            records += found.inputs
            skipped_rows += found.skipped_rows
            counts.append(found.counts)
        runs.flush()
    table = columns_to_table(runs.columns)
    pq.write_table(table, os.path.join(out, SAMPLES))
    return {
        "format": FORMAT,
        "chunk": chunk,
        "chunks": chunks,
        "cuts": asdict(cuts),
        "flip_convention": convention,
        "inputs": sorted(records, key=lambda r: r["path"]),
        "skipped_files": skip_records(file_skips),
        "skipped_rows": row_records(skipped_rows),
        "counts": add_counts([*counts, {"basenames": len(sources)}]),
        "samples": table.num_rows,
    }


def main(args: argparse.Namespace) -> int:
    reuse_freed_memory()
    cuts = Cuts(args.es_only, args.marley_only, args.energy_min, args.energy_max)
    if not 0 <= args.chunk < args.chunks:
        print(
            f"edtrain chunk: --chunk {args.chunk} is not in 0..{args.chunks - 1}", file=sys.stderr
        )
        return 2
    try:
        manifest = build_chunk(
            args.inputs, args.chunk, args.chunks, cuts, args.out, args.flip_convention
        )
    except FileNotFoundError as err:
        print(f"edtrain chunk: {err}", file=sys.stderr)
        return 2
    status = report_skips(manifest["skipped_files"], manifest["skipped_rows"], args.strict)
    if status == 0:
        write_json(os.path.join(args.out, CHUNK_MANIFEST), manifest)
    return status
