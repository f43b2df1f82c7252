"""DUNE FD horizontal-drift 1x2x2 constants and the channel map (docs/data_format.md §6,
docs/physics.md §2).

One place for the geometry so the simulation, the renderer's flip rules and the readers agree.
Layout: the APA plane sits at x = 0 and drifts both ways (x < 0 and x > 0, 360 cm each); four
APAs tile (y, z) as two rows in y and two columns in z, APA = 2·(z column) + (y row, 1 for y ≥ 0).
"""

from __future__ import annotations

import numpy as np

PLANES: tuple[str, ...] = ("U", "V", "X")
N_APA = 4
CHANNELS_PER_APA = 2560
PLANE_FIRST_CHANNEL: dict[str, int] = {"U": 0, "V": 800, "X": 1600}
INDUCTION_WIRES = 800
COLLECTION_WIRES_PER_FACE = 480
X_FACE_SPLIT = 2080  # X channels below this read the x < 0 face, the rest x > 0

PITCH_CM: dict[str, float] = {"U": 0.4669, "V": 0.4669, "X": 0.479}
WIRE_ANGLE_DEG = 35.7  # induction wires from vertical

APA_HEIGHT_CM = 600.0
APA_WIDTH_CM = COLLECTION_WIRES_PER_FACE * PITCH_CM["X"]  # 229.92 cm
DETECTOR_Y_CM = (-APA_HEIGHT_CM, APA_HEIGHT_CM)
DETECTOR_Z_CM = (0.0, 2 * APA_WIDTH_CM)
DRIFT_LENGTH_CM = 360.0

DRIFT_VELOCITY_CM_PER_US = 0.16
SAMPLE_US = 0.512
CM_PER_SAMPLE = DRIFT_VELOCITY_CM_PER_US * SAMPLE_US
TICKS_PER_SAMPLE = 32  # tp_time_start counts 16 ns clock ticks
TRIGGER_OFFSET_SAMPLES = 10
# Induction planes are crossed before the collection plane (≈ 3 µs per plane gap).
PLANE_TIME_OFFSET_SAMPLES: dict[str, int] = {"U": -6, "V": -3, "X": 0}

THRESHOLD_ADC: dict[str, float] = {"U": 70.0, "V": 70.0, "X": 60.0}
ADC_PER_MEV: dict[str, float] = {"U": 900.0, "V": 900.0, "X": 3600.0}


def apa_index(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """APA number of points (y, z) [cm]; points outside the active area are clipped to the edge."""
    column = np.clip(np.floor((z - DETECTOR_Z_CM[0]) / APA_WIDTH_CM), 0, 1).astype(np.int64)
    row = (np.asarray(y) >= 0).astype(np.int64)
    return 2 * column + row


def plane_channel(plane: str, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Channel within the APA (0–2559) that collects or induces charge from points (x, y, z) [cm].

    X wires measure z on each face. Induction wires wrap around the APA, so the x > 0 face sees
    the unrolled frame mirrored in z: the same channel reads both faces at mirrored angles.
    """
    z_local = np.clip(z - DETECTOR_Z_CM[0], 0.0, None) % APA_WIDTH_CM
    y = np.asarray(y)
    y_local = np.where(y >= 0, y, y + APA_HEIGHT_CM)
    far_face = np.asarray(x) > 0
    if plane == "X":
        wire = np.clip(np.floor(z_local / PITCH_CM["X"]), 0, COLLECTION_WIRES_PER_FACE - 1)
        return (PLANE_FIRST_CHANNEL["X"] + COLLECTION_WIRES_PER_FACE * far_face + wire).astype(
            np.int64
        )
    if plane not in ("U", "V"):
        raise ValueError(f"unknown plane {plane!r}: expected one of {PLANES}")
    unrolled = np.where(far_face, APA_WIDTH_CM - z_local, z_local)
    angle = np.radians(WIRE_ANGLE_DEG)
    sign = -1.0 if plane == "U" else 1.0
    w = unrolled * np.cos(angle) + sign * y_local * np.sin(angle)
    wire = np.floor(w / PITCH_CM[plane]).astype(np.int64) % INDUCTION_WIRES
    return PLANE_FIRST_CHANNEL[plane] + wire


def drift_samples(x: np.ndarray) -> np.ndarray:
    """Arrival time [ADC samples, float] at the collection plane of charge created at x [cm]."""
    return np.abs(x) / CM_PER_SAMPLE + TRIGGER_OFFSET_SAMPLES


def x_side_of_collection_channel(channel: np.ndarray) -> np.ndarray:
    """Drift side (−1: x < 0, +1: x > 0) of X-plane channels, the physical rule for every APA."""
    return np.where(np.asarray(channel) < X_FACE_SPLIT, -1, 1)
