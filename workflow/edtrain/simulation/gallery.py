"""The ``edtrain gallery`` command: what the network sees, for a few simulated events.

One row per event with its U, V and X main-cluster images side by side, each with the true
electron direction projected onto that plane's image axes (rows = drift samples, columns = wire
channels; the column axis is squeezed to channels with signal, so the arrow is indicative).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from edtrain import detector
from edtrain.formats import columns
from edtrain.render import orientation_flips
from edtrain.simulation.simulate import (
    PLANE_IMAGES_DIR,
    PRODUCTION_DIR,
    SUMMARY,
    TRUTH_DIR,
)

log = logging.getLogger(__name__)


def projected_arrow(
    direction: np.ndarray, plane: str, side: int, apa: int, convention: str
) -> np.ndarray:
    """(Δcolumn, Δrow) in pixels per cm of a 3-D direction on a plane's image, after the flips.

    Unflipped, rows grow with the drift distance |x| and columns with the face's wire coordinate
    (induction wires are mirrored on the x > 0 face, see edtrain.detector.plane_channel).
    """
    d_row = np.sign(side) * direction[0] / detector.CM_PER_SAMPLE
    angle = np.radians(detector.WIRE_ANGLE_DEG)
    z_sign = -1.0 if (plane != "X" and side > 0) else 1.0
    if plane == "X":
        d_col = direction[2]
    else:
        y_sign = -1.0 if plane == "U" else 1.0
        d_col = z_sign * direction[2] * np.cos(angle) + y_sign * direction[1] * np.sin(angle)
    d_col /= detector.PITCH_CM[plane]
    x_sign = side if convention == "consistent" or apa % 2 == 0 else -side
    flip_time, flip_channel = orientation_flips(
        plane, np.array([x_sign]), np.array([apa]), convention
    )
    return np.array([-d_col if flip_channel[0] else d_col, -d_row if flip_time[0] else d_row])


def _main_rows(base: Path, name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per plane: images and metadata of one file's per-plane npz."""
    out = {}
    for plane in detector.PLANES:
        path = base / PLANE_IMAGES_DIR / plane / f"{name}_bg_matched_plane{plane}.npz"
        with np.load(path) as data:
            out[plane] = (data["images"], data["metadata"])
    return out


def draw_gallery(production: Path, out: Path, n_events: int) -> int:
    """Draw up to ``n_events`` events with a main three-plane match; returns how many were drawn."""
    summary_path = production / SUMMARY
    if not summary_path.exists():
        raise FileNotFoundError(f"{summary_path}: not a finished production (no {SUMMARY})")
    summary = json.loads(summary_path.read_text())
    base = production / PRODUCTION_DIR
    convention = summary["flip_convention"]
    panels = []
    for name in summary["basenames"]:
        truth = pd.read_parquet(base / TRUTH_DIR / f"{name}_truth.parquet")
        truth = truth[truth.has_main_triplet]
        if truth.empty:
            continue
        planes = _main_rows(base, name)
        for row in truth.itertuples():
            images = {}
            for plane, (imgs, meta) in planes.items():
                hit = (meta[:, columns.EVENT] == row.event) & (
                    meta[:, columns.MATCH_ID] == row.main_match_id
                )
                images[plane] = imgs[np.flatnonzero(hit)[0]]
            panels.append((row, images))
            if len(panels) == n_events:
                break
        if len(panels) == n_events:
            break
    if not panels:
        raise ValueError(f"{production}: no event with a main three-plane match to draw")
    fig = Figure(figsize=(9.0, 4.2 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 3, squeeze=False)
    for (row, images), axes_row in zip(panels, axes, strict=True):
        direction = np.array([row.electron_dir_x, row.electron_dir_y, row.electron_dir_z])
        for ax, plane in zip(axes_row, detector.PLANES, strict=True):
            image = ax.imshow(images[plane], aspect="auto", origin="upper", cmap="viridis")
            bar = fig.colorbar(image, ax=ax, fraction=0.08, pad=0.02)
            bar.set_label("ADC", fontsize=7)
            bar.ax.tick_params(labelsize=6)
            arrow = projected_arrow(direction, plane, row.drift_side, row.apa, convention)
            scale = 12.0 / max(np.hypot(*arrow), 1e-9)
            ax.annotate(
                "",
                xy=(16 + arrow[0] * scale, 64 + arrow[1] * scale),
                xytext=(16, 64),
                arrowprops={"arrowstyle": "->", "color": "red", "lw": 1.5},
            )
            ax.set_title(f"{plane}  ev {row.event}  T={row.electron_ke_mev:.1f} MeV", fontsize=8)
            ax.set_xlabel("channel (squeezed)", fontsize=7)
            ax.set_ylabel(f"time [samples of {detector.SAMPLE_US} µs]", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.suptitle(
        f"Main-cluster images as the network sees them (colour: pixel charge in ADC, each"
        f" panel its own scale)\ntrue electron direction projected (red); flip convention:"
        f" {convention}",
        fontsize=9,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return len(panels)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--production", required=True, type=Path, help="simulate's --out")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--events", type=int, default=6, help="events to draw (default: 6)")


def main(args: argparse.Namespace) -> int:
    drawn = draw_gallery(args.production, args.out, args.events)
    log.info("drew %d events to %s", drawn, args.out)
    return 0
