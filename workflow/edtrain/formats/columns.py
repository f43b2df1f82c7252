"""Metadata columns of the plane npz files (docs/data_format.md §2).

nov11 productions carry 14 columns, current upstream 18 (adds the true neutrino
energy and momentum). Older 11/13-column variants exist; readers decide by width.
"""

from __future__ import annotations

PLANES: tuple[str, ...] = ("U", "V", "X")
PLANE_ID: dict[str, int] = {"U": 0, "V": 1, "X": 2}
IMAGE_SHAPE: tuple[int, int] = (128, 32)

EVENT = 0
IS_MARLEY = 1
IS_MAIN_TRACK = 2
IS_ES = 3
POS = slice(4, 7)
MOM = slice(7, 10)
CLUSTER_ENERGY = 10
PARTICLE_ENERGY = 11
PLANE = 12
MATCH_ID = 13
NU_ENERGY = 14
NU_MOM = slice(15, 18)

NAMES_14: tuple[str, ...] = (
    "event",
    "is_marley",
    "is_main_track",
    "is_es_interaction",
    "true_pos_x",
    "true_pos_y",
    "true_pos_z",
    "true_mom_x",
    "true_mom_y",
    "true_mom_z",
    "cluster_energy",
    "true_particle_energy",
    "plane_id",
    "match_id",
)
NAMES_18: tuple[str, ...] = (
    *NAMES_14,
    "true_neutrino_energy",
    "true_neutrino_mom_x",
    "true_neutrino_mom_y",
    "true_neutrino_mom_z",
)
