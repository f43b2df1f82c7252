"""The ``assemble`` command: chunk directories → one dataset directory (docs/architecture.md).

Chunk I holds the I-th stretch of the dataset order (``edtrain.dataset.chunk``), so the dataset
is the chunks end to end: the same, byte for byte, however the production was chunked and in
whatever order files were found. Chunk I's images file becomes the dataset's image part I (a
hard link: ``edtrain.dataset.reader`` says why they are not joined); the table gains the split
and the pool rank, which need the whole pool.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from edtrain import __version__
from edtrain.dataset.allocator import reuse_freed_memory
from edtrain.dataset.discover import chunk_of, dataset_order
from edtrain.dataset.image_files import IMAGE_DTYPE, SAMPLE_SHAPE, link_parts, sample_count
from edtrain.dataset.manifest import (
    CHUNK_FORMAT,
    CHUNK_IMAGES,
    CHUNK_MANIFEST,
    CHUNK_TABLE,
    add_counts,
    read_json,
    report_skips,
    selection_chain,
    write_json,
)
from edtrain.dataset.reader import MANIFEST, SAMPLES
from edtrain.dataset.sample_table import COLUMNS, NUMERIC, read_chunk_table
from edtrain.formats.columns import PLANES
from edtrain.splits import pool_rank, test_mask

log = logging.getLogger(__name__)

IMAGES_DIR = "images"  # part-00000.npy, ...: chunk I's images as part I
FORMAT = "edtrain-dataset-4"


class ChunkError(ValueError):
    """Chunk directories that do not add up to one complete, consistent production."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chunks", nargs="+", required=True, metavar="CHUNK_DIR")
    parser.add_argument("--out", required=True, metavar="DATASET_DIR")
    parser.add_argument(
        "--test-fraction", type=float, required=True, metavar="F", help="common test set share"
    )
    parser.add_argument("--strict", action="store_true", help="fail if anything was skipped")


def read_chunks(dirs: list[str]) -> list[dict[str, Any]]:
    """The chunk manifests, checked to be one complete set made with the same selection."""
    manifests = []
    for d in dirs:
        path = os.path.join(d, CHUNK_MANIFEST)
        if not os.path.isfile(path):
            raise ChunkError(f"{d}: no {CHUNK_MANIFEST}; the chunk is incomplete or failed")
        manifest = read_json(path)
        if manifest.get("format") != CHUNK_FORMAT:
            raise ChunkError(f"{path}: format {manifest.get('format')!r}, expected {CHUNK_FORMAT}")
        manifests.append({**manifest, "dir": d})
    first = manifests[0]
    recipe = ("chunks", "cuts", "flip_convention")
    for m in manifests:
        if any(m[key] != first[key] for key in recipe):
            raise ChunkError(f"{m['dir']}: chunking or selection differs from {first['dir']}")
    have = sorted(m["chunk"] for m in manifests)
    if have != list(range(first["chunks"])):
        missing = sorted(set(range(first["chunks"])) - set(have))
        raise ChunkError(f"chunks {have} do not cover 0..{first['chunks'] - 1}: missing {missing}")
    return sorted(manifests, key=lambda m: m["chunk"])


def require_samples(manifests: list[dict[str, Any]]) -> None:
    """Refuse a dataset without samples, naming the step that removed the last candidates:
    otherwise every chunk and the assembly succeed, and training fails without saying why."""
    if sum(m["samples"] for m in manifests):
        return
    chain = []
    for label, count in selection_chain(
        add_counts([m["counts"] for m in manifests]), manifests[0]["cuts"]
    ):
        chain.append(f"{count} {label}")
        if not count:
            break
    # chunks from before edtrain recorded their folders have none
    folders = ", ".join(sorted({f for m in manifests for f in m.get("folders", [])}))
    skipped = sum(len(m["skipped_files"]) for m in manifests)
    if len(chain) > 1:
        why = f"{' → '.join(chain)}: '{label}' removed the last ones (inputs: {folders})"
    elif skipped:
        why = f"0 basenames found in the inputs ({folders})"
    else:
        why = f"0 basenames found in the inputs ({folders}): no plane npz or cluster ROOT files"
    also = f"; {skipped} skipped files, listed above" if skipped else ""
    raise ChunkError(f"no samples: {why}{also}")


def _read_tables(manifests: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The chunk tables end to end, each checked against its images and its place in the order."""
    tables = []
    for k, m in enumerate(manifests):
        try:
            table = read_chunk_table(os.path.join(m["dir"], CHUNK_TABLE))
            n_images = sample_count(os.path.join(m["dir"], CHUNK_IMAGES))
        except ValueError as err:
            raise ChunkError(str(err)) from None
        rows = int(table["counts"].sum())
        if not rows == n_images == m["samples"]:
            counts = f"{rows} rows, {n_images} images, {m['samples']} in the manifest"
            raise ChunkError(f"{m['dir']}: {counts}")
        names = table["basenames"]
        if len(names) and (
            (chunk_of(names, m["chunks"]) != k).any()
            or (dataset_order(names) != np.arange(len(names))).any()
            or (names[1:] == names[:-1]).any()  # in dataset order, a repeat is adjacent
        ):
            raise ChunkError(f"{m['dir']}: rows are not in dataset order for chunk {k}")
        tables.append(table)
    return {name: np.concatenate([t[name] for t in tables]) for name in tables[0]}


def _repeated_strings(values: Sequence[str], counts: np.ndarray) -> pa.Array:
    """``values[i]`` repeated ``counts[i]`` times, one after another, as an Arrow string array.

    Arrow columns are built from numpy buffers: ``pa.array`` would import pandas (~0.15 s).
    """
    encoded = [value.encode() for value in values]
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.repeat(np.fromiter(map(len, encoded), np.int64, len(encoded)), counts)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    data = b"".join(e * int(c) for e, c in zip(encoded, counts, strict=True))
    kind, width = (pa.string(), np.int32) if len(data) < 2**31 else (pa.large_string(), np.int64)
    buffers = [None, pa.py_buffer(offsets.astype(width)), pa.py_buffer(data)]
    return pa.Array.from_buffers(kind, len(lengths), buffers)


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encoding: the value and the length of each run of equal neighbours."""
    if not len(values):
        return values[:0], np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return values[starts], np.diff(np.append(starts, len(values)))


def _numeric_array(values: np.ndarray) -> pa.Array:
    """A numpy column as an Arrow array, sharing (or, for booleans, bit-packing) its buffer."""
    if values.dtype == bool:
        data = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(data)])
    values = np.ascontiguousarray(values)
    kind = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _table(columns: dict[str, np.ndarray]) -> pa.Table:
    """The dataset's sample table from the joined chunk columns plus ``is_test`` and ``rank``."""
    split = _runs(columns["is_test"])
    arrays = {
        "basename": _repeated_strings(columns["basenames"], columns["counts"]),
        "source": _repeated_strings(columns["sources"], columns["counts"]),
        "split": _repeated_strings(np.where(split[0], "test", "pool"), split[1]),
        "rank": _numeric_array(columns["rank"]),
        **{name: _numeric_array(columns[name]) for name in NUMERIC},
    }
    return pa.table([arrays[name] for name in COLUMNS], names=list(COLUMNS))


def _digest(columns: dict[str, np.ndarray]) -> bytes:
    """sha256 of the table's values (strings once per basename), whatever parquet makes of them."""
    digest = hashlib.sha256()
    for name in sorted(columns):
        values = columns[name]
        digest.update(name.encode())
        if values.dtype.kind == "U":
            digest.update("\0".join(values.tolist()).encode())
        else:
            digest.update(np.ascontiguousarray(values).tobytes())
    return digest.digest()


def assemble(manifests: list[dict[str, Any]], out: str, test_fraction: float) -> dict[str, Any]:
    """Write the image parts and samples.parquet into ``out`` from the chunks (``read_chunks``);
    return the manifest (not yet written)."""
    columns = _read_tables(manifests)
    hashes = columns["key_hash"]
    sorted_hashes = np.sort(hashes)
    repeated = np.flatnonzero(np.diff(sorted_hashes) == 0)
    if len(repeated):  # a key hash collision, or a chunk that holds a sample twice
        row = int(np.flatnonzero(hashes == sorted_hashes[repeated[0]])[0])
        basename = np.repeat(columns["basenames"], columns["counts"])[row]
        key = (str(basename), int(columns["event"][row]), int(columns["match_id"][row]))
        raise ChunkError(f"sample key {key} appears twice")
    os.makedirs(out, exist_ok=True)
    folder = os.path.join(out, IMAGES_DIR)
    shutil.rmtree(folder, ignore_errors=True)  # parts of an earlier assembly
    parts = link_parts([os.path.join(m["dir"], CHUNK_IMAGES) for m in manifests], folder)
    is_test = test_mask(hashes, test_fraction)
    columns.update(is_test=is_test, rank=pool_rank(hashes, is_test))
    pq.write_table(_table(columns), os.path.join(out, SAMPLES))
    inputs = sorted((i for m in manifests for i in m["inputs"]), key=lambda i: i["path"])
    # the table's values and the images' content (hashed per basename by the chunks)
    images_hashes = "".join(i.get("images_xxh3", "") for i in inputs).encode()
    dataset_hash = hashlib.sha256(_digest(columns) + images_hashes).hexdigest()
    samples = len(hashes)
    return {
        "format": FORMAT,
        "edtrain_version": __version__,
        "cuts": manifests[0]["cuts"],
        "flip_convention": manifests[0]["flip_convention"],
        # how each sample's drift side (the `face` label frame, edtrain.frame) was found
        "drift_side_from": sorted({s for m in manifests for s in m["drift_side_from"]}),
        "test_fraction": test_fraction,
        "images": {
            "dtype": IMAGE_DTYPE.name,
            "shape": [samples, *SAMPLE_SHAPE],
            "planes": list(PLANES),
            "parts": [{**p, "file": f"{IMAGES_DIR}/{p['file']}"} for p in parts],
        },
        "inputs": inputs,
        "skipped_files": sorted(
            (s for m in manifests for s in m["skipped_files"]),
            key=lambda s: (s["path"], s["reason"]),
        ),
        "skipped_rows": sorted(
            (s for m in manifests for s in m["skipped_rows"]),
            key=lambda s: (s["path"], s["event"], s["match_id"]),
        ),
        "counts": add_counts([m["counts"] for m in manifests]),
        "samples": samples,
        "pool_size": int((~is_test).sum()),
        "test_size": int(is_test.sum()),
        "test_set_hash": hashlib.sha256(np.sort(hashes[is_test]).tobytes()).hexdigest(),
        "dataset_hash": dataset_hash,
    }


def main(args: argparse.Namespace) -> int:
    reuse_freed_memory()
    if not 0 < args.test_fraction < 1:
        print(
            f"edtrain assemble: --test-fraction {args.test_fraction} is not in (0, 1)",
            file=sys.stderr,
        )
        return 2
    try:
        manifests = read_chunks(args.chunks)
    except ChunkError as err:
        print(f"edtrain assemble: {err}", file=sys.stderr)
        return 2
    files = [s for m in manifests for s in m["skipped_files"]]
    rows = [s for m in manifests for s in m["skipped_rows"]]
    if report_skips(files, rows, args.strict):
        return 1
    try:
        require_samples(manifests)
        manifest = assemble(manifests, args.out, args.test_fraction)
    except ChunkError as err:
        print(f"edtrain assemble: {err}", file=sys.stderr)
        return 2
    write_json(os.path.join(args.out, MANIFEST), manifest)
    log.info(
        "%s: %d samples (%d in the test set, %d in the training pool) from %d chunks",
        args.out,
        manifest["samples"],
        manifest["test_size"],
        manifest["pool_size"],
        len(manifests),
    )
    return 0
