"""Files read by byte ranges, many ranges per call: how the plane npz reader fetches rows.

``RangeFile`` is what the reader needs of a file; ``LocalFile`` serves a local or FUSE path with
one ``preadv`` per range, scattering the bytes straight into the caller's buffers (no memory map,
nothing copied twice). Remote files (XRootD) implement the same protocol in
``edtrain.dataset.storage``, with one vector read per call.
"""

from __future__ import annotations

import errno
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

_IOV_MAX = 1024  # buffers per preadv call (Linux's limit)


class RangeFile(Protocol):
    """A file read by byte ranges: a local path, or a remote one (``edtrain.dataset.storage``)."""

    path: str
    size: int
    bytes_read: int

    def read_ranges(
        self, starts: np.ndarray, lengths: np.ndarray, out: Sequence[memoryview]
    ) -> None:
        """Read the ranges one after another into the buffers ``out`` (as ``preadv`` scatters:
        each range fills a whole number of consecutive buffers); OSError if one is short."""

    def close(self) -> None:
        """Release the file (reading it afterwards is an error)."""


@dataclass
class LocalFile:
    """A file on a (possibly FUSE-mounted) file system, opened once (on FUSE an open is a
    request to the server) and kept open until ``close()`` or until it is garbage."""

    path: str
    size: int = field(init=False)
    bytes_read: int = 0
    fd: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.fd = os.open(self.path, os.O_RDONLY)
        self._closer = weakref.finalize(self, os.close, self.fd)
        self.size = os.fstat(self.fd).st_size

    def read_ranges(
        self, starts: np.ndarray, lengths: np.ndarray, out: Sequence[memoryview]
    ) -> None:
        for start, views in zip(starts.tolist(), buffers_per_range(lengths, out), strict=True):
            if not _preadv_exact(self.fd, views, start):
                reason = "the file ends before a range it should hold (truncated?)"
                raise OSError(errno.EIO, reason, self.path)
        self.bytes_read += int(lengths.sum())

    def close(self) -> None:
        self._closer()


def buffers_per_range(lengths: np.ndarray, out: Sequence[memoryview]) -> list[list[memoryview]]:
    """Split ``out`` into the consecutive buffers each range fills."""
    groups, at = [], 0
    for length in lengths.tolist():
        group, size = [], 0
        while size < length:
            group.append(out[at])
            size, at = size + len(out[at]), at + 1
        if size != length:
            raise ValueError(f"buffers do not end where a range of {length} bytes ends")
        groups.append(group)
    return groups


def _preadv_exact(fd: int, views: list[memoryview], offset: int) -> bool:
    """Fill ``views`` from ``offset`` (a scattered read); False if the file ends first."""
    while views:
        n = os.preadv(fd, views[:_IOV_MAX], offset)
        if n == 0:
            return False
        offset += n
        while views and n >= len(views[0]):  # drop the buffers filled, cut a partial one
            n -= len(views[0])
            views = views[1:]
        if n:
            views = [views[0][n:], *views[1:]]
    return True
