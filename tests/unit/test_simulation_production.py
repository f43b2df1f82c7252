"""`edtrain simulate` end to end on a tiny production: layout, formats, determinism, gallery."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import uproot

from edtrain.cli import main as cli
from edtrain.formats import columns
from edtrain.formats.root import read_clusters, read_planes
from edtrain.render import render_planes
from edtrain.simulation import GENERATOR_VERSION
from edtrain.simulation.simulate import (
    FLAT_IMAGES_DIR,
    MATCHED_DIR,
    PLANE_IMAGES_DIR,
    PRODUCTION_DIR,
    TRUTH_DIR,
    basename,
)

EVENTS = 25


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    out = tmp_path_factory.mktemp("prod")
    args = ["simulate", "--out", str(out), "--files", "2", "--events-per-file", str(EVENTS)]
    assert cli([*args, "--seed", "11"]) == 0
    return out


def _npz(base, folder, name, plane):
    with np.load(base / folder / f"{name}_bg_matched_plane{plane}.npz") as data:
        assert sorted(data.files) == ["images", "metadata"]
        return data["images"], data["metadata"]


def test_summary_is_written_with_the_counts(production):
    summary = json.loads((production / "production.json").read_text())
    assert summary["files"] == 2 and summary["events"] == 2 * EVENTS
    assert summary["seed"] == 11 and summary["flip_convention"] == "consistent"
    assert summary["generator_version"] == GENERATOR_VERSION
    assert summary["basenames"] == [basename(0, "supernova"), basename(1, "supernova")]
    assert summary["counts"]["main_triplets"] > EVENTS  # most events give a main triplet


def test_files_follow_the_data_format(production):
    base = production / PRODUCTION_DIR
    name = basename(1, "supernova")
    root = base / MATCHED_DIR / f"{name}_bg_matched.root"
    f = uproot.open(root)
    assert {"clusters/clusters_tree_X", "discarded/clusters_tree_U", "clustering_metadata"} <= {
        k.split(";")[0] for k in f.keys()
    }
    for plane in "UVX":
        images, meta = _npz(base, f"{PLANE_IMAGES_DIR}/{plane}", name, plane)
        flat_images, flat_meta = _npz(base, FLAT_IMAGES_DIR, name, plane)
        assert images.dtype == np.float32 and images.shape[1:] == (128, 32)
        assert meta.dtype == np.float32 and meta.shape == (images.shape[0], 18)
        assert flat_meta.shape == (images.shape[0], 14)
        np.testing.assert_array_equal(flat_images, images)
        np.testing.assert_array_equal(flat_meta, meta[:, :14])
        tree = read_clusters(root, plane)
        assert tree["event"].size == images.shape[0]  # every accepted cluster is a row
        np.testing.assert_array_equal(meta[:, columns.EVENT], tree["event"])
        np.testing.assert_array_equal(meta[:, columns.MATCH_ID], tree["match_id"])
        assert np.all(meta[:, columns.PLANE] == columns.PLANE_ID[plane])
        assert np.all(np.concatenate(tree["tp_time_start"].to_list()) % 32 == 0)
        assert np.all(tree["total_energy"] >= 2.0)
        assert np.all(read_clusters(root, plane, "discarded")["total_energy"] < 2.0)
        # Image energy (col 10) is the pixel sum over the ADC→MeV factor.
        factor = 3600.0 if plane == "X" else 900.0
        np.testing.assert_allclose(
            meta[:, columns.CLUSTER_ENERGY], images.sum(axis=(1, 2)) / factor, rtol=1e-5
        )
    x = read_clusters(root, "X")
    main = x["is_main_cluster"] & (x["match_id"] >= 0)
    assert np.all(x["true_label"][main] == "marley")
    assert np.all(x["true_pdg"][main] == 11)
    assert len(set(x["match_id"][x["match_id"] >= 0])) == (x["match_id"] >= 0).sum()


def test_rendering_the_written_root_file_reproduces_the_npz(production):
    """What the dataset stage does with real files: read the clusters back, render, compare."""
    base = production / PRODUCTION_DIR
    name = basename(0, "supernova")
    rendered = render_planes(read_planes(base / MATCHED_DIR / f"{name}_bg_matched.root"))
    for plane, (images, meta) in rendered.items():
        npz_images, npz_meta = _npz(base, f"{PLANE_IMAGES_DIR}/{plane}", name, plane)
        np.testing.assert_array_equal(images, npz_images)
        np.testing.assert_array_equal(meta, npz_meta)


def test_truth_holds_the_oracle_and_the_main_match(production):
    base = production / PRODUCTION_DIR
    name = basename(0, "supernova")
    truth = pd.read_parquet(base / TRUTH_DIR / f"{name}_truth.parquet")
    assert len(truth) == EVENTS and truth.event.is_unique
    for col in ("nu_energy_mev", "electron_ke_mev", "oracle_error_deg", "oracle_dir_x"):
        assert truth[col].notna().all()
    e_dir = truth[["electron_dir_x", "electron_dir_y", "electron_dir_z"]].to_numpy()
    np.testing.assert_allclose(np.linalg.norm(e_dir, axis=1), 1.0, rtol=1e-9)
    _, x_meta = _npz(base, f"{PLANE_IMAGES_DIR}/X", name, "X")
    row = truth[truth.has_main_triplet].iloc[0]
    hit = (x_meta[:, columns.EVENT] == row.event) & (
        x_meta[:, columns.MATCH_ID] == row.main_match_id
    )
    label = x_meta[hit][0, columns.MOM]
    np.testing.assert_allclose(
        label / np.linalg.norm(label), e_dir[truth.event == row.event][0], atol=1e-5
    )


def test_files_are_deterministic_and_independent(production, tmp_path):
    """File 1 alone (other process count, no file 0) is byte-identical to the production's."""
    args = ["simulate", "--out", str(tmp_path), "--files", "1", "--first-file", "1"]
    assert cli([*args, "--events-per-file", str(EVENTS), "--seed", "11", "--jobs", "2"]) == 0
    name = basename(1, "supernova")
    for plane in "UVX":
        rel = PRODUCTION_DIR / PLANE_IMAGES_DIR / plane / f"{name}_bg_matched_plane{plane}.npz"
        assert (tmp_path / rel).read_bytes() == (production / rel).read_bytes()


def test_upstream_convention_flips_odd_apas_differently(production, tmp_path):
    args = ["simulate", "--out", str(tmp_path), "--files", "1", "--events-per-file", str(EVENTS)]
    assert cli([*args, "--seed", "11", "--flip-convention", "upstream"]) == 0
    name = basename(0, "supernova")
    base_c, base_u = production / PRODUCTION_DIR, tmp_path / PRODUCTION_DIR
    img_c, meta = _npz(base_c, f"{PLANE_IMAGES_DIR}/X", name, "X")
    img_u, _ = _npz(base_u, f"{PLANE_IMAGES_DIR}/X", name, "X")
    x = read_clusters(base_c / MATCHED_DIR / f"{name}_bg_matched.root", "X")
    apa = np.array([d[0] for d in x["tp_detector"].to_list()])
    same = np.array([np.array_equal(a, b) for a, b in zip(img_c, img_u, strict=True)])
    np.testing.assert_array_equal(same, apa % 2 == 0)  # odd APAs: time flip inverted
    np.testing.assert_array_equal(img_u[apa % 2 == 1], img_c[apa % 2 == 1][:, ::-1, :])
    assert meta.shape[0] == img_u.shape[0]


def test_gallery_draws_a_png(production, tmp_path):
    out = tmp_path / "gallery.png"
    assert (
        cli(["gallery", "--production", str(production), "--out", str(out), "--events", "2"]) == 0
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gallery_refuses_an_unfinished_production(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"production\.json"):
        cli(["gallery", "--production", str(tmp_path), "--out", str(tmp_path / "g.png")])


def test_cluster_files_follow_upstreams_matcher(production):
    """Only main X clusters are matched; unmatched clusters have match_type −1; cluster_id
    counts the file once across planes and directories."""
    path = production / PRODUCTION_DIR / MATCHED_DIR / f"{basename(0, 'supernova')}_bg_matched.root"
    planes = {(d, p): read_clusters(path, p, d) for d in ("clusters", "discarded") for p in "UVX"}
    x = planes["clusters", "X"]
    assert (x["match_id"] >= 0).any()
    assert x["is_main_cluster"][x["match_id"] >= 0].all()
    for tree in planes.values():
        assert set(tree["match_type"][tree["match_id"] < 0].tolist()) <= {-1}
        assert set(tree["match_type"][tree["match_id"] >= 0].tolist()) <= {3}
    ids = np.concatenate([tree["cluster_id"] for tree in planes.values()])
    assert np.array_equal(np.sort(ids), np.arange(ids.size))


def test_cluster_files_are_ttrees_that_root_reads(production, pyroot):
    """With ROOT installed (CI), the matched files hold TTrees with std::vector branches, read
    by ROOT as upstream's C++ reads them, with the values uproot reads."""
    ROOT = pyroot
    summary = json.loads((production / "production.json").read_text())
    assert summary["cluster_files"].startswith("ROOT ")
    path = production / PRODUCTION_DIR / MATCHED_DIR / f"{basename(0, 'supernova')}_bg_matched.root"
    file = ROOT.TFile.Open(str(path))
    for plane in "UVX":
        tree = file.Get(f"clusters/clusters_tree_{plane}")
        assert tree.ClassName() == "TTree"
        assert tree.GetBranch("tp_adc_integral").GetClassName() == "vector<int>"
        expected = read_clusters(path, plane)
        assert tree.GetEntries() == expected["event"].size > 0
        for entry in range(tree.GetEntries()):
            tree.GetEntry(entry)
            assert list(tree.tp_adc_integral) == expected["tp_adc_integral"][entry].tolist()
            assert tree.event == expected["event"][entry]
            assert tree.match_id == expected["match_id"][entry]
    assert file.Get("clustering_metadata").ClassName() == "TTree"
    file.Close()
