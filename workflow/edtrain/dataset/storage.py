"""Where a production lives: a mounted folder (local disk, EOS FUSE) or an XRootD server.

Inputs are paths or ``root://host[:port]//path`` URLs (EOS without the mount). Both give the
same operations: list a folder's files, tell a folder from a missing one, a file's size, and a
``RangeFile`` that reads byte ranges (``edtrain.formats.npz``). Over XRootD, ranges go out as
vector reads through fsspec-xrootd on one cached connection per server, and folder listings
come with the sizes, so no file is stat-ed on its own.

The XRootD client library crashes (segmentation fault) when it is loaded into a process that
has already imported TensorFlow (xrootd 6.2.1 with tensorflow-cpu 2.21). Chunk jobs never import
TensorFlow; anything else gets a clear error instead of the crash.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

import numpy as np

from edtrain.formats.range_file import LocalFile, RangeFile, buffers_per_range

URL_SCHEMES: tuple[str, ...] = ("root://", "xroot://")


def is_url(path: str) -> bool:
    return path.startswith(URL_SCHEMES)


class Storage(Protocol):
    def normalize(self, path: str) -> str: ...
    def isdir(self, path: str) -> bool: ...
    def isfile(self, path: str) -> bool: ...
    def join(self, folder: str, name: str) -> str: ...
    def files(self, folder: str) -> list[tuple[str, str]]: ...  # (name, path), no folders
    def size(self, path: str) -> int: ...
    def open(self, path: str) -> RangeFile: ...


class LocalStorage:
    """Files on a mounted file system."""

    def normalize(self, path: str) -> str:
        return os.path.normpath(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def join(self, folder: str, name: str) -> str:
        return os.path.join(folder, name)

    def files(self, folder: str) -> list[tuple[str, str]]:
        if not os.path.isdir(folder):
            return []
        return [(e.name, e.path) for e in os.scandir(folder) if e.is_file()]

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def open(self, path: str) -> RangeFile:
        return LocalFile(path)


@dataclass
class RemoteFile:
    """A file on an XRootD server, read by byte ranges (one vector read per call)."""

    fs: Any  # fsspec_xrootd.XRootDFileSystem
    path: str  # the URL, as recorded in the manifest
    size: int
    bytes_read: int = field(default=0)

    def read_ranges(
        self, starts: np.ndarray, lengths: np.ndarray, out: Sequence[memoryview]
    ) -> None:
        ends = (starts + lengths).tolist()
        try:
            parts = self.fs.cat_ranges([self.path] * len(starts), starts.tolist(), ends)
        except OSError as err:  # the server's message, with the file named
            raise OSError(errno.EIO, str(err), self.path) from None
        for part, length, views in zip(
            parts, lengths.tolist(), buffers_per_range(lengths, out), strict=True
        ):
            if len(part) != length:
                reason = f"{len(part)} bytes where {length} were asked for (truncated?)"
                raise OSError(errno.EIO, reason, self.path)
            data, position = memoryview(part), 0
            for view in views:
                view[:] = data[position : position + len(view)]
                position += len(view)
        self.bytes_read += int(lengths.sum())

    def close(self) -> None:
        """Nothing to release: the connection is the file system's, shared by all files."""


class XRootDStorage:
    """Files behind one XRootD server, addressed by ``root://host:port//path`` URLs."""

    def __init__(self, server: str):
        if "tensorflow" in sys.modules and "XRootD.client" not in sys.modules:
            raise RuntimeError(
                f"cannot read {server}: the XRootD client crashes once TensorFlow is loaded; "
                "read root:// inputs in a process without it (edtrain chunk)"
            )
        import fsspec  # imported here: only remote inputs need the XRootD client

        self._server = server  # "root://host:port"
        self._fs = fsspec.filesystem("root", hostid=server.split("://", 1)[1])
        self._sizes: dict[str, int] = {}

    def url(self, path: str) -> str:
        """The URL of a server path (``/eos/...``)."""
        return f"{self._server}/{path}"

    def _path(self, url: str) -> str:
        return "/" + url.split("://", 1)[1].split("/", 1)[1].lstrip("/")

    def normalize(self, path: str) -> str:
        return self.url(os.path.normpath(self._path(path)))

    def isdir(self, path: str) -> bool:
        return self._fs.isdir(self._path(path))

    def isfile(self, path: str) -> bool:
        return self._fs.isfile(self._path(path))

    def join(self, folder: str, name: str) -> str:
        return f"{folder.rstrip('/')}/{name}"

    def files(self, folder: str) -> list[tuple[str, str]]:
        if not self.isdir(folder):
            return []
        found = []
        for item in self._fs.ls(self._path(folder), detail=True):
            if item["type"] == "file":
                url = self.url(item["name"])
                self._sizes[url] = int(item["size"])
                found.append((os.path.basename(item["name"]), url))
        return found

    def size(self, path: str) -> int:
        if path not in self._sizes:
            self._sizes[path] = int(self._fs.size(self._path(path)))
        return self._sizes[path]

    def open(self, path: str) -> RangeFile:
        return RemoteFile(self._fs, path, self.size(path))


_LOCAL = LocalStorage()


def storage_for(path: str) -> Storage:
    """The storage a path or URL lives on."""
    if not is_url(path):
        return _LOCAL
    scheme, rest = path.split("://", 1)
    return _xrootd(f"{scheme}://{rest.split('/', 1)[0]}")


@cache
def _xrootd(server: str) -> XRootDStorage:
    return XRootDStorage(server)


def open_range(path: str) -> RangeFile:
    """A file to read by byte ranges, wherever it lives."""
    return storage_for(path).open(path)
