"""The ``assemble`` command: chunk directories → one dataset directory (docs/architecture.md).

Chunk I holds the I-th stretch of the dataset order (``edtrain.dataset.chunk``), so the dataset
is the chunks end to end: the same, byte for byte, however the production was chunked and in
whatever order files were found. The images are copied with large sequential requests and never
pass through Python; the table gains the split and the pool rank, which need the whole pool.
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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from edtrain import __version__
from edtrain.dataset.allocator import reuse_freed_memory
from edtrain.dataset.chunk import FORMAT as CHUNK_FORMAT
from edtrain.dataset.chunk import IMAGES, SAMPLES
from edtrain.dataset.discover import chunk_of, dataset_order
from edtrain.dataset.images import IMAGE_DTYPE, SAMPLE_SHAPE, concatenate, sample_count
from edtrain.dataset.manifest import CHUNK_MANIFEST, add_counts, read_json, report_skips, write_json
from edtrain.formats.columns import PLANES
from edtrain.splits import pool_rank, test_mask

MANIFEST = "manifest.json"
FORMAT = "edtrain-dataset-2"
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


def _read_tables(manifests: list[dict[str, Any]]) -> pa.Table:
    """The chunk tables end to end, each checked against its images and its place in the order."""
    tables = []
    for k, m in enumerate(manifests):
        # ParquetFile: read_table would import pyarrow.dataset and with it pandas (~0.15 s)
        table = pq.ParquetFile(os.path.join(m["dir"], SAMPLES)).read()
        try:
            n_images = sample_count(os.path.join(m["dir"], IMAGES))
        except ValueError as err:
            raise ChunkError(str(err)) from None
        if not table.num_rows == n_images == m["samples"]:
            counts = f"{table.num_rows} rows, {n_images} images, {m['samples']} in the manifest"
            raise ChunkError(f"{m['dir']}: {counts}")
        _check_order(table["basename"], k, m)
        tables.append(table)
    return pa.concat_tables(tables)


def _check_order(basenames: pa.ChunkedArray, chunk: int, manifest: dict[str, Any]) -> None:
    """A chunk's rows are its own basenames, each in one stretch, in dataset order."""
    names = pc.unique(basenames).to_numpy(zero_copy_only=False)  # in order of appearance
    stretches = 1 + int(pc.sum(pc.not_equal(basenames[1:], basenames[:-1])).as_py() or 0)
    if len(names) and (
        stretches != len(names)
        or (chunk_of(names, manifest["chunks"]) != chunk).any()
        or (dataset_order(names) != np.arange(len(names))).any()
    ):
        raise ChunkError(f"{manifest['dir']}: rows are not in dataset order for chunk {chunk}")


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


def assemble(manifests: list[dict[str, Any]], out: str, test_fraction: float) -> dict[str, Any]:
    """Write images.npy and samples.parquet into ``out`` from the chunks (``read_chunks``);
    return the manifest (not yet written)."""
    table = _read_tables(manifests)
    hashes = table["key_hash"].to_numpy()
    sorted_hashes = np.sort(hashes)
    repeated = np.flatnonzero(np.diff(sorted_hashes) == 0)
    if len(repeated):  # a key hash collision, or a chunk that holds a sample twice
        row = int(np.flatnonzero(hashes == sorted_hashes[repeated[0]])[0])
        key = [table[name][row].as_py() for name in ("basename", "event", "match_id")]
        raise ChunkError(f"sample key {tuple(key)} appears twice")
    os.makedirs(out, exist_ok=True)
    sources = [os.path.join(m["dir"], IMAGES) for m in manifests]
    with ThreadPoolExecutor(max_workers=1) as background:  # the copy waits on the disk
        copied = background.submit(concatenate, sources, os.path.join(out, IMAGES))
        is_test = test_mask(hashes, test_fraction)
        table = table.append_column("split", pa.array(np.where(is_test, "test", "pool")))
        table = table.append_column("rank", pa.array(pool_rank(hashes, is_test))).select(COLUMNS)
        pq.write_table(table, os.path.join(out, SAMPLES))
        inputs = sorted((i for m in manifests for i in m["inputs"]), key=lambda i: i["path"])
        # the table's values and the images' content (hashed per basename by the chunks)
        images_hashes = "".join(i.get("images_xxh3", "") for i in inputs).encode()
        dataset_hash = hashlib.sha256(_table_digest(table) + images_hashes).hexdigest()
        copied.result()
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
        manifest = assemble(manifests, args.out, args.test_fraction)
    except ChunkError as err:
        print(f"edtrain assemble: {err}", file=sys.stderr)
        return 2
    write_json(os.path.join(args.out, MANIFEST), manifest)
    return 0
