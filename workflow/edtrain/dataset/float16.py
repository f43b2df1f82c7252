"""Plane images cast from the files' float32 to the dataset's float16, flagging what does not fit.

A pixel float16 cannot hold makes its sample unusable: NaN or infinity, or a value beyond
±65504 (it would round to infinity). Each image gets a code: ``FITS``, ``BEYOND_RANGE`` or
``NON_FINITE`` (``PROBLEMS`` words the last two for the manifest).

numpy's float32 → float16 cast has no SIMD path on x86 (~2 ns a value: the most expensive step
of reading a sample), so the cast runs in a small C kernel (``_float16.c``, the x86 F16C
instructions, bitwise the same result) where the install could build it and the CPU has F16C;
numpy otherwise. For plane files on a local or FUSE path the kernel also reads the rows, each
into a buffer that stays in cache: no float32 copy of the images is made at all.
"""

from __future__ import annotations

import errno

import numpy as np

from edtrain.dataset.image_files import IMAGE_DTYPE
from edtrain.formats.columns import IMAGE_SHAPE
from edtrain.formats.npz import PlaneFile, read_image_rows
from edtrain.formats.range_file import LocalFile

try:
    from edtrain.dataset import _float16
except ImportError:  # built only where the install found a C compiler (pyproject.toml)
    _float16 = None

F16C: bool = _float16 is not None and _float16.SUPPORTED  # the kernel can run here
FITS, BEYOND_RANGE, NON_FINITE = 0, 1, 2
PROBLEMS = {BEYOND_RANGE: "pixel beyond the float16 range", NON_FINITE: "non-finite pixels"}
_BLOCK_ROWS = 8  # numpy path: image rows converted together


def _images(a: np.ndarray) -> np.ndarray:
    """``a`` as (images, 128, 32), a view that writes through (never a copy)."""
    images = a.reshape(-1, *IMAGE_SHAPE)
    if images.size and not np.may_share_memory(images, a):
        raise ValueError(f"an array of shape {a.shape} and strides {a.strides} is not a view")
    return images


def to_float16(raw: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Cast images (..., 128, 32) into ``out`` (float16, same shape); a code per image.

    Bitwise equal to ``raw.astype(np.float16)`` for every value but NaN payloads. ``out`` may
    be a strided view such as one plane of (n, 3, 128, 32) samples.
    """
    if raw.shape != out.shape or out.dtype != IMAGE_DTYPE:
        raise ValueError(f"out is {out.dtype} {out.shape}, expected float16 {raw.shape}")
    src = np.ascontiguousarray(raw, dtype=np.float32)
    if F16C:
        codes = np.frombuffer(_float16.cast(_images(src), _images(out)), dtype=np.uint8)
    else:
        codes = numpy_to_float16(_images(src), _images(out))
    return codes.reshape(raw.shape[:-2])


def numpy_to_float16(raw: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``to_float16`` for (n, 128, 32) images with numpy alone.

    Only the 8-row blocks that hold a non-zero bit are converted: cluster images are ~1.5 %
    pixels and ~25 % such blocks.
    """
    n = len(raw)
    blocks = np.ascontiguousarray(raw).reshape(
        n, IMAGE_SHAPE[0] // _BLOCK_ROWS, _BLOCK_ROWS * IMAGE_SHAPE[1]
    )
    used = np.bitwise_or.reduce(blocks.view(np.uint64), axis=2) != 0
    with np.errstate(over="ignore", invalid="ignore"):  # what does not fit is flagged below
        converted = blocks[used].astype(IMAGE_DTYPE)
    result = np.zeros(blocks.shape, dtype=IMAGE_DTYPE)
    result[used] = converted
    out[...] = result.reshape(out.shape)
    overflow = np.zeros(used.shape, dtype=bool)  # an exponent of all ones: infinity or NaN
    overflow[used] = ((converted.view(np.uint16) & 0x7C00) == 0x7C00).any(axis=1)
    codes = np.where(overflow.any(axis=1), BEYOND_RANGE, FITS).astype(np.uint8)
    for i in np.flatnonzero(codes):  # rare: which problem is it?
        if not np.isfinite(raw[i]).all():
            codes[i] = NON_FINITE
    return codes


def read_plane_rows(plane: PlaneFile, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The images at these rows of a plane file, cast into ``out`` (float16 (n, 128, 32), any
    stride between images); a code per image.

    Local float32 files are read by the kernel where it runs; others through
    ``npz.read_image_rows`` (one request for all rows, as remote files need) and cast.
    """
    direct = F16C and isinstance(plane.file, LocalFile) and plane.images.dtype == "<f4"
    if not direct:
        return to_float16(read_image_rows(plane, rows), out)
    rows = plane.check_rows(rows)
    offsets = plane.images.offset + rows * plane.row_bytes
    try:
        codes = _float16.pread_rows(plane.file.fd, offsets, _images(out))
    except EOFError:
        reason = "the file ends before a range it should hold (truncated?)"
        raise OSError(errno.EIO, reason, plane.path) from None
    except OSError as err:
        raise OSError(err.errno, err.strerror, plane.path) from None
    plane.file.bytes_read += len(rows) * plane.row_bytes
    return np.frombuffer(codes, dtype=np.uint8)
