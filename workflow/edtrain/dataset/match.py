"""Three-plane triplets of one basename from its metadata alone (docs/data_format.md §3).

Rows are not aligned across planes; a sample is a main-track X row with match_id ≥ 0 whose
``(event, match_id)`` also occurs in the U and the V file. Matching is a sorted-key lookup over
whole arrays (no per-row Python), and every candidate that is dropped for a data problem, rather
than by a selection cut, is returned with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edtrain.formats import columns as col

DUPLICATE_X = "duplicate key (event, match_id) among main-track X rows"
DUPLICATE_U = "duplicate key (event, match_id) in the U file"
DUPLICATE_V = "duplicate key (event, match_id) in the V file"
NONFINITE_MOMENTUM = "non-finite momentum"
ZERO_MOMENTUM = "zero momentum (no direction)"


@dataclass(frozen=True)
class Cuts:
    """The sample selection; part of the dataset's identity (recorded in the manifest)."""

    es_only: bool = True
    marley_only: bool = True
    energy_min: float | None = None  # MeV, cluster energy (col 10), inclusive
    energy_max: float | None = None  # MeV, exclusive


@dataclass(frozen=True)
class Match:
    """Row indices of each triplet in the three files, and the X rows dropped with reasons."""

    x: np.ndarray
    u: np.ndarray
    v: np.ndarray
    dropped: np.ndarray  # X row indices
    reasons: np.ndarray  # one reason string per dropped row
    counts: dict[str, int] = field(default_factory=dict)


def _keys(meta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows that carry a usable (event, match_id), and that pair packed into one int64."""
    event, match_id = meta[:, col.EVENT], meta[:, col.MATCH_ID]
    valid = np.isfinite(event) & np.isfinite(match_id) & (event >= 0) & (match_id >= 0)
    key = np.full(len(meta), -1, dtype=np.int64)
    key[valid] = (event[valid].astype(np.int64) << 32) | match_id[valid].astype(np.int64)
    return valid, key


def _lookup(meta: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each key in a U/V file (−1 if absent), and whether the key occurs more than once."""
    valid, plane_keys = _keys(meta)
    rows = np.flatnonzero(valid)
    uniq, first, counts = np.unique(plane_keys[rows], return_index=True, return_counts=True)
    if len(uniq) == 0:
        return np.full(len(keys), -1, dtype=np.int64), np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(uniq, keys), len(uniq) - 1)
    found = uniq[pos] == keys
    return np.where(found, rows[first[pos]], -1), found & (counts[pos] > 1)


def _passes_cuts(x: np.ndarray, cuts: Cuts) -> list[tuple[str, np.ndarray]]:
    """Each enabled cut as (count name, mask over X rows), in the order they are applied."""
    energy = x[:, col.CLUSTER_ENERGY]
    steps = []
    if cuts.marley_only:
        steps.append(("marley", x[:, col.IS_MARLEY] == 1))
    if cuts.es_only:
        steps.append(("es", x[:, col.IS_ES] == 1))
    if cuts.energy_min is not None:
        steps.append(("energy_min", energy >= cuts.energy_min))
    if cuts.energy_max is not None:
        steps.append(("energy_max", energy < cuts.energy_max))
    return steps


def match_triplets(
    u: np.ndarray, v: np.ndarray, x: np.ndarray, cuts: Cuts, need_label: bool = True
) -> Match:
    """Match one basename's planes: selection cuts first, then matching and (for training,
    ``need_label``) the checks that the true momentum gives a direction."""
    valid, x_key = _keys(x)
    main = valid & (x[:, col.IS_MAIN_TRACK] == 1)
    counts = {"x_rows": len(x), "main_track": int(main.sum())}
    keep = main.copy()
    for name, mask in _passes_cuts(x, cuts):
        keep &= mask
        counts[f"after_{name}"] = int(keep.sum())
    main_keys, main_counts = np.unique(x_key[main], return_counts=True)
    candidates = np.flatnonzero(keep)
    keys = x_key[candidates]
    duplicate_x = np.isin(keys, main_keys[main_counts > 1])
    iu, ambiguous_u = _lookup(u, keys)
    iv, ambiguous_v = _lookup(v, keys)
    reasons = np.full(len(candidates), "", dtype=object)
    for bad, reason in [
        (ambiguous_v, DUPLICATE_V),
        (ambiguous_u, DUPLICATE_U),
        (duplicate_x, DUPLICATE_X),
    ]:
        reasons[bad] = reason  # the last assignment wins: the problem closest to the sample
    found = (iu >= 0) & (iv >= 0)
    counts["unmatched"] = int(((reasons == "") & ~found).sum())
    norm = np.linalg.norm(x[candidates][:, col.MOM].astype(np.float64), axis=1)
    matched = (reasons == "") & found & need_label
    reasons[matched & ~np.isfinite(norm)] = NONFINITE_MOMENTUM
    reasons[matched & (norm == 0)] = ZERO_MOMENTUM
    ok = (reasons == "") & found
    counts["matched"] = int(ok.sum())
    problem = reasons != ""
    return Match(candidates[ok], iu[ok], iv[ok], candidates[problem], reasons[problem], counts)
