"""Upstream's three-plane matching (online-pointing-utils ``match_clusters``), vectorized.

Only main X clusters are matched. Each plane's accepted clusters are sorted by their first
tick, then event, then cluster_id (the matched file's trees keep this order). For a main X
cluster, upstream binary-searches the U list for its first tick, steps back ten entries and
takes the first U cluster from there on whose time range overlaps the X cluster's within
TIME_TOLERANCE_TICKS and that has the same event and APA; the same for V. Any match gets a
match_id (counting matched X clusters in the sorted order) on all its clusters and match_type 3
(upstream writes 3 for partial matches too); everything else has −1. X rows name their U and V
partners' cluster_id (−1 where missing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from edtrain import detector

if TYPE_CHECKING:
    from edtrain.simulation.clustering import Clusters

TIME_TOLERANCE_TICKS = 10 * detector.TICKS_PER_SAMPLE  # upstream's configs: 10 TPC ticks
SEARCH_BACK = 10  # entries upstream steps back from its binary search
MATCH_TYPE = 3


def time_order(clusters: Clusters, rows: np.ndarray) -> np.ndarray:
    """``rows`` sorted by first tick, event and cluster_id, as upstream sorts before matching."""
    start, _ = clusters.tick_window()
    return rows[np.lexsort((clusters.cluster_id[rows], clusters.event[rows], start[rows]))]


def _search_start(sorted_start: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Upstream's first candidate index: the last midpoint of its binary search for ``start``
    (the lower bound or one before it), minus SEARCH_BACK, at least 0."""
    lo, hi = np.zeros(start.size, np.int64), np.full(start.size, sorted_start.size, np.int64)
    mid = np.zeros(start.size, np.int64)
    while (active := lo < hi).any():
        mid = np.where(active, (lo + hi) // 2, mid)
        below = sorted_start[np.minimum(mid, sorted_start.size - 1)] < start
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)
    return np.maximum(mid - SEARCH_BACK, 0)


def _partners(clusters: Clusters, xs: np.ndarray, plane: int) -> np.ndarray:
    """Per main X cluster (index in ``xs``), the index of its U or V partner, −1 if none."""
    start, end = clusters.tick_window()
    candidates = time_order(clusters, np.flatnonzero(clusters.accepted & (clusters.plane == plane)))
    first = _search_start(start[candidates], start[xs])
    x = pd.DataFrame({"x": np.arange(xs.size), "event": clusters.event[xs], "first": first})
    p = pd.DataFrame({"p": candidates, "pos": np.arange(candidates.size)})
    p["event"] = clusters.event[candidates]
    pairs = x.merge(p, on="event")
    xi, pi = xs[pairs.x.to_numpy()], pairs.p.to_numpy()
    fits = (
        (pairs.pos.to_numpy() >= pairs["first"].to_numpy())
        & (end[pi] + TIME_TOLERANCE_TICKS >= start[xi])
        & (end[xi] + TIME_TOLERANCE_TICKS >= start[pi])
        & (clusters.apa[pi] == clusters.apa[xi])
    )
    best = pairs[fits].sort_values(["x", "pos"]).drop_duplicates("x")
    out = np.full(xs.size, -1, dtype=np.int64)
    out[best.x.to_numpy()] = best.p.to_numpy()
    return out


def match_clusters(clusters: Clusters) -> None:
    """Fill match_id, match_type and the X rows' partner ids, as upstream's matcher does."""
    x_plane = detector.PLANES.index("X")
    main_x = clusters.accepted & clusters.is_main & (clusters.plane == x_plane)
    xs = time_order(clusters, np.flatnonzero(main_x))
    u, v = _partners(clusters, xs, 0), _partners(clusters, xs, 1)
    matched = (u >= 0) | (v >= 0)
    xs, u, v = xs[matched], u[matched], v[matched]
    match_id = np.arange(xs.size)
    for rows, ids in ((xs, match_id), (u[u >= 0], match_id[u >= 0]), (v[v >= 0], match_id[v >= 0])):
        clusters.match_id[rows] = ids
        clusters.match_type[rows] = MATCH_TYPE
    clusters.matching_u[xs] = np.where(u >= 0, clusters.cluster_id[np.maximum(u, 0)], -1)
    clusters.matching_v[xs] = np.where(v >= 0, clusters.cluster_id[np.maximum(v, 0)], -1)
