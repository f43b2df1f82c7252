"""The ``chunk`` command: one share of a production's basenames → a chunk directory.

The dataset's row order is by basename (``discover.dataset_order``: by name hash), then by
X-file row, and chunk I of N is the I-th of N equal ranges of name hashes (``chunk_of``). So
chunks are independent jobs, adding files to a production never moves existing basenames to
another chunk, and a chunk writes its samples straight in dataset order: ``assemble`` only has
to name the chunks' image files as the dataset's parts, in chunk order. A chunk directory
holds ``images.npy`` (float16), ``samples.npz`` (its table, ``edtrain.dataset.sample_table``; row i
↔ images[i]) and ``chunk.json`` (inputs, skips, counts, selection), written last so that its
presence means the chunk is complete.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import asdict
from typing import Any

import numpy as np

from edtrain.dataset.allocator import reuse_freed_memory
from edtrain.dataset.discover import chunk_of, dataset_order, discover
from edtrain.dataset.extract import BadFile, extract
from edtrain.dataset.float16 import F16C
from edtrain.dataset.image_files import ImageWriter
from edtrain.dataset.manifest import (
    CHUNK_FORMAT,
    CHUNK_IMAGES,
    CHUNK_MANIFEST,
    CHUNK_TABLE,
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
from edtrain.dataset.sample_table import write_chunk_table
from edtrain.dataset.storage import storage_for

# edtrain.render.FLIP_CONVENTIONS, repeated so that npz-only jobs need not import the renderer
# (and pandas with it); a test keeps the two equal
FLIP_CONVENTIONS: tuple[str, ...] = ("consistent", "upstream")
log = logging.getLogger(__name__)


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
    sources = [sources[i] for i in dataset_order([s.basename for s in sources])]
    keep = chunk_of([s.basename for s in discovery_skips], chunks) == chunk
    file_skips: list[Skip] = [s for s, k in zip(discovery_skips, keep, strict=True) if k]
    records = [_file_record(s.path) for s in file_skips if storage_for(s.path).isfile(s.path)]
    skipped_rows: list[SkipRow] = []
    counts: list[dict[str, int]] = []
    table: list[tuple[str, str, int, np.ndarray, np.ndarray]] = []  # for write_chunk_table
    drift_side_from: set[str] = set()
    os.makedirs(out, exist_ok=True)
    with ImageWriter(os.path.join(out, CHUNK_IMAGES)) as writer:
        for source in progress(sources, f"chunk {chunk}/{chunks}"):
            try:
                found = extract(source, cuts, convention, allocate=writer.reserve)
            except BadFile as bad:
                file_skips.append(Skip(bad.path, bad.reason, source.basename))
                records += [_file_record(path) for path in source.paths]
                continue
            writer.commit(len(found.images))
            table.append(
                (source.basename, found.source, len(found.images), found.metadata, found.drift_side)
            )
            drift_side_from.add(found.drift_side_from)
            records += found.inputs
            skipped_rows += found.skipped_rows
            counts.append(found.counts)
    samples = write_chunk_table(os.path.join(out, CHUNK_TABLE), table)
    return {
        "format": CHUNK_FORMAT,
        "chunk": chunk,
        "chunks": chunks,
        "cuts": asdict(cuts),
        "folders": sorted(inputs),  # so that an empty dataset can name where it looked
        "flip_convention": convention,
        "drift_side_from": sorted(drift_side_from),
        "inputs": sorted(records, key=lambda r: r["path"]),
        "skipped_files": skip_records(file_skips),
        "skipped_rows": row_records(skipped_rows),
        "counts": add_counts([*counts, {"basenames": len(sources)}]),
        "samples": samples,
    }


def main(args: argparse.Namespace) -> int:
    reuse_freed_memory()
    if not F16C:  # a slower chunk job: say why
        log.info("float16 cast by numpy: the F16C kernel was not built or the CPU lacks F16C")
    cuts = Cuts(args.es_only, args.marley_only, args.energy_min, args.energy_max)
    if not 0 <= args.chunk < args.chunks:
        print(
            f"edtrain chunk: --chunk {args.chunk} is not in 0..{args.chunks - 1}", file=sys.stderr
        )
        return 2
    low, high = args.energy_min, args.energy_max
    if low is not None and high is not None and low >= high:  # a window that keeps nothing
        print(
            f"edtrain chunk: --energy-min {low} ≥ --energy-max {high}: "
            "no cluster energy E satisfies min ≤ E < max",
            file=sys.stderr,
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
