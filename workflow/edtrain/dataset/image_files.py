"""``images.npy`` files written by appending, in bounded memory, and linked into a dataset.

A writable memory map of the whole output would keep every dirty page in the writer's RSS;
appending blocks with plain writes keeps only the block in memory. The shape is not known until
the end, so the npy header has a fixed size and is rewritten on close. Readers use
``np.load(path, mmap_mode="r")`` as usual.

The header is one 4 KiB page and a sample is six pages, so every block of samples starts and
ends on a page boundary and can be written and read with ``O_DIRECT``: data nobody reads back
right away then skips the page cache, whose allocation (and eviction of other files) costs more
CPU than the rest of the write (measured here: ~2.4 ms of system time per MB written through
the cache, against ~0.03 ms with ``O_DIRECT``). File systems without ``O_DIRECT`` get ordinary
buffered I/O. Writes go out from page-aligned blocks in a background thread, so the disk works
while the caller fills the next block; nothing is computed in the thread.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Self

import numpy as np

from edtrain.formats.columns import IMAGE_SHAPE, PLANES

IMAGE_DTYPE = np.dtype("<f2")
SAMPLE_SHAPE: tuple[int, ...] = (len(PLANES), *IMAGE_SHAPE)
SAMPLE_BYTES = IMAGE_DTYPE.itemsize * int(np.prod(SAMPLE_SHAPE))  # 24 KiB: six 4 KiB pages
HEADER_SIZE = 4096  # npy v1.0 header (magic, version, length, dict) padded to a page
BLOCK_ROWS = 256  # samples per write: 6 MiB


def _header(n: int) -> mmap.mmap:
    """The npy header for ``n`` samples, one page in page-aligned memory (for O_DIRECT)."""
    fields = {"descr": IMAGE_DTYPE.str, "fortran_order": False, "shape": (n, *SAMPLE_SHAPE)}
    text = repr(fields).encode("latin1")
    prefix = np.lib.format.magic(1, 0) + (HEADER_SIZE - 10).to_bytes(2, "little")
    page = mmap.mmap(-1, HEADER_SIZE)
    page.write(prefix + text.ljust(HEADER_SIZE - len(prefix) - 1) + b"\n")
    return page


def aligned_empty(n: int) -> np.ndarray:
    """An uninitialized float16 (n, 3, 128, 32) array in page-aligned memory (for O_DIRECT)."""
    buffer = mmap.mmap(-1, max(n, 1) * SAMPLE_BYTES)
    return np.frombuffer(buffer, IMAGE_DTYPE, count=n * int(np.prod(SAMPLE_SHAPE))).reshape(
        n, *SAMPLE_SHAPE
    )


class PagedFile:
    """A new file written with positional writes of whole pages, around the page cache where
    possible.

    Opened with ``O_DIRECT`` when asked for; if the file system refuses it at open or at the
    first write (EINVAL), the file is reopened buffered and the write repeated. Buffers must be
    page-aligned (``aligned_empty``, ``mmap``) for direct I/O.
    """

    def __init__(self, path: str, direct: bool = True):
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        self.fd, self.direct = -1, False
        if direct and hasattr(os, "O_DIRECT"):
            try:
                self.fd, self.direct = os.open(path, flags | os.O_DIRECT, 0o644), True
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
        if self.fd < 0:
            self.fd = os.open(path, flags, 0o644)

    def write(self, data: memoryview | mmap.mmap, offset: int) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            try:
                written = os.pwrite(self.fd, view, offset)
            except OSError as err:
                if not (self.direct and err.errno == errno.EINVAL):
                    raise
                os.close(self.fd)  # keeps what was written; from now on buffered
                self.fd, self.direct = os.open(self.path, os.O_WRONLY), False
                continue
            view, offset = view[written:], offset + written

    def close(self) -> None:
        os.close(self.fd)


class ImageWriter:
    """Append float16 (n, 3, 128, 32) samples to a new ``.npy`` file.

    ``append`` copies samples in; ``reserve`` + ``commit`` let the caller fill the next rows of
    the block in place (an image cast straight into the output: no extra copy). Full blocks go
    out in the background (module docstring); ``direct`` asks for O_DIRECT.
    """

    def __init__(self, path: str, direct: bool = True, block_rows: int | None = None):
        self.path = path
        self.count = 0  # samples committed
        self._tmp = f"{path}.tmp"
        self._file = PagedFile(self._tmp, direct)
        self._thread = ThreadPoolExecutor(max_workers=1)
        self._pending: Future[None] | None = None
        rows = block_rows or BLOCK_ROWS
        self._blocks = [aligned_empty(rows), aligned_empty(rows)]  # one being written
        self._fill = 0  # samples in the current block
        self._written = 0  # samples handed to the disk
        self._file.write(_header(0), 0)

    def reserve(self, n: int) -> np.ndarray:
        """Room for the next ``n`` samples, to be filled and then (partly) ``commit``-ted."""
        if self._fill + n > len(self._blocks[0]):
            self._flush()
        if n > len(self._blocks[0]):  # more than a block at once: a larger buffer, kept
            self._blocks[0] = aligned_empty(n)
        return self._blocks[0][self._fill : self._fill + n]

    def commit(self, n: int) -> None:
        """Keep the first ``n`` samples of the last ``reserve``."""
        self._fill += n
        self.count += n
        if self._fill == len(self._blocks[0]):
            self._flush()

    def append(self, images: np.ndarray) -> None:
        if images.shape[1:] != SAMPLE_SHAPE or images.dtype != IMAGE_DTYPE:
            raise ValueError(
                f"expected float16 (n, {SAMPLE_SHAPE}), got {images.dtype} {images.shape}"
            )
        start = 0
        while start < len(images):
            n = min(len(self._blocks[0]) - self._fill, len(images) - start)  # never 0: commit
            self.reserve(n)[:] = images[start : start + n]
            self.commit(n)
            start += n

    def _flush(self) -> None:
        """Hand the filled part of the current block to the background writer."""
        self._wait()
        if self._fill:
            data = self._blocks[0][: self._fill].data
            offset = HEADER_SIZE + self._written * SAMPLE_BYTES
            self._pending = self._thread.submit(self._file.write, data, offset)
            self._written += self._fill
            self._blocks.reverse()  # fill the other one meanwhile
        self._fill = 0

    def _wait(self) -> None:
        """Let the background write finish; its error, if any, is raised here."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Finish the header and move the file into place."""
        self._flush()
        self._wait()
        self._file.write(_header(self.count), 0)
        self._release()
        os.replace(self._tmp, self.path)

    def _release(self) -> None:
        self._thread.shutdown(wait=True)
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._release()
            os.remove(self._tmp)


def sample_count(path: str) -> int:
    """The number of samples in an ``ImageWriter`` file, checked to be one."""
    try:
        images = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable .npy file ({err})") from None
    if (images.dtype, images.shape[1:], images.offset) != (IMAGE_DTYPE, SAMPLE_SHAPE, HEADER_SIZE):
        found = f"{images.dtype} {images.shape}, data at byte {images.offset}"
        raise ValueError(f"{path}: {found}; expected float16 (N, 3, 128, 32) written by edtrain")
    return images.shape[0]


def link_parts(sources: list[str], folder: str) -> list[dict[str, int | str]]:
    """Give each of ``sources`` (``ImageWriter`` files) a name in ``folder``, in order.

    A hard link where the file system allows, else a copy: the files are never changed after
    they are written (a rewrite replaces the file), so two names can share the bytes. Returns
    each part's file name and sample count.
    """
    parts = []
    os.makedirs(folder, exist_ok=True)
    for k, source in enumerate(sources):
        name = f"part-{k:05d}.npy"
        path = os.path.join(folder, name)
        samples = sample_count(source)
        if not _hard_link(source, path):
            shutil.copyfile(source, f"{path}.tmp")
            os.replace(f"{path}.tmp", path)
        parts.append({"file": name, "samples": samples})
    return parts


def _hard_link(source: str, path: str) -> bool:
    """Make ``path`` another name of ``source``; False where links are not possible."""
    tmp = f"{path}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.remove(tmp)
    try:
        os.link(source, tmp)
    except OSError:  # another file system, or one without hard links (EOS, AFS across dirs)
        return False
    os.replace(tmp, path)
    return True
