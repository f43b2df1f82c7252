"""Plane npz files (docs/data_format.md §2): written as upstream writes them, read without
loading them.

Upstream saves each plane with ``np.savez``: an uncompressed zip holding two ``.npy`` members,
``images`` (N, 128, 32) and ``metadata`` (N, 14 or 18). Only a few rows per event are ever used,
so loading whole files (the predecessor's ``np.load``) reads far more than needed. Here a file is
read in two requests: its first and last 16 KiB together (the image member's npy header; the
zip directory and with it usually the small metadata member, which ``np.savez`` writes last),
then only the image rows used, as byte ranges with adjacent rows merged. Over the network (EOS
via XRootD) each request is one vector read, since requests matter as much as bytes there; on a
local or FUSE path each range is one ``preadv`` that scatters its rows straight to where the
caller wants them (measured: less CPU than gathering the rows from a memory map, and nothing
stays mapped; dataset assembly reads local rows with its F16C kernel instead, casting them on
the way: ``edtrain.dataset.float16``). The zip records are parsed here (zip64 included)
rather than by ``zipfile``, whose many small file-object reads cost more than the rest of
opening a file.
"""

from __future__ import annotations

import ast
import math
import os
import struct
import zipfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edtrain.formats.columns import IMAGE_SHAPE
from edtrain.formats.range_file import LocalFile, RangeFile

METADATA_WIDTHS: tuple[int, ...] = (14, 18)
# zip records (APPNOTE.TXT 4.3): parsed here rather than by zipfile, whose file-object reads
# cost more than the rest of opening a plane file
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, …, file name length, extra field length
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # signature, …, method (4), …, sizes (8, 9), name,
# extra and comment lengths (10–12), …, local header offset (16)
_EOCD = struct.Struct("<4s4H2LH")  # signature, disks, entries, entries, size, offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, zip64 end record offset, disks
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")  # signature, …, entries (7), size (8), offset (9)
_EOCD_SEARCH = 22 + 0xFFFF  # the end record, after at most a 64 KiB comment
_WINDOW = 16 * 1024  # bytes fetched around a header: the zip directory, an npy header


class NpzFormatError(ValueError):
    """A plane file that cannot be used; the message is the reason recorded in the manifest."""


@dataclass(frozen=True)
class NpyMember:
    """Where one array of an npz file lies: its data starts at ``offset`` bytes into the file."""

    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


@dataclass(frozen=True)
class PlaneFile:
    """A checked plane npz file: its header facts and metadata bytes; image rows not read yet."""

    file: RangeFile
    images: NpyMember
    metadata: NpyMember
    metadata_bytes: bytes

    @property
    def path(self) -> str:
        return self.file.path

    @property
    def size(self) -> int:
        return self.file.size

    @property
    def rows(self) -> int:
        return self.images.shape[0]

    @property
    def width(self) -> int:
        return self.metadata.shape[1]

    @property
    def row_bytes(self) -> int:
        return self.images.nbytes // self.images.shape[0]

    def check_rows(self, rows: np.ndarray) -> np.ndarray:
        """Image row indices as int64; IndexError naming the file for a row it does not have."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.rows):
            raise IndexError(f"{self.path}: row outside 0..{self.rows - 1}")
        return rows


def write_plane_npz(path: str | os.PathLike, images: np.ndarray, metadata: np.ndarray) -> None:
    """Write one plane file exactly as upstream does (``np.savez``, float32, no pickle)."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    metadata = np.ascontiguousarray(metadata, dtype=np.float32)
    if len(images) != len(metadata):
        raise ValueError(f"{len(images)} images but {len(metadata)} metadata rows")
    with open(path, "wb") as f:  # a file object keeps np.savez from appending ".npz"
        np.savez(f, images=images, metadata=metadata)


class _Windows:
    """Bytes of a RangeFile near the places its headers are, fetched in 16 KiB windows and kept.

    The first and the last window (the image member's headers; the zip directory and, usually,
    the whole metadata member) are fetched together in one request; anything else on demand.
    """

    def __init__(self, file: RangeFile):
        self._file = file
        self.size = file.size
        head = min(_WINDOW, self.size)
        tail = max(head, self.size - _WINDOW)
        self._windows: list[tuple[int, bytes]] = []
        self._fetch([0, tail], [head, self.size - tail])

    def _fetch(self, starts: list[int], lengths: list[int]) -> None:
        ranges = [(start, n) for start, n in zip(starts, lengths, strict=True) if n]
        buffers = [bytearray(n) for _, n in ranges]
        views = [memoryview(b) for b in buffers]
        self._file.read_ranges(
            np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges]), views
        )
        self._windows += [(r[0], bytes(b)) for r, b in zip(ranges, buffers, strict=True)]

    def at(self, offset: int, n: int) -> bytes:
        """``n`` bytes from ``offset``, fewer where the file ends first."""
        hi = min(offset + n, self.size)
        if offset >= hi:
            return b""
        for start, data in self._windows:
            if start <= offset and hi <= start + len(data):
                return data[offset - start : hi - start]
        start = offset if offset + _WINDOW <= self.size else max(0, self.size - _WINDOW)
        self._fetch([start], [max(min(self.size, start + _WINDOW), hi) - start])
        return self.at(offset, n)


def _unpack(layout: struct.Struct, data: bytes, what: str) -> tuple:
    if len(data) < layout.size:
        raise NpzFormatError(f"{what} cut short: not a readable npz, truncated or corrupt")
    return layout.unpack_from(data)


def _zip64_offset(extra: bytes, sizes_masked: int) -> int | None:
    """The local header offset from a central entry's zip64 extra field (APPNOTE 4.5.3):
    after the 8-byte sizes that the entry itself marks as 0xFFFFFFFF."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        if kind == 1:
            field = extra[at + 4 + 8 * sizes_masked : at + 4 + length]
            return int.from_bytes(field[:8], "little") if len(field) >= 8 else None
        at += 4 + length
    return None


def _comment_length(tail: bytes, end: int) -> int:
    field = tail[end + _EOCD.size - 2 : end + _EOCD.size]
    return int.from_bytes(field, "little") if len(field) == 2 else -1


def _zip_members(f: _Windows) -> dict[str, tuple[int, int]]:
    """name → (local header offset, compression method) from the zip directory (zip64 too)."""
    for span in (_WINDOW, _EOCD_SEARCH):  # the end record is last, after its comment
        tail = f.at(max(0, f.size - span), span)
        end = tail.rfind(b"PK\x05\x06")
        while end >= 0 and end + _EOCD.size + _comment_length(tail, end) != len(tail):
            end = tail.rfind(b"PK\x05\x06", 0, end)
        if end >= 0:
            break
    else:
        raise NpzFormatError("not a readable npz, truncated or corrupt (no zip directory)")
    end_offset = f.size - len(tail) + end
    _, _, _, _, count, cd_size, cd_offset, _ = _unpack(_EOCD, tail[end:], "zip end record")
    if 0xFFFFFFFF in (cd_size, cd_offset) or count == 0xFFFF:
        locator = _unpack(_ZIP64_LOCATOR, f.at(end_offset - 20, 20), "zip64 locator")
        record = _unpack(_ZIP64_END, f.at(locator[2], _ZIP64_END.size), "zip64 end record")
        if locator[0] != b"PK\x06\x07" or record[0] != b"PK\x06\x06":
            raise NpzFormatError("not a readable npz, truncated or corrupt (bad zip64 records)")
        count, cd_size, cd_offset = record[7], record[8], record[9]
    directory = f.at(cd_offset, cd_size)
    members, at = {}, 0
    for _ in range(count):
        entry = _unpack(_CENTRAL, directory[at:], "zip directory entry")
        if entry[0] != b"PK\x01\x02":
            raise NpzFormatError("not a readable npz, truncated or corrupt (bad zip directory)")
        method, csize, usize, name_len, extra_len, comment_len, offset = (
            entry[4],
            entry[8],
            entry[9],
            entry[10],
            entry[11],
            entry[12],
            entry[16],
        )
        fields = directory[at + _CENTRAL.size : at + _CENTRAL.size + name_len + extra_len]
        if offset == 0xFFFFFFFF:
            masked = (usize == 0xFFFFFFFF) + (csize == 0xFFFFFFFF)
            offset = _zip64_offset(fields[name_len:], masked)
            if offset is None:
                raise NpzFormatError("not a readable npz, truncated or corrupt (zip64 entry)")
        members[fields[:name_len].decode("utf-8", "replace")] = (offset, method)
        at += _CENTRAL.size + name_len + extra_len + comment_len
    return members


@lru_cache(maxsize=256)
def _parse_npy_header(text: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """shape, fortran_order, dtype of an npy header dict; cached, as a production repeats few."""
    try:
        header = ast.literal_eval(text.decode("latin1"))
    except (SyntaxError, ValueError) as err:
        raise NpzFormatError(f"bad npy header ({err})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise NpzFormatError(f"bad npy header {text!r}")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise NpzFormatError(f"bad npy shape {shape!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError) as err:
        raise NpzFormatError(f"bad npy dtype ({err})") from None
    return shape, bool(header["fortran_order"]), dtype


def _read_npy_header(f: _Windows, offset: int, name: str) -> tuple[NpyMember, int]:
    """The npy header at ``offset``; the member it describes (data right after the header)."""
    prefix = f.at(offset, 12)
    if len(prefix) < 10 or prefix[:6] != b"\x93NUMPY":
        raise NpzFormatError(f"member {name!r}: not an npy array")
    major = prefix[6]
    if major == 1:
        length, start = int.from_bytes(prefix[8:10], "little"), offset + 10
    elif major in (2, 3):
        length, start = int.from_bytes(prefix[8:12], "little"), offset + 12
    else:
        raise NpzFormatError(f"member {name!r}: unsupported npy version {major}")
    try:
        shape, fortran_order, dtype = _parse_npy_header(f.at(start, length))
    except NpzFormatError as err:
        raise NpzFormatError(f"member {name!r}: {err}") from None
    return NpyMember(start + length, shape, dtype, fortran_order), length


def _read_member(f: _Windows, name: str, entry: tuple[int, int]) -> NpyMember:
    header_offset, method = entry
    if method != zipfile.ZIP_STORED:
        raise NpzFormatError(f"member {name!r} is compressed; edtrain reads np.savez files")
    local = f.at(header_offset, _LOCAL_HEADER.size)
    if len(local) < _LOCAL_HEADER.size or local[:4] != b"PK\x03\x04":
        raise NpzFormatError(f"member {name!r}: bad zip local header (corrupt file)")
    _, name_len, extra_len = _LOCAL_HEADER.unpack(local)
    member, _ = _read_npy_header(f, header_offset + _LOCAL_HEADER.size + name_len + extra_len, name)
    if member.dtype.hasobject:
        raise NpzFormatError(f"member {name!r} holds Python objects (pickle)")
    if member.offset + member.nbytes > f.size:
        raise NpzFormatError(f"member {name!r} ends past the end of the file (truncated)")
    return member


def _check(images: NpyMember, metadata: NpyMember) -> None:
    if images.dtype.kind != "f" or len(images.shape) != 3:
        raise NpzFormatError(
            f"images are {images.dtype} {images.shape}, expected float (N, 128, 32)"
        )
    if images.shape[1:] != IMAGE_SHAPE:
        rows, cols = images.shape[1:]
        raise NpzFormatError(f"image shape {rows}×{cols}, expected 128×32 (nov10-style data?)")
    if images.fortran_order:
        raise NpzFormatError("images stored in Fortran order; rows cannot be read one by one")
    if metadata.dtype.kind != "f" or len(metadata.shape) != 2:
        raise NpzFormatError(
            f"metadata is {metadata.dtype} {metadata.shape}, expected float (N, M)"
        )
    if metadata.shape[1] not in METADATA_WIDTHS:
        raise NpzFormatError(
            f"metadata width {metadata.shape[1]}, expected one of {METADATA_WIDTHS}"
        )
    if metadata.shape[0] != images.shape[0]:
        raise NpzFormatError(f"{images.shape[0]} images but {metadata.shape[0]} metadata rows")


def open_plane_npz(file: RangeFile | str) -> PlaneFile:
    """Parse and check a plane file's headers and read its metadata member.

    Raises NpzFormatError with the reason if the file is unusable, OSError if it cannot be read.
    """
    if isinstance(file, str):
        file = LocalFile(file)
    if file.size == 0:
        raise NpzFormatError("empty file (0 bytes)")
    f = _Windows(file)
    entries = _zip_members(f)
    members = {name.removesuffix(".npy"): (name, entry) for name, entry in entries.items()}
    if sorted(members) != ["images", "metadata"]:
        raise NpzFormatError(f"keys {sorted(members)}, expected exactly ['images', 'metadata']")
    images = _read_member(f, *members["images"])
    metadata = _read_member(f, *members["metadata"])
    _check(images, metadata)
    return PlaneFile(file, images, metadata, f.at(metadata.offset, metadata.nbytes))


def read_metadata(plane: PlaneFile) -> np.ndarray:
    """The whole metadata member as float32 (N, M); it is small next to the images."""
    m = plane.metadata
    order = "F" if m.fortran_order else "C"
    values = np.frombuffer(plane.metadata_bytes, m.dtype).reshape(m.shape, order=order)
    return values.astype(np.float32)


def row_ranges(offset: int, row_bytes: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Byte ranges (starts, lengths) of these distinct sorted rows, adjacent rows merged."""
    first = np.flatnonzero(np.diff(rows, prepend=-2) != 1)
    counts = np.diff(np.append(first, len(rows)))
    return offset + rows[first] * row_bytes, counts * row_bytes


def read_image_rows(plane: PlaneFile, rows: np.ndarray) -> np.ndarray:
    """Images at these row indices (n, 128, 32) in the file's dtype, reading only those rows,
    each once, straight into place."""
    rows = plane.check_rows(rows)
    out = np.empty((len(rows), *IMAGE_SHAPE), dtype=plane.images.dtype)
    if (rows[1:] > rows[:-1]).all():  # the usual case, ascending: no np.unique (~15 µs)
        distinct, first, inverse = rows, np.arange(len(rows)), None
    else:
        distinct, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    if len(distinct):
        starts, lengths = row_ranges(plane.images.offset, plane.row_bytes, distinct)
        views = [out[i].data.cast("B") for i in first.tolist()]
        plane.file.read_ranges(starts, lengths, views)
    if len(distinct) < len(rows):  # a row asked for twice: copy it
        out[...] = out[first[inverse]]
    return out
