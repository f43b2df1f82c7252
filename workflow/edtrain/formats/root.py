"""Cluster ROOT files (``*_bg_matched.root``, DATA_FORMAT §4): write and read with uproot.

Writing assigns a dict of arrays per tree, which uproot ≥ 5.7 stores with the C++ types of the
format (``std::vector<int32_t>`` per-TP branches, ``std::vector<double>`` for
``tp_simide_energy``, ``std::string`` labels, ``bool`` flags); reading works the same for these
files and for upstream's TTrees, since both go through uproot's ``arrays``.
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


def write_cluster_file(
    path: str | Path,
    trees: dict[str, dict[str, dict[str, np.ndarray]]],
    metadata: dict[str, float],
) -> None:
    """Write ``trees[directory][plane]`` and the ``clustering_metadata`` tree.

    Each plane's dict holds one array per scalar branch and, per TP, flat ``tp_*`` arrays
    delimited by ``tp_offsets`` (n_clusters + 1).

    Every plane tree of every directory must be present; branch names and types follow
    SCALAR_BRANCHES/X_ONLY_BRANCHES/TP_BRANCHES exactly, and a missing branch is an error.
    """
    path = Path(path)
    with uproot.recreate(path) as file:
        for directory in DIRECTORIES:
            for plane in ("U", "V", "X"):
                data = trees[directory][plane]
                counts = np.diff(np.asarray(data["tp_offsets"], dtype=np.int64))
                branches: dict[str, object] = {}
                for name, dtype in _branches(plane).items():
                    if name not in data:
                        raise KeyError(
                            f"{path}: {tree_path(plane, directory)} lacks branch {name!r}"
                        )
                    branches[name] = np.asarray(data[name]).astype(dtype)
                for name, dtype in TP_BRANCHES.items():
                    if name not in data:
                        raise KeyError(
                            f"{path}: {tree_path(plane, directory)} lacks branch {name!r}"
                        )
                    flat = np.asarray(data[name]).astype(dtype)
                    branches[name] = ak.unflatten(flat, counts)
                file[tree_path(plane, directory)] = branches
        file[METADATA_TREE] = {k: np.asarray([v]) for k, v in metadata.items()}


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
    ``edtrain.imaging.render_planes``). Files without matching get ``match_id`` = −1."""
    planes = {}
    for plane in ("U", "V", "X"):
        clusters = read_clusters(path, plane, directory)
        flat, offsets = flatten_tps(clusters)
        scalars = {k: v for k, v in clusters.items() if not k.startswith("tp_")}
        scalars.setdefault("match_id", np.full(offsets.size - 1, -1, dtype=np.int32))
        planes[plane] = {**scalars, **flat, "tp_offsets": offsets}
    return planes
