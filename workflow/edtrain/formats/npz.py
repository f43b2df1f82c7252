"""Plane npz files (DATA_FORMAT §2): written as upstream writes them, read without loading them.

Upstream saves each plane with ``np.savez``: an uncompressed zip holding two ``.npy`` members,
``images`` (N, 128, 32) and ``metadata`` (N, 14 or 18). Only a few rows per event are ever used,
so loading whole files (the predecessor's ``np.load``) reads far more than needed. Here the zip
directory and the two npy headers are parsed once, the small metadata member is read whole, and
image rows are gathered through a read-only memory map, so only the pages of the rows used are
read from disk and the mapping is released after each call (memory stays bounded).
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from edtrain.formats.columns import IMAGE_SHAPE

METADATA_WIDTHS: tuple[int, ...] = (14, 18)
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, …, file name length, extra field length


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
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass(frozen=True)
class PlaneFile:
    """A checked plane npz file: header facts only, no array data read yet."""

    path: str
    size: int
    images: NpyMember
    metadata: NpyMember
    header_bytes: int  # bytes read to parse the zip directory and the npy headers

    @property
    def rows(self) -> int:
        return self.images.shape[0]

    @property
    def width(self) -> int:
        return self.metadata.shape[1]


def write_plane_npz(path: str | os.PathLike, images: np.ndarray, metadata: np.ndarray) -> None:
    """Write one plane file exactly as upstream does (``np.savez``, float32, no pickle)."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    metadata = np.ascontiguousarray(metadata, dtype=np.float32)
    if len(images) != len(metadata):
        raise ValueError(f"{len(images)} images but {len(metadata)} metadata rows")
    with open(path, "wb") as f:  # a file object keeps np.savez from appending ".npz"
        np.savez(f, images=images, metadata=metadata)


class _CountingReader(io.RawIOBase):
    """A read-only file wrapper that counts the bytes read through it."""

    def __init__(self, f: io.BufferedReader):
        self._f = f
        self.count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.count += len(data)
        return data


def _read_member(f: _CountingReader, info: zipfile.ZipInfo, size: int) -> NpyMember:
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED:
        raise NpzFormatError(f"member {name!r} is compressed; edtrain reads np.savez files")
    f.seek(info.header_offset)
    local = f.read(_LOCAL_HEADER.size)
    if len(local) < _LOCAL_HEADER.size or local[:4] != b"PK\x03\x04":
        raise NpzFormatError(f"member {name!r}: bad zip local header (corrupt file)")
    _, name_len, extra_len = _LOCAL_HEADER.unpack(local)
    f.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise NpzFormatError(f"member {name!r}: unsupported npy version {version}")
    except ValueError as err:  # includes NpzFormatError
        raise NpzFormatError(f"member {name!r}: bad npy header ({err})") from None
    if dtype.hasobject:
        raise NpzFormatError(f"member {name!r} holds Python objects (pickle)")
    member = NpyMember(f.tell(), tuple(shape), dtype, fortran_order)
    if member.offset + member.nbytes > size:
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


def open_plane_npz(path: str) -> PlaneFile:
    """Parse and check a plane file's headers; raise NpzFormatError with the reason if unusable."""
    size = os.path.getsize(path)
    if size == 0:
        raise NpzFormatError("empty file (0 bytes)")
    with open(path, "rb") as raw:
        f = _CountingReader(raw)
        try:
            with zipfile.ZipFile(f) as zf:  # type: ignore[arg-type]
                infos = {info.filename.removesuffix(".npy"): info for info in zf.infolist()}
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            raise NpzFormatError(f"not a readable npz, truncated or corrupt ({err})") from None
        if sorted(infos) != ["images", "metadata"]:
            raise NpzFormatError(f"keys {sorted(infos)}, expected exactly ['images', 'metadata']")
        images = _read_member(f, infos["images"], size)
        metadata = _read_member(f, infos["metadata"], size)
    _check(images, metadata)
    return PlaneFile(path, size, images, metadata, f.count)


def read_metadata(plane: PlaneFile) -> np.ndarray:
    """The whole metadata member as float32 (N, M); it is small next to the images."""
    m = plane.metadata
    with open(plane.path, "rb") as f:
        f.seek(m.offset)
        data = f.read(m.nbytes)
    if len(data) != m.nbytes:
        raise NpzFormatError("metadata ends past the end of the file (truncated)")
    order = "F" if m.fortran_order else "C"
    return np.frombuffer(data, m.dtype).reshape(m.shape, order=order).astype(np.float32)


def read_image_rows(plane: PlaneFile, rows: np.ndarray) -> np.ndarray:
    """Images at these row indices (n, 128, 32), in the file's dtype, reading only their pages."""
    m = plane.images
    rows = np.asarray(rows, dtype=np.intp)
    if len(rows) == 0:
        return np.empty((0, *IMAGE_SHAPE), dtype=m.dtype)
    order = "F" if m.fortran_order else "C"
    with open(plane.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        count = int(np.prod(m.shape, dtype=np.int64))
        array = np.frombuffer(mm, m.dtype, count=count, offset=m.offset).reshape(
            m.shape, order=order
        )
        out = array[rows]
        del array  # the buffer export must end before the map closes
    return out


def image_bytes_touched(plane: PlaneFile, rows: np.ndarray) -> int:
    """Bytes of the distinct memory pages that reading these image rows maps in."""
    m = plane.images
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) == 0:
        return 0
    row_bytes = m.nbytes // max(m.shape[0], 1)
    start = m.offset + rows * row_bytes
    first, last = start // mmap.PAGESIZE, (start + row_bytes - 1) // mmap.PAGESIZE
    pages = int((last - first + 1).sum() - (first[1:] == last[:-1]).sum())
    return pages * mmap.PAGESIZE
