"""Cluster ROOT files: written with the format's schema (TTrees with ROOT, an RNTuple with
uproot), read back by plain uproot and, for TTrees, by ROOT itself as upstream's C++ does."""

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


@pytest.fixture(params=["root", "uproot"])
def cluster_file(request, tmp_path):
    if request.param == "root":
        request.getfixturevalue("pyroot")
    trees = {
        "clusters": {"U": _plane("U", [2, 1]), "V": _plane("V", []), "X": _plane("X", [3, 1, 2])},
        "discarded": {p: _plane(p, [2]) for p in "UVX"},
    }
    path = tmp_path / "f_bg_matched.root"
    write_cluster_file(path, trees, {"tick_limit": 3, "energy_cut": 2.0}, engine=request.param)
    return path, trees


def test_schema_reads_back_with_plain_uproot(cluster_file):
    path, _ = cluster_file
    f = uproot.open(path)
    for d in ("clusters", "discarded"):
        for p in "UVX":
            assert f"{d}/clusters_tree_{p}" in f
    x = f["clusters/clusters_tree_X"]
    std = "" if isinstance(x, uproot.TTree) else "std::"  # ROOT's and uproot's spellings
    assert x["tp_adc_integral"].typename == f"std::vector<{std}int32_t>"
    assert x["tp_simide_energy"].typename == "std::vector<double>"
    assert x["true_label"].typename == "std::string"
    assert x["is_main_cluster"].typename == "bool"
    assert x["total_charge"].typename == "double"
    assert x["true_pos_x"].typename == "float"
    assert x["event"].typename == f"{std}int32_t"
    assert "matching_clusterId_U" in x.keys()
    assert "matching_clusterId_U" not in f["clusters/clusters_tree_U"].keys()
    meta = f["clustering_metadata"].arrays(library="np")
    assert meta["tick_limit"][0] == 3 and meta["energy_cut"][0] == 2.0
    assert meta["tick_limit"].dtype == np.int32 and meta["energy_cut"].dtype == np.float32


def test_root_reads_ttrees_with_vector_branches_as_upstream_does(tmp_path, pyroot):
    """Upstream's C++: ``dynamic_cast<TTree*>(dir->Get(...))``, std::vector branches, a
    std::string label; the values are those uproot reads."""
    ROOT = pyroot
    trees = {d: {p: _plane(p, [3, 1, 2]) for p in "UVX"} for d in ("clusters", "discarded")}
    path = tmp_path / "t_bg_matched.root"
    write_cluster_file(path, trees, {"tick_limit": 3}, engine="root")
    file = ROOT.TFile.Open(str(path))
    tree = file.Get("clusters/clusters_tree_X")
    assert tree.ClassName() == "TTree" and tree.GetEntries() == 3
    assert tree.GetBranch("tp_time_start").GetClassName() == "vector<int>"
    assert tree.GetBranch("tp_simide_energy").GetClassName() == "vector<double>"
    assert tree.GetBranch("true_label").GetClassName() == "string"
    expected = read_clusters(path, "X")
    for entry in range(3):
        tree.GetEntry(entry)
        assert list(tree.tp_time_start) == expected["tp_time_start"][entry].tolist()
        assert list(tree.tp_simide_energy) == expected["tp_simide_energy"][entry].tolist()
        assert str(tree.true_label) == expected["true_label"][entry]
        assert tree.event == expected["event"][entry]
        assert bool(tree.is_main_cluster) == expected["is_main_cluster"][entry]
    file.Close()


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
