"""Cluster ROOT files as inputs: the same samples and pixels as the npz files rendered from them."""

import json

import numpy as np
import pandas as pd
import pytest

from edtrain import cli, render
from edtrain.dataset import chunk
from edtrain.dataset.reader import open_images
from edtrain.simulation import simulate


def _dataset(tmp_path, name, inputs, convention):
    chunk_dir, out = tmp_path / f"{name}_chunk", tmp_path / name
    args = ["chunk", "--inputs", *map(str, inputs), "--chunk", "0", "--chunks", "1"]
    assert cli.main([*args, "--out", str(chunk_dir), "--flip-convention", convention]) == 0
    args = ["assemble", "--chunks", str(chunk_dir), "--out", str(out), "--test-fraction", "0.2"]
    assert cli.main(args) == 0
    table = pd.read_parquet(out / "samples.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    return table, np.asarray(open_images(out)), manifest


@pytest.mark.parametrize("convention", render.FLIP_CONVENTIONS)
def test_cluster_files_give_the_samples_of_their_npz_files(tmp_path, convention):
    for i in range(2):
        simulate.write_file(tmp_path, i, 7, 25, "flat", convention)
    base = tmp_path / simulate.PRODUCTION_DIR
    npz, npz_images, _ = _dataset(tmp_path, "npz", [base / simulate.PLANE_IMAGES_DIR], convention)
    root, root_images, manifest = _dataset(
        tmp_path, "root", [base / simulate.MATCHED_DIR], convention
    )
    assert len(npz) > 0
    pd.testing.assert_frame_equal(npz.drop(columns="source"), root.drop(columns="source"))
    np.testing.assert_array_equal(npz_images, root_images)
    assert root["source"].str.endswith("_bg_matched.root").all()
    assert manifest["flip_convention"] == convention
    # drift sides from the X channels agree with the true positions the npz files keep
    assert manifest["drift_side_from"] == ["x_plane_channel"]
    assert set(root["drift_side"]) == {-1, 1}
    assert len(manifest["inputs"]) == 2 and all("images_xxh3" in i for i in manifest["inputs"])


def test_unreadable_cluster_files_are_skipped_with_reasons(tmp_path, capsys):
    simulate.write_file(tmp_path, 0, 7, 10, "flat", "consistent")
    folder = tmp_path / simulate.PRODUCTION_DIR / simulate.MATCHED_DIR
    (folder / "empty_bg_matched.root").write_bytes(b"")
    (folder / "junk_bg_matched.root").write_bytes(b"not a ROOT file" * 100)
    _, _, manifest = _dataset(tmp_path, "ds", [folder], "consistent")
    reasons = {s["path"].rsplit("/", 1)[1]: s["reason"] for s in manifest["skipped_files"]}
    assert reasons["empty_bg_matched.root"] == "empty file (0 bytes)"
    assert reasons["junk_bg_matched.root"].startswith("not a readable cluster file")
    assert manifest["samples"] > 0


def test_chunk_knows_the_renderer_conventions():
    assert chunk.FLIP_CONVENTIONS == render.FLIP_CONVENTIONS
