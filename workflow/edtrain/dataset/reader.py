"""A dataset's images: its part files, read end to end as one (n, 3, 128, 32) float16 array.

``assemble`` gives each chunk's ``images.npy`` a name in the dataset's ``images/`` folder (a
hard link) instead of copying the chunks into one file: joining would write every image a
second time (0.9 s for 50k samples here, as long as reading them) and, with the chunk
directories kept for incremental reruns, store it twice. Each part is an ordinary ``.npy``
file (``np.load(part, mmap_mode="r")``); ``open_images`` reads them together.

Rows are read with ``os.preadv``, one call per run of consecutive rows, rather than through a
memory map: pages touched through a mapping count towards the process's resident memory (the
whole dataset after one epoch: 4.9 GB at 200k samples); pages read into a buffer do not.
"""

from __future__ import annotations

import json
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
SAMPLES = "samples.parquet"  # one row per sample: keys, label, truth, split


class Images:
    """Read-only rows of one or more ``.npy`` files of equal sample shape, end to end.

    Thread-safe (positional reads); for thread workers, not processes.
    """

    def __init__(self, paths: list[str | Path]) -> None:
        if not paths:
            raise ValueError("no image files")
        maps = [np.load(p, mmap_mode="r") for p in paths]
        first = maps[0]
        for path, m in zip(paths, maps, strict=True):
            if (m.dtype, m.shape[1:]) != (first.dtype, first.shape[1:]):
                found = f"{m.dtype} {m.shape[1:]}, not {first.dtype} {first.shape[1:]}"
                raise ValueError(f"{path}: samples of {found} like {paths[0]}")
        self.paths = [str(p) for p in paths]
        self.dtype = first.dtype
        self.shape = (sum(len(m) for m in maps), *first.shape[1:])
        self.row_bytes = first.dtype.itemsize * int(np.prod(first.shape[1:]))
        self.offsets = [m.offset for m in maps]
        self.starts = np.cumsum([0, *(len(m) for m in maps)])  # first row of each part
        self.fds = [os.open(p, os.O_RDONLY) for p in self.paths]
        for fd in self.fds:
            weakref.finalize(self, os.close, fd)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The given rows, sorted ascending, as one (len(rows), ...) array."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows[0] < 0 or rows[-1] >= len(self)):
            raise IndexError(f"rows {rows[0]}..{rows[-1]} outside 0..{len(self) - 1}")
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        buffer = memoryview(out.reshape(-1).view(np.uint8))
        part = np.searchsorted(self.starts, rows, side="right") - 1
        # a run: consecutive rows in one part, read with one call
        starts = np.flatnonzero((np.diff(rows, prepend=-2) != 1) | (np.diff(part, prepend=-1) != 0))
        for start, stop in zip(starts, [*starts[1:], len(rows)], strict=True):
            k = part[start]
            size = (stop - start) * self.row_bytes
            position = self.offsets[k] + int(rows[start] - self.starts[k]) * self.row_bytes
            view = buffer[start * self.row_bytes : start * self.row_bytes + size]
            if os.preadv(self.fds[k], [view], position) != size:
                span = f"{rows[start]}..{rows[stop - 1]}"
                raise OSError(f"{self.paths[k]}: short read of rows {span}")
        return out

    def __getitem__(self, index: Any) -> np.ndarray:
        """numpy-style selection: samples by an integer, a slice, indices or a mask, then
        anything numpy takes for the axes after the first (``images[rows, 2]``: X planes)."""
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        if first is Ellipsis:
            return np.asarray(self)[index]
        rows = np.arange(len(self))[first]
        if rows.ndim == 0:
            return self.read(rows.reshape(1))[0][rest]
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        out[order] = self.read(rows[order])
        return out[(slice(None), *rest)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        everything = self.read(np.arange(len(self)))
        return everything if dtype is None else everything.astype(dtype)


def part_paths(dataset: str | Path) -> list[Path]:
    """The image part files of an assembled dataset directory, from its manifest, in order."""
    dataset = Path(dataset)
    manifest = json.loads((dataset / MANIFEST).read_text())
    return [dataset / part["file"] for part in manifest["images"]["parts"]]


def open_images(dataset: str | Path) -> Images:
    """The images of an assembled dataset directory (``edtrain assemble``)."""
    return Images(part_paths(dataset))
