"""The ``assemble`` command: chunk directories → one dataset directory (docs/architecture.md).

Rows are ordered by ``key_hash`` (ties are impossible: keys are unique), so the dataset is the same,
byte for byte, however the production was chunked and in whatever order files were found.

Each chunk's images are a few runs sorted by key hash (``edtrain.dataset.chunk``), so the output
is a merge: for each block of output rows, every run contributes one consecutive range of its
rows, read with one large request, and the block is put in order in memory and appended. Memory
stays bounded by three blocks plus the table, and every image byte is read once, sequentially.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from edtrain import __version__
from edtrain.dataset.allocator import reuse_freed_memory
from edtrain.dataset.chunk import FORMAT as CHUNK_FORMAT
from edtrain.dataset.chunk import IMAGES, SAMPLES
from edtrain.dataset.images import (
    HEADER_SIZE,
    IMAGE_DTYPE,
    SAMPLE_SHAPE,
    ImageReader,
    ImageWriter,
    aligned_empty,
)
from edtrain.dataset.manifest import CHUNK_MANIFEST, add_counts, read_json, report_skips, write_json
from edtrain.dataset.progress import progress
from edtrain.formats.columns import PLANES
from edtrain.splits import pool_rank, test_mask

MANIFEST = "manifest.json"
FORMAT = "edtrain-dataset-1"
BLOCK_ROWS = 2048  # 2048 × 24 KiB = 48 MiB of float16 images per block
READ_THREADS = 4  # reads in flight at once: a disk serves several faster than one at a time
COLUMNS: tuple[str, ...] = (
    "basename",
    "event",
    "match_id",
    "key_hash",
    "split",
    "rank",
    "label_x",
    "label_y",
    "label_z",
    "energy_mev",
    "particle_energy_mev",
    "nu_energy_mev",
    "nu_dir_x",
    "nu_dir_y",
    "nu_dir_z",
    "is_es",
    "source",
)


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


def _chunk_images(m: dict[str, Any]) -> int:
    """The number of samples in a chunk's images.npy, checked to be the file edtrain writes."""
    path = os.path.join(m["dir"], IMAGES)
    try:
        images = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise ChunkError(f"{path}: not a readable .npy file ({err})") from None
    if (images.dtype, images.shape[1:], images.offset) != (IMAGE_DTYPE, SAMPLE_SHAPE, HEADER_SIZE):
        found = f"{images.dtype} {images.shape}, data at byte {images.offset}"
        raise ChunkError(f"{path}: {found}; expected float16 (N, 3, 128, 32) written by edtrain")
    return images.shape[0]


def _read_tables(manifests: list[dict[str, Any]]) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """All chunk tables, and the chunk and row each sample's images come from."""
    tables, chunk, row = [], [], []
    for k, m in enumerate(manifests):
        # ParquetFile: read_table would import pyarrow.dataset and with it pandas (~0.15 s)
        table = pq.ParquetFile(os.path.join(m["dir"], SAMPLES)).read()
        n_images = _chunk_images(m)
        if not table.num_rows == n_images == m["samples"]:
            counts = f"{table.num_rows} rows, {n_images} images, {m['samples']} in the manifest"
            raise ChunkError(f"{m['dir']}: {counts}")
        tables.append(table)
        chunk.append(np.full(table.num_rows, k))
        row.append(np.arange(table.num_rows))
    return pa.concat_tables(tables), np.concatenate(chunk), np.concatenate(row)


def sorted_runs(hashes: np.ndarray, chunk: np.ndarray) -> np.ndarray:
    """A run number per row (rows in file order, chunk by chunk): maximal ascending stretches.

    Any ascending stretch will do, whatever wrote the chunk: the merge is correct for any runs,
    and fast when they are long.
    """
    starts = np.ones(len(hashes), dtype=bool)
    starts[1:] = (hashes[1:] < hashes[:-1]) | (chunk[1:] != chunk[:-1])
    return np.cumsum(starts) - 1


def _table_digest(table: pa.Table) -> bytes:
    """sha256 of the table's values, independent of how parquet encodes them."""
    digest = hashlib.sha256()
    for name in table.column_names:
        values = table[name].to_numpy()
        digest.update(name.encode())
        if values.dtype.kind == "O":
            digest.update("\0".join(values).encode())
        else:
            digest.update(np.ascontiguousarray(values).tobytes())
    return digest.digest()


def _read_block(
    readers: list[ImageReader],
    pool: ThreadPoolExecutor,
    chunk: np.ndarray,
    row: np.ndarray,
    run: np.ndarray,
    staging: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill ``out`` with these rows' images, reading each run's consecutive rows at once."""
    by_run = np.lexsort((row, run))  # consecutive rows of one run: one read
    first = np.flatnonzero(np.diff(run[by_run], prepend=-1) != 0)
    counts = np.diff(np.append(first, len(by_run)))
    ends = (first + counts).tolist()
    reads = [
        pool.submit(readers[chunk[by_run[at]]].read, int(row[by_run[at]]), staging[at:end])
        for at, end in zip(first.tolist(), ends, strict=True)
    ]
    for done in reads:
        done.result()
    np.take(staging[: len(row)], np.argsort(by_run), axis=0, out=out)


def _write_images(
    sources: list[str], chunk: np.ndarray, row: np.ndarray, run: np.ndarray, path: str
) -> None:
    """Merge the chunks' images (``sources``) in the given order into ``path``."""
    staging = aligned_empty(BLOCK_ROWS)  # as read, run by run
    blocks = [aligned_empty(BLOCK_ROWS), aligned_empty(BLOCK_ROWS)]  # in order; one being written
    readers = [ImageReader(s) for s in sources]
    try:
        with ImageWriter(path) as writer, ThreadPoolExecutor(READ_THREADS) as pool:
            starts = range(0, len(chunk), BLOCK_ROWS)
            for i, start in enumerate(progress(starts, "assemble", unit="block")):
                sl = slice(start, start + BLOCK_ROWS)
                out = blocks[i % 2][: len(chunk[sl])]
                _read_block(readers, pool, chunk[sl], row[sl], run[sl], staging, out)
                writer.append(out)
    finally:
        for reader in readers:
            reader.close()


def assemble(chunk_dirs: list[str], out: str, test_fraction: float) -> dict[str, Any]:
    """Write images.npy and samples.parquet into ``out``; return the manifest (not yet written)."""
    manifests = read_chunks(chunk_dirs)
    table, chunk, row = _read_tables(manifests)
    run = sorted_runs(table["key_hash"].to_numpy(), chunk)
    order = np.argsort(table["key_hash"].to_numpy(), kind="stable")
    table, chunk, row, run = table.take(order), chunk[order], row[order], run[order]
    hashes = table["key_hash"].to_numpy()
    repeated = np.flatnonzero(np.diff(hashes) == 0)
    if len(repeated):
        key = [table[name][int(repeated[0])].as_py() for name in ("basename", "event", "match_id")]
        raise ChunkError(f"sample key {tuple(key)} appears twice")
    is_test = test_mask(hashes, test_fraction)
    table = table.append_column("split", pa.array(np.where(is_test, "test", "pool")))
    table = table.append_column("rank", pa.array(pool_rank(hashes, is_test))).select(COLUMNS)
    os.makedirs(out, exist_ok=True)
    sources = [os.path.join(m["dir"], IMAGES) for m in manifests]
    _write_images(sources, chunk, row, run, os.path.join(out, IMAGES))
    pq.write_table(table, os.path.join(out, SAMPLES))
    inputs = sorted((i for m in manifests for i in m["inputs"]), key=lambda i: i["path"])
    # the table's values and the images' content (hashed per basename by the chunks)
    images_sha256 = "".join(i.get("images_sha256", "") for i in inputs).encode()
    dataset_hash = hashlib.sha256(_table_digest(table) + images_sha256).hexdigest()
    return {
        "format": FORMAT,
        "edtrain_version": __version__,
        "cuts": manifests[0]["cuts"],
        "flip_convention": manifests[0]["flip_convention"],
        "test_fraction": test_fraction,
        "images": {
            "dtype": IMAGE_DTYPE.name,
            "shape": [table.num_rows, *SAMPLE_SHAPE],
            "planes": list(PLANES),
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
        "samples": table.num_rows,
        "pool_size": int((~is_test).sum()),
        "test_size": int(is_test.sum()),
        "test_set_hash": hashlib.sha256(hashes[is_test].tobytes()).hexdigest(),
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
        manifest = assemble(args.chunks, args.out, args.test_fraction)
    except ChunkError as err:
        print(f"edtrain assemble: {err}", file=sys.stderr)
        return 2
    write_json(os.path.join(args.out, MANIFEST), manifest)
    return 0
