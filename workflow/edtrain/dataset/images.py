"""``images.npy`` written by appending: bounded memory whatever the number of samples.

A writable memory map of the whole output would keep every dirty page in the writer's RSS;
appending blocks with plain writes keeps only the block in memory. The shape is not known until
the end, so the npy header has a fixed size and is rewritten on close. Readers use
``np.load(path, mmap_mode="r")`` as usual.

The header is one 4 KiB page and a sample is six pages, so every block starts and ends on a page
boundary and can be written with ``O_DIRECT``: a dataset nobody reads back right away then skips
the page cache, whose allocation (and eviction of other files) is most of the cost of writing it.
File systems without ``O_DIRECT`` get ordinary buffered writes. Blocks that already lie in
page-aligned memory (``aligned_empty``) are written from where they are, by a background
thread, so that the disk works while the caller prepares the next block (the caller's CPU work
and the write overlap; nothing is computed in the thread). Other blocks are copied through an
aligned staging buffer and written at once. ``ImageReader`` reads runs of samples back the same
way.
"""

from __future__ import annotations

import mmap
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Self

import numpy as np

from edtrain.formats.columns import IMAGE_SHAPE, PLANES

IMAGE_DTYPE = np.dtype("<f2")
SAMPLE_SHAPE: tuple[int, ...] = (len(PLANES), *IMAGE_SHAPE)
SAMPLE_BYTES = IMAGE_DTYPE.itemsize * int(np.prod(SAMPLE_SHAPE))  # 24 KiB: six 4 KiB pages
HEADER_SIZE = 4096  # npy v1.0 header (magic, version, length, dict) padded to a page
_STAGING_BYTES = 512 * SAMPLE_BYTES


def _header(n: int) -> bytes:
    fields = {"descr": IMAGE_DTYPE.str, "fortran_order": False, "shape": (n, *SAMPLE_SHAPE)}
    text = repr(fields).encode("latin1")
    prefix = np.lib.format.magic(1, 0) + (HEADER_SIZE - 10).to_bytes(2, "little")
    return prefix + text.ljust(HEADER_SIZE - len(prefix) - 1) + b"\n"


def aligned_empty(n: int) -> np.ndarray:
    """An uninitialized float16 (n, 3, 128, 32) array in page-aligned memory (for O_DIRECT)."""
    buffer = mmap.mmap(-1, max(n, 1) * SAMPLE_BYTES)
    return np.frombuffer(buffer, IMAGE_DTYPE, count=n * int(np.prod(SAMPLE_SHAPE))).reshape(
        n, *SAMPLE_SHAPE
    )


def _is_aligned(block: np.ndarray) -> bool:
    return block.flags.c_contiguous and block.ctypes.data % mmap.PAGESIZE == 0


def _open(
    path: str, direct: bool, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
) -> tuple[int, bool]:
    """A descriptor, with O_DIRECT when asked for and the file system supports it."""
    if direct and hasattr(os, "O_DIRECT"):
        try:
            return os.open(path, flags | os.O_DIRECT, 0o644), True
        except OSError:
            pass
    return os.open(path, flags, 0o644), False


class ImageWriter:
    """Append float16 (n, 3, 128, 32) blocks to a new ``.npy`` file.

    ``direct`` writes around the page cache where the file system allows (module docstring).
    A block in page-aligned memory is written in the background: it must stay unchanged until
    the next ``append`` or ``close`` returns (callers alternate between two buffers).
    """

    def __init__(self, path: str, direct: bool = True):
        self.path = path
        self.count = 0
        self._thread = ThreadPoolExecutor(max_workers=1)
        self._pending: Future[None] | None = None
        self._tmp = f"{path}.tmp"
        self._fd, self._direct = _open(self._tmp, direct)
        # O_DIRECT needs aligned memory: an anonymous map is page-aligned; writes go through it
        self._staging = mmap.mmap(-1, _STAGING_BYTES)
        self._write_at(_header(0), 0)

    def _write_at(self, data: memoryview | bytes, offset: int, aligned: bool = False) -> None:
        """Write at ``offset``; every write is a whole number of 4 KiB pages at a page offset.

        ``aligned``: ``data`` lies in page-aligned memory and can go out with O_DIRECT as it is.
        """
        view = memoryview(data).cast("B")
        if not self._direct or aligned:
            self._pwrite(view, offset)
            return
        for start in range(0, len(view), _STAGING_BYTES):
            part = view[start : start + _STAGING_BYTES]
            self._staging[: len(part)] = part
            self._pwrite(memoryview(self._staging)[: len(part)], offset + start)

    def _pwrite(self, view: memoryview, offset: int) -> None:
        while len(view):
            try:
                written = os.pwrite(self._fd, view, offset)
            except OSError:
                if not self._direct:
                    raise
                # the file system accepted O_DIRECT but not these writes: continue buffered
                os.close(self._fd)
                self._fd, self._direct = os.open(self._tmp, os.O_WRONLY), False
                continue
            view, offset = view[written:], offset + written

    def append(self, block: np.ndarray) -> None:
        if block.shape[1:] != SAMPLE_SHAPE or block.dtype != IMAGE_DTYPE:
            raise ValueError(
                f"expected float16 (n, {SAMPLE_SHAPE}), got {block.dtype} {block.shape}"
            )
        if len(block) == 0:
            return
        offset = HEADER_SIZE + self.count * SAMPLE_BYTES
        self._wait()
        if _is_aligned(block):
            self._pending = self._thread.submit(self._write_at, block.data, offset, True)
        else:
            self._write_at(np.ascontiguousarray(block).data, offset)
        self.count += len(block)

    def _wait(self) -> None:
        """Let the background write finish; its error, if any, is raised here."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Finish the header and move the file into place."""
        self._wait()
        self._write_at(_header(self.count), 0)
        self._release()
        os.replace(self._tmp, self.path)

    def _release(self) -> None:
        self._thread.shutdown(wait=True)
        os.close(self._fd)
        self._staging.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._release()
            os.remove(self._tmp)


class ImageReader:
    """Read runs of consecutive samples from an ``ImageWriter`` file, around the page cache.

    The files are read once, right after they were written with O_DIRECT (so they are not in
    the page cache either). Reads go to page-aligned buffers with O_DIRECT where the file system
    allows it (tried once, on the header page), and may run in several threads at once: the
    descriptor never changes after opening.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd, direct = _open(path, True, os.O_RDONLY)
        if direct and not self._direct_read_works():
            os.close(self._fd)
            self._fd = os.open(path, os.O_RDONLY)

    def _direct_read_works(self) -> bool:
        with mmap.mmap(-1, HEADER_SIZE) as page:
            try:
                return os.preadv(self._fd, [page], 0) == HEADER_SIZE
            except OSError:
                return False

    def read(self, first: int, out: np.ndarray) -> None:
        """Fill ``out`` (n samples, page-aligned) with samples ``first`` … ``first + n − 1``."""
        view = memoryview(out).cast("B")
        offset = HEADER_SIZE + first * SAMPLE_BYTES
        while len(view):
            n = os.preadv(self._fd, [view], offset)
            if n == 0:
                raise OSError(f"{self.path}: ends before sample {first + len(out)}")
            view, offset = view[n:], offset + n

    def close(self) -> None:
        os.close(self._fd)
