"""The sample table: computed per chunk with numpy, written as parquet by ``assemble``.

A chunk stores its table as an uncompressed ``.npz`` of columns, with the strings once per
basename (``basenames``, ``sources``, ``counts``): chunk jobs then import neither pyarrow nor
pandas, whose imports (~0.3 s) cost more than reading a small chunk.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence

import numpy as np

from edtrain.formats import columns as col
from edtrain.metrics import unit
from edtrain.splits import hashed_key, name_hash

WIDTH = len(col.NAMES_18)
PER_BASENAME = ("basenames", "sources", "counts")  # name, source file, number of rows
NUMERIC: tuple[str, ...] = (
    "event",
    "match_id",
    "key_hash",
    "label_x",
    "label_y",
    "label_z",
    "energy_mev",
    "particle_energy_mev",
    "nu_energy_mev",
    "nu_dir_x",
    "nu_dir_y",
    "nu_dir_z",
    "is_es",
    "drift_side",
)
COLUMNS: tuple[str, ...] = (  # the dataset's samples.parquet
    "basename",
    "event",
    "match_id",
    "key_hash",
    "split",
    "rank",
    *NUMERIC[3:],
    "source",
)


def padded(metadata: np.ndarray) -> np.ndarray:
    """Metadata rows as float32 with the 18 current columns; NaN where the file has fewer
    (nov11's 14: no neutrino truth)."""
    out = np.full((len(metadata), WIDTH), np.nan, dtype=np.float32)
    out[:, : min(metadata.shape[1], WIDTH)] = metadata[:, :WIDTH]
    return out


def sample_columns(
    basenames: Sequence[str], counts: np.ndarray, metadata: np.ndarray, drift_side: np.ndarray
) -> dict[str, np.ndarray]:
    """The numeric columns of samples whose X metadata rows (``padded``) are ``metadata`` and
    whose clusters drifted to ``drift_side`` (±1): ``counts[i]`` rows of basename
    ``basenames[i]``, one after another.

    Split and rank are added at assembly, when the whole pool is known.
    """
    x = metadata
    event = x[:, col.EVENT].astype(np.int64)
    match_id = x[:, col.MATCH_ID].astype(np.int64)
    names = np.repeat(name_hash(basenames), counts)
    label = unit(x[:, col.MOM], zero=np.nan).astype(np.float32)
    nu_dir = unit(x[:, col.NU_MOM], zero=np.nan).astype(np.float32)
    return {
        "event": event,
        "match_id": match_id,
        "key_hash": hashed_key(names, event, match_id),
        "label_x": label[:, 0],
        "label_y": label[:, 1],
        "label_z": label[:, 2],
        "energy_mev": x[:, col.CLUSTER_ENERGY],
        "particle_energy_mev": x[:, col.PARTICLE_ENERGY],
        "nu_energy_mev": x[:, col.NU_ENERGY],
        "nu_dir_x": nu_dir[:, 0],
        "nu_dir_y": nu_dir[:, 1],
        "nu_dir_z": nu_dir[:, 2],
        "is_es": x[:, col.IS_ES] == 1,
        "drift_side": np.asarray(drift_side, dtype=np.int8),
    }


def write_chunk_table(
    path: str, basenames: list[tuple[str, str, int, np.ndarray, np.ndarray]]
) -> int:
    """Write a chunk's table from its basenames in dataset order, each as (name, source
    file, number of samples, their ``padded`` X metadata, their drift sides). Returns the
    number of rows."""
    names = [b[0] for b in basenames]
    counts = np.array([b[2] for b in basenames], dtype=np.int64)
    metadata = np.concatenate([np.empty((0, WIDTH), np.float32), *(b[3] for b in basenames)])
    sides = np.concatenate([np.empty(0, np.int8), *(b[4] for b in basenames)])
    with open(path, "wb") as f:  # a file object: np.savez would append .npz to the name
        np.savez(
            f,
            basenames=np.array(names, dtype=str),
            sources=np.array([b[1] for b in basenames], dtype=str),
            counts=counts,
            **sample_columns(names, counts, metadata, sides),
        )
    return len(metadata)


def read_chunk_table(path: str) -> dict[str, np.ndarray]:
    """A chunk's table as written by ``write_chunk_table``; ValueError if it is not one."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            table = {name: npz[name] for name in (*PER_BASENAME, *NUMERIC)}
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a chunk table ({err})") from None
    rows = {len(table[name]) for name in NUMERIC}
    if len(rows) != 1 or rows != {int(table["counts"].sum())}:
        raise ValueError(f"{path}: columns of different lengths")
    return table
