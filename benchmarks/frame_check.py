"""Which way U/V/X channels turn on each drift face, measured on real DUNE clusters with truth.

edtrain's ``face`` label frame (edtrain.frame) rests on one geometric claim of
``detector.plane_channel``: induction wires wrap around the APA, so on the x > 0 face the
unrolled wire frame is mirrored in z (U: w = (W − z)·cos α − y·sin α, V with +y, X: w = z on
both faces); after the ``consistent`` channel flip the y-component then enters U/V columns with
the opposite sign on the two faces. This script tests that claim, and the alternative "no
mirroring" (w = z·cos α ∓ y·sin α on both faces), on a real file:

A. direction test (the file's true momenta): per cluster, the sign of the charge-weighted
   least-squares slope of channel on drift time against the sign predicted from the true
   momentum, d(channel)/d(time) ∝ (dw/ds)/(dt/ds) with dt/ds = side·p̂_x.
B. position test (TP streams only: each TP's back-tracked deposit position): per cluster the sign
   of the correlation of the channel with w(y, z) of each hypothesis, and the pooled slopes
   d(channel)/dy, d(channel)/dz and d(time)/dx per (plane, face, APA parity), which measure the
   wire angles directly.

Input: a TP stream with truth (``triggerAnaDumpTPs``, e.g. upstream's ES sample), clustered with
the production's clustering as in calibrate_realism.py, or a cluster file (``*_bg_matched.root``,
test A only).

    python benchmarks/frame_check.py REAL_FILE.root [--out benchmarks/results/frame.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import uproot

from edtrain import detector
from edtrain.formats.root import read_planes, tree_path
from edtrain.render import drift_sides

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_realism import ELECTRON_TRACK_IDS, TP_TREE, TRUTH_TREE, real_clusters

PRIMARY_TRACK_ID = ELECTRON_TRACK_IDS[0]  # the ES electron itself (−2: its shower descendants)
MISSING = -99999.0  # the dump's value for TPs without back-tracked truth
MIN_TPS = 3  # a slope needs at least three TPs
MIN_T_STAT = 2.0  # test A: |slope| / standard error for a "clear" slope
MIN_COSINE = 0.3  # test A: |p̂_x| or |dw/ds| below this leaves the predicted sign to scattering
MAX_RSS_RATIO = 0.5  # test B: best map's mean squared residual ≤ this × the runner-up's
COS_A, SIN_A = (
    np.cos(np.radians(detector.WIRE_ANGLE_DEG)),
    np.sin(np.radians(detector.WIRE_ANGLE_DEG)),
)
HYPOTHESES = ("mirrored", "unmirrored")


@dataclass
class Sample:
    """Clusters (one row each) and their TPs (delimited by ``offsets``) with what is known."""

    plane: np.ndarray  # 0 U, 1 V, 2 X
    apa: np.ndarray
    side: np.ndarray  # drift face, ±1
    direction: np.ndarray  # (n, 3) unit true momentum, NaN where unknown
    offsets: np.ndarray
    channel: np.ndarray  # within the APA
    time: np.ndarray  # ADC samples
    charge: np.ndarray  # adc_integral, the fit weight
    position: np.ndarray  # (n_tps, 3) back-tracked deposit [cm], NaN where unknown
    kind: str
    notes: list[str]

    @property
    def cluster_of_tp(self) -> np.ndarray:
        return np.repeat(np.arange(self.plane.size), np.diff(self.offsets))


def _is_cluster_file(path: str) -> bool:
    with uproot.open(path) as file:
        return tree_path("X") in file


def load_tp_stream(path: str) -> Sample:
    """Cluster the TP stream as calibrate_realism does, keep the truth-matched clusters and give
    each TP its back-tracked position (joined on the TP's identity, which clustering reorders).

    Main clusters whose TPs come mostly from the primary electron get its true momentum
    (status-1 e⁻ of ``mctruths``); others (shower descendants) have no known direction.
    The face of X clusters is the channel rule (< 2080 ⇒ −1); U/V clusters take the sign of the
    charge-weighted true x of their TPs, and the X rule is checked against that truth.
    """
    clusters, _ = real_clusters(path)
    with uproot.open(path) as file:
        raw = pd.DataFrame(file[TP_TREE].arrays(library="np"))
        truth = file[TRUTH_TREE].arrays(
            ["Event", "pdg", "status_code", "px", "py", "pz"], library="np"
        )
    events = np.unique(raw["Event"])
    raw["event"] = np.searchsorted(events, raw["Event"])
    raw["time"] = raw["time_start"] // detector.TICKS_PER_SAMPLE
    key = ["event", "channel", "time", "samples_over_threshold", "adc_integral"]
    raw = raw.drop_duplicates(key, keep=False)
    tps = clusters.tps
    mine = pd.DataFrame(
        {
            "event": tps.event,
            "channel": tps.apa * detector.CHANNELS_PER_APA + tps.channel,
            "time": tps.time_start,
            "samples_over_threshold": tps.sot,
            "adc_integral": tps.adc_integral,
        }
    )
    cols = ["bt_x", "bt_y", "bt_z", "bt_primary_track_id"]
    joined = mine.astype("int64").merge(raw[key + cols].astype({k: "int64" for k in key}), "left")
    position = joined[["bt_x", "bt_y", "bt_z"]].to_numpy(dtype=np.float64)
    position[(position == MISSING).any(axis=1)] = np.nan
    primary = (joined.bt_primary_track_id == PRIMARY_TRACK_ID).to_numpy()

    label = np.repeat(np.arange(clusters.size), np.diff(clusters.offsets))
    known = ~np.isnan(position[:, 0])
    w = np.where(known, tps.adc_integral, 0.0)
    mean_x = np.bincount(label, w * np.nan_to_num(position[:, 0]), clusters.size) / np.maximum(
        np.bincount(label, w, clusters.size), 1e-9
    )
    has_truth = np.bincount(label, known, clusters.size) > 0
    first = clusters.offsets[:-1]
    x_rule = detector.x_side_of_collection_channel(tps.channel[first])
    true_side = np.where(mean_x < 0, -1, 1)
    side = np.where(clusters.plane == 2, x_rule, true_side)

    final = (truth["status_code"] == 1) & (truth["pdg"] == 11)
    momentum = np.full((events.size, 3), np.nan)
    which = np.searchsorted(events, truth["Event"][final])
    momentum[which] = np.stack([truth[k][final] for k in ("px", "py", "pz")], axis=1)
    primary_fraction = np.bincount(label, primary, clusters.size) / np.diff(clusters.offsets)
    with_direction = clusters.is_main & (primary_fraction > 0.5)
    direction = np.where(with_direction[:, None], momentum[clusters.event], np.nan)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)

    keep = has_truth
    x_keep = keep & (clusters.plane == 2)
    parity = clusters.apa % 2
    rule_lines = []
    for p in (0, 1):
        sel = x_keep & (parity == p)
        agree = int((x_rule[sel] == true_side[sel]).sum())
        rule_lines.append(f"{'even' if p == 0 else 'odd'} APAs {agree}/{int(sel.sum())}")
    notes = [
        f"{events.size} events, {clusters.size} clusters, {int(keep.sum())} with back-tracked "
        f"TPs (U/V/X {'/'.join(str(int((keep & (clusters.plane == p)).sum())) for p in range(3))})"
        f"; {int((with_direction & keep).sum())} main clusters led by the primary electron carry "
        "its true momentum",
        "face: X clusters by the channel rule (< 2080 ⇒ x < 0); U/V clusters by the sign of "
        "their TPs' charge-weighted true x. Channel rule = true x sign for X clusters: "
        + ", ".join(rule_lines),
    ]
    return _subset(
        Sample(
            plane=clusters.plane,
            apa=clusters.apa,
            side=side,
            direction=direction,
            offsets=clusters.offsets,
            channel=tps.channel,
            time=tps.time_start.astype(np.float64),
            charge=tps.adc_integral.astype(np.float64),
            position=position,
            kind="TP stream with truth, clustered with edtrain.simulation.clustering",
            notes=notes,
        ),
        keep,
    )


def load_cluster_file(path: str) -> Sample:
    """A ``*_bg_matched.root`` file: main clusters, and MARLEY clusters with a momentum, carry
    ``true_mom``; X faces by the channel rule, U/V by the matched X cluster (``drift_sides``)
    or, unmatched, by the sign of ``true_pos_x``. No per-TP positions: test A only."""
    trees = read_planes(path)
    sides = drift_sides(trees, "consistent")
    parts = []
    for p, plane in enumerate(detector.PLANES):
        d = trees[plane]
        mom = np.stack([d["true_mom_x"], d["true_mom_y"], d["true_mom_z"]], 1).astype(float)
        norm = np.linalg.norm(mom, axis=1, keepdims=True)
        known = (d["is_main_cluster"] | (d["marley_tp_fraction"] > 0.5)) & (norm[:, 0] > 0)
        side = sides[plane]
        if plane != "X":
            side = np.where(d["match_id"] >= 0, side, np.where(d["true_pos_x"] < 0, -1, 1))
        offsets = d["tp_offsets"]
        parts.append(
            {
                "plane": np.full(offsets.size - 1, p),
                "apa": d["tp_detector"][offsets[:-1]],
                "side": side,
                "direction": np.where(known[:, None], mom / np.maximum(norm, 1e-12), np.nan),
                "counts": np.diff(offsets),
                "channel": d["tp_detector_channel"],
                "time": d["tp_time_start"] / detector.TICKS_PER_SAMPLE,
                "charge": d["tp_adc_integral"].astype(np.float64),
            }
        )
    cat = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    n_dir = int((~np.isnan(cat["direction"][:, 0])).sum())
    return Sample(
        plane=cat["plane"],
        apa=cat["apa"],
        side=cat["side"],
        direction=cat["direction"],
        offsets=np.r_[0, np.cumsum(cat["counts"])].astype(np.int64),
        channel=cat["channel"],
        time=cat["time"],
        charge=cat["charge"],
        position=np.full((cat["channel"].size, 3), np.nan),
        kind="cluster file (true_mom per cluster)",
        notes=[
            f"{cat['plane'].size} clusters, {n_dir} main or MARLEY clusters with a true momentum",
            "face: X clusters by the channel rule; U/V by the matched X cluster, unmatched by "
            "the sign of true_pos_x",
        ],
    )


def _subset(s: Sample, keep: np.ndarray) -> Sample:
    """The clusters ``keep`` selects, TPs and all."""
    counts = np.diff(s.offsets)
    tp_keep = np.repeat(keep, counts)
    return Sample(
        plane=s.plane[keep],
        apa=s.apa[keep],
        side=s.side[keep],
        direction=s.direction[keep],
        offsets=np.r_[0, np.cumsum(counts[keep])].astype(np.int64),
        channel=s.channel[tp_keep],
        time=s.time[tp_keep],
        charge=s.charge[tp_keep],
        position=s.position[tp_keep],
        kind=s.kind,
        notes=s.notes,
    )


def unwrapped_channel(s: Sample) -> np.ndarray:
    """Channel relative to the cluster's first TP; induction planes wrap every 800 channels,
    so the difference is taken modulo 800 into [−400, 400)."""
    label = s.cluster_of_tp
    rel = (s.channel - s.channel[s.offsets[:-1]][label]).astype(np.float64)
    wraps = s.plane[label] < 2
    half = detector.INDUCTION_WIRES // 2
    rel[wraps] = (rel[wraps] + half) % detector.INDUCTION_WIRES - half
    return rel


def weighted_fit(
    label: np.ndarray, n: int, w: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: slope of y on x (weighted least squares), its t statistic and the weighted
    correlation. Weights are normalized to mean 1 in each group so the residual variance has
    n − 2 degrees of freedom; groups without spread in x get NaN."""
    count = np.bincount(label, minlength=n).astype(np.float64)
    wsum = np.bincount(label, w, n)
    w = w * (count / np.maximum(wsum, 1e-12))[label]
    mx = np.bincount(label, w * x, n) / np.maximum(count, 1)
    my = np.bincount(label, w * y, n) / np.maximum(count, 1)
    dx, dy = x - mx[label], y - my[label]
    sxx = np.bincount(label, w * dx * dx, n)
    syy = np.bincount(label, w * dy * dy, n)
    sxy = np.bincount(label, w * dx * dy, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(sxx > 1e-9, sxy / sxx, np.nan)
        resid = np.bincount(label, w * (dy - slope[label] * dx) ** 2, n)
        se = np.sqrt(resid / np.maximum(count - 2, 1) / sxx)
        t = np.where(se > 0, slope / se, np.inf * np.sign(slope))
        r = sxy / np.sqrt(sxx * syy)
    return slope, t, r


def wire_coordinate(plane: np.ndarray, side: np.ndarray, y, z, mirrored: bool) -> np.ndarray:
    """Wire-normal coordinate of plane_channel's formula without the offsets (they cancel in
    slopes): X w = z; U/V w = ±z·cos α ∓ y·sin α, z mirrored on the x > 0 face if ``mirrored``."""
    z_sign = np.where(mirrored & (side == 1), -1.0, 1.0)
    y_sign = np.where(plane == 0, -1.0, 1.0)
    induction = z_sign * z * COS_A + y_sign * y * SIN_A
    return np.where(plane == 2, z, induction)


def direction_test(s: Sample) -> pd.DataFrame:
    """Test A per cluster: clear slope of channel on time, and whether its sign agrees with each
    hypothesis' prediction from the true momentum."""
    label, n = s.cluster_of_tp, s.plane.size
    slope, t, _ = weighted_fit(label, n, s.charge, s.time, unwrapped_channel(s))
    n_tps = np.diff(s.offsets)
    d = s.direction
    dt_ds = s.side * d[:, 0]
    clear = (n_tps >= MIN_TPS) & (np.abs(t) >= MIN_T_STAT) & (np.abs(d[:, 0]) >= MIN_COSINE)
    out = _groups(s).assign(test="A")
    for h in HYPOTHESES:
        dw_ds = wire_coordinate(s.plane, s.side, d[:, 1], d[:, 2], h == "mirrored")
        out[h] = np.sign(slope) == np.sign(dw_ds * dt_ds)
        clear &= np.abs(dw_ds) >= MIN_COSINE
    out["clear"] = clear
    return out


def channel_map(plane: np.ndarray, side: np.ndarray, mirrored: bool) -> tuple[np.ndarray, ...]:
    """(direction, handedness) of each hypothesis' map, channel = d·(z·cos α + h·y·sin α)/pitch:
    edtrain's U is z·cos α − y·sin α (d = +1, h = −1) on the x < 0 face and, mirrored,
    −(z·cos α + y·sin α) on the x > 0 face; V has the other handedness; X is d = +1."""
    far = (side == 1) & mirrored
    d = np.where(far & (plane < 2), -1, 1)
    h = np.where(plane == 0, -1, 1) * d
    return d, np.where(plane == 2, 0, h)


def position_test(s: Sample) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test B: per cluster, which of the four maps channel = d·(z·cos α + h·y·sin α)/pitch
    (d, h = ±1; X: d·z/pitch) fits the TPs' channels from their true positions best, the pitch
    being known and only an offset free; pooled (cluster-centred) slopes per group."""
    known = ~np.isnan(s.position[:, 0])
    n = s.plane.size
    lab = s.cluster_of_tp[known]
    ch = unwrapped_channel(s)[known]
    w = s.charge[known]
    y, z = s.position[known, 1], s.position[known, 2]
    plane = s.plane[lab]
    pitch = np.where(plane == 2, detector.PITCH_CM["X"], detector.PITCH_CM["U"])
    wsum = np.bincount(lab, w, n).clip(1e-9)
    combos = [(d, h) for d in (1, -1) for h in (1, -1)]
    rss = np.empty((len(combos), n))
    for k, (d, h) in enumerate(combos):
        wire = np.where(plane == 2, z, z * COS_A + h * y * SIN_A) / pitch
        resid = ch - d * wire
        resid -= (np.bincount(lab, w * resid, n) / wsum)[lab]
        rss[k] = np.bincount(lab, w * resid**2, n) / wsum
    is_x = s.plane == 2
    rss[:, is_x] = np.minimum(rss[:, is_x], rss[[1, 0, 3, 2]][:, is_x])  # X: h is moot
    order = np.argsort(rss, axis=0)
    best = order[0]
    runner = np.where(is_x, order[2], order[1])  # X: the two h of one d tie
    ratio = rss[best, np.arange(n)] / np.maximum(rss[runner, np.arange(n)], 1e-9)
    n_known = np.bincount(lab, minlength=n)
    distinct = pd.Series(ch).groupby(lab).nunique().reindex(range(n), fill_value=0).to_numpy()
    found_d = np.array([c[0] for c in combos])[best]
    found_h = np.where(is_x, 0, np.array([c[1] for c in combos])[best])
    out = _groups(s).assign(test="B", d=found_d, h=found_h)
    out["clear"] = (n_known >= MIN_TPS) & (distinct >= 2) & (ratio <= MAX_RSS_RATIO)
    for hyp in HYPOTHESES:
        d, h = channel_map(s.plane, s.side, hyp == "mirrored")
        out[hyp] = (found_d == d) & (found_h == h)

    # Pooled slopes: centre every variable per cluster, then one least-squares fit per group.
    def centred(v: np.ndarray) -> np.ndarray:
        return v - (np.bincount(lab, w * v, n) / wsum)[lab]

    frame = pd.DataFrame(
        {
            "ch": centred(ch),
            "y": centred(y),
            "z": centred(z),
            "x": centred(s.position[known, 0]),
            "t": centred(s.time[known]),
            "w": w,
            "cluster": lab,
        }
    ).join(_groups(s).iloc[lab].reset_index(drop=True))
    frame = frame[(n_known >= MIN_TPS)[lab]]
    rows = []
    for (p, side, parity), g in frame.groupby(["plane", "face", "parity"]):
        sw = np.sqrt(g.w.to_numpy())
        a = np.stack([g.y, g.z], 1) * sw[:, None]
        (dy, dz), *_ = np.linalg.lstsq(a, g.ch.to_numpy() * sw, rcond=None)
        dtdx = np.sum(g.w * g.x * g.t) / np.sum(g.w * g.x * g.x)
        rows.append(
            {"plane": p, "face": side, "parity": parity, "clusters": g.cluster.nunique()}
            | {"tps": len(g), "dch/dy": dy, "dch/dz": dz, "dt/dx": dtdx}
        )
    return out, pd.DataFrame(rows)


def face_claim(per_cluster: pd.DataFrame, pooled: pd.DataFrame) -> str:
    """Markdown: per induction plane and APA parity, is z aligned across the faces and y
    opposite after the ``consistent`` channel flip of the x > 0 face (the face frame's claim)?
    With channel = d·(z·cos α + h·y·sin α)/pitch per face that means d and h both change sign
    between the faces. From test B's clear clusters (majority map per face) and from the pooled
    slopes (flipped on x > 0: dc = −dch there)."""
    lines = [
        "| plane | APA parity | maps x<0 → x>0 (clear clusters) | pooled dc/dz x<0 → x>0 | "
        "pooled dc/dy x<0 → x>0 | z aligned, y opposite |",
        "|---|---|---|---|---|---|",
    ]
    b = per_cluster[(per_cluster.test == "B") & per_cluster.clear & (per_cluster.plane != "X")]
    for plane in ("U", "V"):
        for parity in ("even", "odd"):
            g = b[(b.plane == plane) & (b.parity == parity)]
            maps, slopes, verdict = [], ["", ""], "no data"
            majority = {}
            for near, face in ((True, "−1 (x<0)"), (False, "+1 (x>0)")):
                f = g[g.face == face]
                maps.append(_found(f) or "none")
                counts = f.groupby(["d", "h"]).size().sort_values()
                if len(counts) == 1 or (len(counts) > 1 and counts.iloc[-1] > counts.iloc[-2]):
                    majority[near] = counts.index[-1]
                elif len(counts):
                    verdict = "tie"
            if len(majority) == 2:
                (d1, h1), (d2, h2) = majority[True], majority[False]
                verdict = "yes" if d1 == -d2 and h1 == -h2 else "NO"
            rows = pooled[(pooled.plane == plane) & (pooled.parity == parity)]
            if len(rows) == 2:
                near = rows[rows.face.str.startswith("−")].iloc[0]
                far = rows[rows.face.str.startswith("+")].iloc[0]
                slopes = [
                    f"{near['dch/dz']:+.2f} → {-far['dch/dz']:+.2f}",
                    f"{near['dch/dy']:+.2f} → {-far['dch/dy']:+.2f}",
                ]
            lines.append(
                f"| {plane} | {parity} | {maps[0]} → {maps[1]} | {slopes[0]} | {slopes[1]} | "
                f"{verdict} |"
            )
    return "\n".join(lines)


def _groups(s: Sample) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "plane": np.array(detector.PLANES)[s.plane],
            "face": np.where(s.side < 0, "−1 (x<0)", "+1 (x>0)"),
            "parity": np.where(s.apa % 2 == 0, "even", "odd"),
        }
    )


def agreement_table(per_cluster: pd.DataFrame) -> str:
    """Markdown: clear clusters and the fraction agreeing with each hypothesis per group."""
    clear = per_cluster[per_cluster.clear]
    lines = [
        "| test | plane | face | APA parity | clusters | clear | agree mirrored | "
        "agree unmirrored | best map (B) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ["test", "plane", "face", "parity"]
    for key, g in per_cluster.groupby(keys):
        c = clear.set_index(keys).loc[[key]] if key in set(clear.set_index(keys).index) else None
        n_clear = 0 if c is None else len(c)
        frac = {
            h: "–" if not n_clear else f"{c[h].mean():.0%} ({int(c[h].sum())}/{n_clear})"
            for h in HYPOTHESES
        }
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {len(g)} | {n_clear} | "
            f"{frac['mirrored']} | {frac['unmirrored']} | {_found(c)} |"
        )
    return "\n".join(lines)


def _found(clear: pd.DataFrame | None) -> str:
    """Test B's best maps among clear clusters, e.g. "d−h+ ×3" (X: d only)."""
    if clear is None or "d" not in clear or clear.d.isna().all():
        return ""
    sign = {1: "+", -1: "−", 0: ""}
    names = [
        f"d{sign[int(d)]}" + (f"h{sign[int(h)]}" if h else "")
        for d, h in zip(clear.d, clear.h, strict=True)
    ]
    return ", ".join(f"{k} ×{v}" for k, v in pd.Series(names).value_counts().items())


def slope_table(pooled: pd.DataFrame) -> str:
    """Markdown: pooled d(channel)/dy, d(channel)/dz [channels/cm] and d(time)/dx
    [samples/cm] with what each hypothesis predicts for them."""
    lines = [
        "| plane | face | APA parity | clusters | TPs | dch/dy | dch/dz | dt/dx | "
        "predicted dch/dy | predicted dch/dz (mirrored / unmirrored) | predicted dt/dx |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in pooled.to_dict("records"):
        plane, far = row["plane"], row["face"].startswith("+")
        pitch = detector.PITCH_CM[plane]
        if plane == "X":
            pred_y, pred_z = 0.0, (1 / pitch, 1 / pitch)
        else:
            pred_y = (-SIN_A if plane == "U" else SIN_A) / pitch
            pred_z = ((-COS_A if far else COS_A) / pitch, COS_A / pitch)
        pred_t = (1 if far else -1) / detector.CM_PER_SAMPLE
        lines.append(
            f"| {plane} | {row['face']} | {row['parity']} | {row['clusters']} | {row['tps']} | "
            f"{row['dch/dy']:+.2f} | {row['dch/dz']:+.2f} | {row['dt/dx']:+.1f} | {pred_y:+.2f} | "
            f"{pred_z[0]:+.2f} / {pred_z[1]:+.2f} | {pred_t:+.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", help="DUNE TP-stream (with truth) or cluster ROOT file")
    parser.add_argument("--out", default="benchmarks/results/frame.md", help="markdown report")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.real):
        parser.error(
            f"{args.real}: no such file; expected a DUNE TP-stream or cluster ROOT file with "
            "truth, such as upstream's ES sample (triggerAnaDumpTPs TP dump or *_bg_matched.root)"
        )
    sample = (
        load_cluster_file(args.real) if _is_cluster_file(args.real) else load_tp_stream(args.real)
    )
    per_cluster = [direction_test(sample)]
    pooled = pd.DataFrame()
    if not np.isnan(sample.position[:, 0]).all():
        b, pooled = position_test(sample)
        per_cluster.append(b)
    clusters = pd.concat(per_cluster, ignore_index=True)
    table = agreement_table(clusters)
    slopes = slope_table(pooled) + "\n\n" + face_claim(clusters, pooled) if len(pooled) else ""
    print(table + ("\n\n" + slopes if slopes else ""))
    print("\n".join(f"- {n}" for n in sample.notes))

    # The input is named generically: the report must not depend on where the file lives.
    rest = [] if argv is not None else [a for a in sys.argv[1:] if a != args.real]
    command = shlex.join(["python", "benchmarks/frame_check.py", "REAL_FILE.root", *rest])
    report = [
        "# Which way the channels turn on each face (real data)",
        "",
        f"`{command}` — {datetime.date.today().isoformat()}, {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPU cores; input: {sample.kind}.",
        "",
        *[f"- {n}" for n in sample.notes],
        "",
        table,
    ]
    if slopes:
        report += ["", slopes]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
