"""Cluster ROOT files (``*_bg_matched.root``, docs/data_format.md): write, and read with uproot.

Where ROOT is installed the trees are written as upstream's TTrees (``root_tree``); otherwise
uproot (≥ 5.7) stores each tree's dict of arrays as an RNTuple with the same C++ types
(``std::vector<int32_t>`` per-TP branches, ``std::vector<double>`` for ``tp_simide_energy``,
``std::string`` labels, ``bool`` flags), which uproot-based readers, ours included, read
alike but upstream's C++ stages cannot. Reading goes through uproot's ``arrays`` for both.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot

DIRECTORIES: tuple[str, ...] = ("clusters", "discarded")
METADATA_TREE = "clustering_metadata"

SCALAR_BRANCHES: dict[str, type] = {
    "event": np.int32,
    "n_tps": np.int32,
    "true_pos_x": np.float32,
    "true_pos_y": np.float32,
    "true_pos_z": np.float32,
    "true_neutrino_mom_x": np.float32,
    "true_neutrino_mom_y": np.float32,
    "true_neutrino_mom_z": np.float32,
    "true_mom_x": np.float32,
    "true_mom_y": np.float32,
    "true_mom_z": np.float32,
    "true_neutrino_energy": np.float32,
    "true_particle_energy": np.float32,
    "true_label": np.str_,
    "supernova_tp_fraction": np.float32,
    "generator_tp_fraction": np.float32,
    "marley_tp_fraction": np.float32,
    "is_es_interaction": np.bool_,
    "total_charge": np.float64,
    "total_energy": np.float64,
    "true_pdg": np.int32,
    "is_main_cluster": np.bool_,
    "cluster_id": np.int32,
    "match_id": np.int32,
    "match_type": np.int32,
}
X_ONLY_BRANCHES: dict[str, type] = {
    "matching_clusterId_U": np.int32,
    "matching_clusterId_V": np.int32,
}
METADATA_BRANCHES: dict[str, type] = {  # upstream's clustering_metadata leaf types
    "tick_limit": np.int32,
    "channel_limit": np.int32,
    "min_tps_to_cluster": np.int32,
    "adc_integral_cut_induction": np.int32,
    "adc_integral_cut_collection": np.int32,
    "tot_cut": np.int32,
    "energy_cut": np.float32,
    "adc_to_mev_collection": np.float32,
    "adc_to_mev_induction": np.float32,
}
TP_BRANCHES: dict[str, type] = {
    "tp_detector_channel": np.int32,
    "tp_detector": np.int32,
    "tp_samples_over_threshold": np.int32,
    "tp_samples_to_peak": np.int32,
    "tp_time_start": np.int32,
    "tp_adc_peak": np.int32,
    "tp_adc_integral": np.int32,
    "tp_simide_energy": np.float64,
}


def tree_path(plane: str, directory: str = "clusters") -> str:
    """Key of a plane's cluster tree inside the file."""
    return f"{directory}/clusters_tree_{plane}"


def _branches(plane: str) -> dict[str, type]:
    return {**SCALAR_BRANCHES, **(X_ONLY_BRANCHES if plane == "X" else {})}


def cluster_file_writer() -> str:
    """How ``write_cluster_file`` stores the trees on this installation."""
    from edtrain.formats import root_tree

    if root_tree.root() is not None:
        return root_tree.writer()
    return f"uproot {uproot.__version__} (RNTuple: ROOT not installed)"


def _typed(path: Path, key: str, plane: str, data: dict) -> tuple[dict, np.ndarray]:
    """A tree's columns in branch order with the format's types, and its TP offsets."""
    columns: dict[str, np.ndarray] = {}
    for name, dtype in {**_branches(plane), **TP_BRANCHES}.items():
        if name not in data:
            raise KeyError(f"{path}: {key} lacks branch {name!r}")
        columns[name] = np.asarray(data[name]).astype(dtype)
    return columns, np.asarray(data["tp_offsets"], dtype=np.int64)


def write_cluster_file(
    path: str | Path,
    trees: dict[str, dict[str, dict[str, np.ndarray]]],
    metadata: dict[str, float],
    engine: str = "auto",
) -> None:
    """Write ``trees[directory][plane]`` and the ``clustering_metadata`` tree.

    Each plane's dict holds one array per scalar branch and, per TP, flat ``tp_*`` arrays
    delimited by ``tp_offsets`` (n_clusters + 1). Every plane tree of every directory must be
    present; branch names and types follow SCALAR_BRANCHES/X_ONLY_BRANCHES/TP_BRANCHES exactly,
    and a missing branch is an error. ``engine`` "root" writes TTrees as upstream does
    (``edtrain.formats.root_tree``), "uproot" an RNTuple, "auto" the first available.
    """
    from edtrain.formats import root_tree

    path = Path(path)
    typed = {
        directory: {
            plane: _typed(path, tree_path(plane, directory), plane, trees[directory][plane])
            for plane in ("U", "V", "X")
        }
        for directory in DIRECTORIES
    }
    meta = {
        k: np.asarray([v], dtype=METADATA_BRANCHES.get(k, np.float32)) for k, v in metadata.items()
    }
    if engine == "root" or (engine == "auto" and root_tree.root() is not None):
        named = {
            directory: {f"clusters_tree_{plane}": tree for plane, tree in planes.items()}
            for directory, planes in typed.items()
        }
        root_tree.write_tree_file(path, named, meta)
        return
    with uproot.recreate(path) as file:
        for directory, planes in typed.items():
            for plane, (columns, offsets) in planes.items():
                counts = np.diff(offsets)
                file[tree_path(plane, directory)] = {
                    name: ak.unflatten(column, counts) if name in TP_BRANCHES else column
                    for name, column in columns.items()
                }
        file[METADATA_TREE] = meta


def read_clusters(
    path: str | Path, plane: str, directory: str = "clusters"
) -> dict[str, np.ndarray | ak.Array]:
    """One plane's clusters: scalar branches as numpy arrays (``true_label`` as str), ``tp_*``
    branches as awkward jagged arrays (one list per cluster). Errors name the file and key."""
    key = tree_path(plane, directory)
    try:
        file = uproot.open(path)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: no such cluster file") from err
    if key not in file:
        raise KeyError(f"{path}: no tree {key!r}")
    arrays = file[key].arrays(library="ak")
    out: dict[str, np.ndarray | ak.Array] = {}
    for name in arrays.fields:
        column = arrays[name]
        if name.startswith("tp_"):
            out[name] = column
        elif name == "true_label":
            out[name] = np.asarray(ak.to_list(column), dtype=str)
        else:
            out[name] = ak.to_numpy(column)
    return out


def flatten_tps(
    clusters: dict[str, np.ndarray | ak.Array],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Flat per-TP numpy arrays and the cluster offsets (n_clusters + 1), the renderer's input."""
    counts = ak.to_numpy(ak.num(clusters["tp_detector_channel"]))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    flat = {k: ak.to_numpy(ak.flatten(v)) for k, v in clusters.items() if k.startswith("tp_")}
    return flat, offsets


def read_planes(path: str | Path, directory: str = "clusters") -> dict[str, dict[str, np.ndarray]]:
    """The three planes of a cluster file as flat numpy arrays: scalar branches per cluster and
    ``tp_*`` per TP delimited by ``tp_offsets`` (the layout of ``write_cluster_file`` and of
    ``edtrain.render.render_planes``). Files without matching get ``match_id`` = −1."""
    planes = {}
    for plane in ("U", "V", "X"):
        clusters = read_clusters(path, plane, directory)
        flat, offsets = flatten_tps(clusters)
        scalars = {k: v for k, v in clusters.items() if not k.startswith("tp_")}
        scalars.setdefault("match_id", np.full(offsets.size - 1, -1, dtype=np.int32))
        planes[plane] = {**scalars, **flat, "tp_offsets": offsets}
    return planes
