"""Cluster ROOT files: written with the DATA_FORMAT §4 schema, read back by plain uproot."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from edtrain.formats.root import (
    SCALAR_BRANCHES,
    TP_BRANCHES,
    X_ONLY_BRANCHES,
    flatten_tps,
    read_clusters,
    write_cluster_file,
)


def _plane(plane: str, n_tps: list[int]) -> dict:
    n = len(n_tps)
    data = {}
    for name, dtype in {**SCALAR_BRANCHES, **X_ONLY_BRANCHES}.items():
        if name == "true_label":
            data[name] = np.array(["marley", "UNKNOWN", "Ar39GenInLAr"][:n])
        elif dtype is np.bool_:
            data[name] = np.arange(n) % 2 == 0
        else:
            data[name] = np.arange(n, dtype=np.float64) + 0.5
    data["tp_offsets"] = np.concatenate([[0], np.cumsum(n_tps)])
    total = int(sum(n_tps))
    for name in TP_BRANCHES:
        data[name] = np.arange(total) * (32 if name == "tp_time_start" else 1) + 0.25
    return data


@pytest.fixture
def cluster_file(tmp_path):
    trees = {
        "clusters": {"U": _plane("U", [2, 1]), "V": _plane("V", []), "X": _plane("X", [3, 1, 2])},
        "discarded": {p: _plane(p, [2]) for p in "UVX"},
    }
    path = tmp_path / "f_bg_matched.root"
    write_cluster_file(path, trees, {"tick_limit": 3, "energy_cut": 2.0})
    return path, trees


def test_schema_reads_back_with_plain_uproot(cluster_file):
    path, _ = cluster_file
    f = uproot.open(path)
    for d in ("clusters", "discarded"):
        for p in "UVX":
            assert f"{d}/clusters_tree_{p}" in f
    x = f["clusters/clusters_tree_X"]
    assert x["tp_adc_integral"].typename == "std::vector<std::int32_t>"
    assert x["tp_simide_energy"].typename == "std::vector<double>"
    assert x["true_label"].typename == "std::string"
    assert x["is_main_cluster"].typename == "bool"
    assert x["total_charge"].typename == "double"
    assert x["true_pos_x"].typename == "float"
    assert x["event"].typename == "std::int32_t"
    assert "matching_clusterId_U" in x.keys()
    assert "matching_clusterId_U" not in f["clusters/clusters_tree_U"].keys()
    meta = f["clustering_metadata"].arrays(library="np")
    assert meta["tick_limit"][0] == 3 and meta["energy_cut"][0] == 2.0


def test_round_trip_through_read_clusters(cluster_file):
    path, trees = cluster_file
    x = read_clusters(path, "X")
    assert x["event"].dtype == np.int32
    np.testing.assert_array_equal(x["event"], [0, 1, 2])
    np.testing.assert_array_equal(x["true_label"], ["marley", "UNKNOWN", "Ar39GenInLAr"])
    flat, offsets = flatten_tps(x)
    np.testing.assert_array_equal(offsets, trees["clusters"]["X"]["tp_offsets"])
    np.testing.assert_array_equal(flat["tp_time_start"] % 32, 0)
    np.testing.assert_array_equal(flat["tp_adc_peak"], np.arange(6))
    np.testing.assert_allclose(flat["tp_simide_energy"], np.arange(6) + 0.25)
    assert read_clusters(path, "V")["event"].size == 0
    assert read_clusters(path, "U", "discarded")["n_tps"].size == 1


def test_errors_name_the_file_and_key(cluster_file, tmp_path):
    path, trees = cluster_file
    with pytest.raises(KeyError, match="clusters_tree_W"):
        read_clusters(path, "W")
    with pytest.raises(FileNotFoundError, match=r"missing\.root"):
        read_clusters(tmp_path / "missing.root", "X")
    del trees["clusters"]["U"]["match_id"]
    with pytest.raises(KeyError, match="match_id"):
        write_cluster_file(tmp_path / "bad.root", trees, {})
