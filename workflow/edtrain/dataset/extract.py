"""The samples of one basename: check its planes, match them, read only the matched rows.

Planes come from three npz files (read without loading them) or from one cluster ROOT file
(read whole with uproot and rendered); matching, checks and outputs are the same for both.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import xxhash

from edtrain.dataset.discover import Source
from edtrain.dataset.float16 import PROBLEMS, read_plane_rows, to_float16
from edtrain.dataset.image_files import IMAGE_DTYPE, SAMPLE_SHAPE
from edtrain.dataset.manifest import SkipRow
from edtrain.dataset.match import Cuts, match_triplets
from edtrain.dataset.sample_table import padded
from edtrain.dataset.storage import open_range, storage_for
from edtrain.formats import columns as col
from edtrain.formats.npz import (
    NpzFormatError,
    PlaneFile,
    open_plane_npz,
    read_metadata,
)
from edtrain.formats.range_file import RangeFile

DRIFT_SIDE_FROM_CHANNEL = "x_plane_channel"
DRIFT_SIDE_FROM_POSITION = "true_position_x"
# (rows, out) → a code per row: reads a plane's images at ``rows`` into ``out`` (float16)
Reader = Callable[[np.ndarray, np.ndarray], np.ndarray]


class BadFile(Exception):
    """A plane file that makes its whole basename unusable."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Extracted:
    """One basename's samples (``metadata`` row i ↔ ``images[i]``) and what was read to get them."""

    source: str  # the file named as the samples' source: the X npz or the cluster file
    metadata: np.ndarray  # the samples' X metadata rows, ``table.padded`` to 18 columns
    drift_side: np.ndarray  # int8 per sample: −1 (x < 0) or +1 (x > 0), see ``_Planes``
    images: np.ndarray  # float16 (n, 3, 128, 32), planes U, V, X
    inputs: list[dict]  # per plane file: path, size, rows, width, metadata_sha256, bytes_read;
    # the X file's record also holds images_xxh3 (XXH3-128 of ``images``): their content identity
    skipped_rows: list[SkipRow]
    counts: dict[str, int]
    drift_side_from: str


def _open(path: str, plane: str) -> tuple[PlaneFile, np.ndarray]:
    try:
        handle = open_plane_npz(open_range(path))
        meta = read_metadata(handle)
    except NpzFormatError as err:
        raise BadFile(path, str(err)) from None
    except OSError as err:
        raise BadFile(path, f"cannot read ({err.strerror or err})") from None
    ids = meta[:, col.PLANE]
    wrong = ids != col.PLANE_ID[plane]
    if wrong.any():
        raise BadFile(path, f"plane-id column holds {ids[wrong][0]:g} in a {plane}-plane file")
    return handle, meta


def _read_images(readers: list[Reader], rows: list[np.ndarray], images: np.ndarray) -> np.ndarray:
    """Fill ``images`` (float16 (n, 3, 128, 32)) with the triplets' planes; per triplet why it
    is unusable ('' if usable: float16 holds every pixel, ``edtrain.dataset.float16``)."""
    codes = np.empty(images.shape[:2], dtype=np.uint8)
    for k, reader in enumerate(readers):
        codes[:, k] = reader(rows[k], images[:, k])
    reasons = np.full(len(images), "", dtype=object)
    for sample, plane in zip(*np.nonzero(codes), strict=True):
        if reasons[sample]:  # the first plane's problem is the one reported
            continue
        reasons[sample] = f"{PROBLEMS[codes[sample, plane]]} in the {col.PLANES[plane]} plane"
    return reasons


@dataclass(frozen=True)
class _Planes:
    """One basename's U, V, X planes, whichever kind of file they come from."""

    path_x: str  # the file named as the samples' source
    meta: list[np.ndarray]
    readers: list[Reader]
    records: Callable[[], list[dict]]  # input records, once the images are read
    # per X row: −1 (x < 0) or +1 (x > 0). Cluster files give it by the X plane's channel
    # numbers, which real data has too; rendered npz files keep no channels, so there it is the
    # sign of the true position (MC only).
    drift_side: np.ndarray
    drift_side_from: str  # DRIFT_SIDE_FROM_CHANNEL or DRIFT_SIDE_FROM_POSITION
    files: list[RangeFile] = field(default_factory=list)  # open until ``close()``

    def close(self) -> None:
        for file in self.files:
            file.close()


def _npz_planes(source: Source) -> _Planes:
    opened = [_open(source.planes[p], p) for p in col.PLANES]

    def records() -> list[dict]:
        return [
            {
                "path": plane.path,
                "size": plane.size,
                "rows": plane.rows,
                "metadata_width": plane.width,
                "metadata_sha256": hashlib.sha256(meta.tobytes()).hexdigest(),
                "bytes_read": plane.file.bytes_read,
            }
            for plane, meta in opened
        ]

    x_meta = opened[-1][1]
    return _Planes(
        path_x=source.planes["X"],
        meta=[meta for _, meta in opened],
        readers=[partial(read_plane_rows, plane) for plane, _ in opened],
        records=records,
        drift_side=np.where(x_meta[:, col.POS.start] < 0, -1, 1).astype(np.int8),
        drift_side_from=DRIFT_SIDE_FROM_POSITION,
        files=[plane.file for plane, _ in opened],
    )


def _take(images: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    return to_float16(images[rows], out)


def _cluster_planes(path: str, convention: str) -> _Planes:
    """Planes of a cluster ROOT file, rendered as upstream renders them
    (docs/data_format.md §4–5)."""
    # imported here: uproot, awkward and the renderer cost ~0.4 s, and npz inputs need none
    from edtrain.formats.root import read_planes
    from edtrain.render import drift_sides, render_planes

    size = storage_for(path).size(path)
    if size == 0:
        raise BadFile(path, "empty file (0 bytes)")
    try:
        trees = read_planes(path)
    except Exception as err:  # uproot reports corrupt files with many exception types
        raise BadFile(path, f"not a readable cluster file ({err})") from None
    rendered = [render_planes(trees, convention)[p] for p in col.PLANES]
    meta = [m for _, m in rendered]

    def records() -> list[dict]:
        digest = hashlib.sha256(b"".join(m.tobytes() for m in meta)).hexdigest()
        clusters = {p: len(m) for p, m in zip(col.PLANES, meta, strict=True)}
        return [{"path": path, "size": size, "rows": clusters, "metadata_sha256": digest}]

    return _Planes(
        path_x=path,
        meta=meta,
        readers=[partial(_take, images) for images, _ in rendered],
        records=records,
        drift_side=drift_sides(trees)["X"].astype(np.int8),  # the physical rule, any convention
        drift_side_from=DRIFT_SIDE_FROM_CHANNEL,
    )


def _new_images(n: int) -> np.ndarray:
    return np.empty((n, *SAMPLE_SHAPE), dtype=IMAGE_DTYPE)


def extract(
    source: Source,
    cuts: Cuts,
    convention: str = "consistent",
    allocate: Callable[[int], np.ndarray] = _new_images,
    need_label: bool = True,
) -> Extracted:
    """Read one basename's triplets; raise BadFile if one of its files is unusable.

    ``convention`` is the image orientation used when rendering cluster ROOT files
    (``edtrain.render.FLIP_CONVENTIONS``); npz inputs were rendered when they were written.
    Plane files are paths or root:// URLs (``edtrain.dataset.storage``). The images are cast
    into ``allocate(n)`` (e.g. the output's next rows); the usable ones end up first, in X-file
    row order, and ``Extracted.images`` is that part of it. Without ``need_label`` (applying
    a model) triplets are kept whatever their true momentum.
    """
    if source.cluster_file is None:
        planes = _npz_planes(source)
    else:
        planes = _cluster_planes(source.cluster_file, convention)
    with contextlib.closing(planes):
        u, v, x = planes.meta
        match = match_triplets(u, v, x, cuts, need_label)
        rows = [match.u, match.v, match.x]
        images = allocate(len(match.x))
        try:
            problems = _read_images(planes.readers, rows, images)
        except OSError as err:
            path = err.filename or planes.path_x
            raise BadFile(path, f"cannot read image rows ({err.strerror or err})") from None
        inputs = planes.records()
    bad = problems != ""
    dropped = np.concatenate([match.dropped, match.x[bad]]).astype(np.int64)
    reasons = np.concatenate([match.reasons, problems[bad]])
    events, match_ids = x[dropped, col.EVENT], x[dropped, col.MATCH_ID]
    skipped = [
        SkipRow(planes.path_x, source.basename, int(e), int(m), str(r))
        for e, m, r in zip(events, match_ids, reasons, strict=True)
    ]
    good = ~bad
    if bad.any():  # close the gaps, in order
        images[: good.sum()] = images[good]
    images = images[: good.sum()]
    inputs[-1]["images_xxh3"] = xxhash.xxh3_128_hexdigest(images)
    return Extracted(
        source=planes.path_x,
        metadata=padded(x[match.x[good]]),
        drift_side=planes.drift_side[match.x[good]],
        drift_side_from=planes.drift_side_from,
        images=images,
        inputs=inputs,
        skipped_rows=skipped,
        counts={**match.counts, "samples": int(good.sum())},
    )
