"""Find a production's plane files and group them by basename (docs/data_format.md §2–4).

Two layouts hold the same files, ``<basename>_plane{U,V,X}.npz``: all three planes side by side
in one folder (nov11), or one ``U/``, ``V/``, ``X/`` subfolder per plane (current upstream). A
basename is usable only with all three planes; anything else is reported, never dropped silently.
A folder may instead hold cluster ROOT files (``<basename>.root``, e.g. ``*_bg_matched.root``):
each is one basename with all three planes inside, rendered into images when read.
Inputs are folders or ``root://`` URLs of folders (``edtrain.dataset.storage``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from edtrain.dataset.manifest import Skip
from edtrain.dataset.storage import Storage, storage_for
from edtrain.formats.columns import PLANES
from edtrain.splits import name_hash

_PLANE_FILE = re.compile(r"^(?P<basename>.+)_plane(?P<plane>[UVX])\.npz$")


@dataclass(frozen=True)
class Source:
    """The three plane files of one basename, found under one input directory."""

    basename: str
    root: str
    planes: dict[str, str]  # plane letter -> npz file path; empty for a cluster file
    cluster_file: str | None = None  # the ROOT file holding all three planes

    @property
    def paths(self) -> list[str]:
        """The files this basename is read from."""
        return [self.cluster_file] if self.cluster_file else list(self.planes.values())


def _plane_files(
    store: Storage, root: str, files: list[tuple[str, str]], per_plane: bool
) -> tuple[dict[str, dict[str, list[str]]], list[Skip]]:
    """basename -> plane -> paths, from the flat folder (``files``) and any U/V/X subfolders."""
    found: dict[str, dict[str, list[str]]] = {}
    skips: list[Skip] = []
    folders = [(files, None)]
    if per_plane:
        folders += [(store.files(store.join(root, p)), p) for p in PLANES]
    for listing, plane_of_folder in folders:
        for name, path in listing:
            match = _PLANE_FILE.match(name)
            if match is None:
                continue
            basename, plane = match["basename"], match["plane"]
            if plane_of_folder is not None and plane != plane_of_folder:
                reason = f"plane {plane} file in the {plane_of_folder}/ folder"
                skips.append(Skip(path, reason, basename))
                continue
            found.setdefault(basename, {}).setdefault(plane, []).append(path)
    return found, skips


def _cluster_files(files: list[tuple[str, str]]) -> dict[str, str]:
    """basename -> path of the cluster ROOT files among a folder's ``files``."""
    return {name.removesuffix(".root"): path for name, path in files if name.endswith(".root")}


def _npz_source(
    store: Storage, root: str, basename: str, planes: dict[str, list[str]], per_plane: bool
) -> tuple[Source | None, list[Skip]]:
    """A basename's complete triplet of plane files, or the reasons it has none."""
    twice = sorted(path for p in PLANES if len(planes.get(p, [])) > 1 for path in planes[p])
    if twice:
        return None, [Skip(twice[0], f"plane file found twice: {', '.join(twice)}", basename)]
    missing = [p for p in PLANES if p not in planes]
    skips = []
    for plane in missing:
        folder = store.join(root, plane) if per_plane else root
        path = store.join(folder, f"{basename}_plane{plane}.npz")
        skips.append(Skip(path, f"missing plane file ({plane})", basename))
    if skips:
        return None, skips
    return Source(basename, root, {p: planes[p][0] for p in PLANES}), []


def _duplicate(paths: list[str], basename: str, kept: Source) -> list[Skip]:
    reason = f"duplicate basename, already read from {kept.root}"
    return [Skip(path, reason, basename) for path in paths]


def discover(inputs: list[str]) -> tuple[list[Source], list[Skip]]:
    """Complete triplets of plane files by basename, and every file or basename left out.

    The same basename under two inputs would repeat its sample keys; the copy under the
    input that sorts first is kept (npz files before a cluster file in the same input), so the
    result does not depend on the order of ``inputs``.
    """
    sources: dict[str, Source] = {}
    skips: list[Skip] = []
    for root in sorted({storage_for(p).normalize(p) for p in inputs}):
        store = storage_for(root)
        if not store.isdir(root):
            raise FileNotFoundError(f"input directory not found: {root}")
        files = store.files(root)
        per_plane = any(store.isdir(store.join(root, p)) for p in PLANES)
        found, bad = _plane_files(store, root, files, per_plane)
        skips += bad
        for basename, planes in sorted(found.items()):
            if basename in sources:
                paths = [path for plane_paths in planes.values() for path in plane_paths]
                skips += _duplicate(paths, basename, sources[basename])
                continue
            source, problems = _npz_source(store, root, basename, planes, per_plane)
            skips += problems
            if source is not None:
                sources[basename] = source
        for basename, path in sorted(_cluster_files(files).items()):
            if basename in sources:
                skips += _duplicate([path], basename, sources[basename])
            else:
                sources[basename] = Source(basename, root, {}, cluster_file=path)
    return sorted(sources.values(), key=lambda s: s.basename), skips


def dataset_order(basenames: list[str]) -> np.ndarray:
    """The order of basenames in a dataset: by name hash, ties (never seen) by name.

    Chunks are ranges of this order (``chunk_of``), so a dataset is its chunks end to end.
    """
    return np.lexsort((np.asarray(basenames, dtype=str), name_hash(basenames)))


def chunk_of(basenames: list[str], chunks: int) -> np.ndarray:
    """The chunk of each basename: its name hash's share of 0..2⁶⁴, in ``chunks`` equal ranges.

    A function of the name alone, so adding files never moves existing ones, and chunk I holds
    the I-th stretch of the dataset order.
    """
    top = name_hash(basenames) >> np.uint64(32)
    return ((top * np.uint64(chunks)) >> np.uint64(32)).astype(np.int64)


def chunk_listings(inputs: list[str], chunks: int) -> list[str]:
    """Per chunk, a digest of the names of the files it reads (or reports as skipped).

    Adding or removing files changes the digests of the chunks they fall in and no other,
    which is what lets a workflow redo only those chunks.
    """
    sources, skips = discover(inputs)
    paths = [(s.basename, p) for s in sources for p in s.paths]
    paths += [(s.basename, s.path) for s in skips]
    digests = [hashlib.sha256() for _ in range(chunks)]
    names = [name for name, _ in paths]
    for (_, path), chunk in sorted(zip(paths, chunk_of(names, chunks).tolist(), strict=True)):
        digests[chunk].update(path.encode() + b"\n")
    return [d.hexdigest() for d in digests]
