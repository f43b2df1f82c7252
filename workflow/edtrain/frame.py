"""The label frame a network is trained in (docs/training.md, "The label frame").

``detector``: the true direction in the detector frame, as the predecessor trained (v7–v14).
``face``: the same direction with its y-component multiplied by the cluster's drift side
(−1: x < 0, +1: x > 0). The induction wires wrap around the APA, so after the image flips the
x > 0 face shows every event as its x < 0 twin mirrored in y: U and V columns run along the
wire-normal coordinate of their face, and that coordinate turns the other way in y. Nothing in
the three images says which face the charge drifted to, so in the detector frame the sign of
the label's y-component cannot be learned; in the face frame every image corresponds to one
label. The map is its own inverse, so predictions go back to the detector frame with the same
call and the same drift sides, exactly.
"""

from __future__ import annotations

import numpy as np

FRAMES: tuple[str, ...] = ("detector", "face")


def reflect(vectors: np.ndarray, drift_side: np.ndarray, frame: str) -> np.ndarray:
    """Directions (n, 3) from the detector frame into ``frame``, or back: the map is an
    involution. ``drift_side`` holds ±1 per row. A new float32 array."""
    if frame not in FRAMES:
        raise ValueError(f"unknown label frame {frame!r}: expected one of {FRAMES}")
    out = np.array(vectors, dtype=np.float32)
    if frame == "face":
        side = np.asarray(drift_side)
        if side.shape != out.shape[:1] or not np.isin(side, (-1, 1)).all():
            raise ValueError(f"drift sides must be ±1, one per direction ({len(out)})")
        out[:, 1] *= side
    return out
