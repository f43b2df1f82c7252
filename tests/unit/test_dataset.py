"""`edtrain chunk` + `edtrain assemble` on tiny productions written with the plane npz writer.

Each image carries its own key in its first pixels (event, match_id, plane id + 1), so a test can
check that every image landed in the row of its sample.
"""

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edtrain import cli, splits
from edtrain.dataset import chunk, float16
from edtrain.dataset.discover import dataset_order
from edtrain.dataset.reader import open_images, part_paths
from edtrain.formats import columns as col
from edtrain.formats.npz import write_plane_npz

SHAPE = (128, 32)


def _basename(i):
    return f"prodmarley_nue_flat_es_dune10kt_1x2x2_gen_{i:06d}_bg_matched"


def _rows(plane, events, match_ids, mom, width, rng):
    """One plane's metadata and images for the given keys (noise rows get match_id −1)."""
    n = len(events)
    meta = np.zeros((n, width), dtype=np.float32)
    meta[:, col.EVENT], meta[:, col.MATCH_ID] = events, match_ids
    meta[:, col.IS_MARLEY] = meta[:, col.IS_MAIN_TRACK] = meta[:, col.IS_ES] = match_ids >= 0
    meta[:, col.MOM] = mom
    meta[:, col.CLUSTER_ENERGY] = rng.uniform(2, 40, n)
    meta[:, col.PLANE] = col.PLANE_ID[plane]
    if width == 18:
        meta[:, col.NU_ENERGY] = rng.integers(5, 60, n)
        meta[:, col.NU_MOM] = rng.normal(size=(n, 3))
    images = np.zeros((n, *SHAPE), dtype=np.float32)
    images[:, 40:60, 10:20] = rng.integers(0, 1500, size=(n, 20, 10))
    images[:, 0, 0], images[:, 0, 1], images[:, 0, 2] = events, match_ids, col.PLANE_ID[plane] + 1
    return meta, images


def write_basename(folders, name, seed, n=5, width=14):
    """Write one basename's three plane files; ``folders`` maps plane letter → directory."""
    rng = np.random.default_rng(seed)
    events = (1000 + rng.choice(900, n + 3, replace=False)).astype(np.float32)
    match_ids = rng.permutation(n).astype(np.float32) + 1
    mom = rng.normal(size=(n, 3)) * 0.02
    for plane in col.PLANES:
        keys_e, keys_m, moms = events[:n], match_ids, mom
        if plane == "X":  # one main-track X cluster that no U/V cluster matches
            keys_e, keys_m = np.append(keys_e, events[n]), np.append(keys_m, 50)
            moms = np.vstack([mom, [[0, 0, 0.01]]])
        noise_e = events[n + 1 : n + 3]
        all_e = np.concatenate([keys_e, noise_e])
        all_m = np.concatenate([keys_m, np.full(len(noise_e), -1, dtype=np.float32)])
        all_mom = np.vstack([moms, rng.normal(size=(len(noise_e), 3))])
        order = rng.permutation(len(all_e))
        meta, images = _rows(plane, all_e[order], all_m[order], all_mom[order], width, rng)
        write_plane_npz(folders[plane] / f"{name}_plane{plane}.npz", images, meta)
    return n


def make_production(root, indices, layout="flat", width=14):
    """A tiny production; returns the number of samples it should yield."""
    folders = {p: root / p if layout == "per-plane" else root for p in col.PLANES}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return sum(write_basename(folders, _basename(i), seed=i, width=width) for i in indices)


def run(*argv):
    return cli.main([str(a) for a in argv])


def build(tmp_path, name, inputs, chunks=1, chunk_order=None, test_fraction=0.2, extra=()):
    """chunk all, assemble; returns the dataset directory."""
    chunk_dirs = [tmp_path / f"{name}_chunk{i}" for i in range(chunks)]
    for i, d in enumerate(chunk_dirs):
        status = run(
            "chunk", "--inputs", *inputs, "--chunk", i, "--chunks", chunks, "--out", d, *extra
        )
        assert status == 0
    order = chunk_order or range(chunks)
    out = tmp_path / name
    status = run(
        "assemble",
        "--chunks",
        *[chunk_dirs[i] for i in order],
        "--out",
        out,
        "--test-fraction",
        test_fraction,
    )
    assert status == 0
    return out


def load(dataset):
    table = pd.read_parquet(dataset / "samples.parquet")
    images = open_images(dataset)
    manifest = json.loads((dataset / "manifest.json").read_text())
    return table, images, manifest


def assert_same_dataset(a: Path, b: Path) -> None:
    """Equal tables, bitwise-equal images and equal manifests but for how images are split."""
    (ta, ia, ma), (tb, ib, mb) = load(a), load(b)
    pd.testing.assert_frame_equal(ta, tb)
    assert np.asarray(ia).tobytes() == np.asarray(ib).tobytes()
    for m in (ma, mb):
        assert sum(p["samples"] for p in m["images"].pop("parts")) == m["samples"]
    assert ma == mb


def test_numpy_cast_gives_the_same_dataset_as_the_f16c_kernel(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    make_production(tmp_path / "prod", range(4))
    kernel = build(tmp_path, "kernel", [tmp_path / "prod"])
    assert ("float16 cast by numpy" in caplog.text) != float16.F16C
    for module in (float16, chunk):
        monkeypatch.setattr(module, "F16C", False)
    caplog.clear()
    assert_same_dataset(kernel, build(tmp_path, "numpy", [tmp_path / "prod"]))
    assert "float16 cast by numpy: the F16C kernel was not built" in caplog.text


def test_dataset_contract(tmp_path):
    expected = make_production(tmp_path / "prod", range(6))
    table, images, manifest = load(build(tmp_path, "ds", [tmp_path / "prod"]))
    assert images.dtype == np.float16 and images.shape == (expected, 3, *SHAPE)
    assert len(table) == expected == manifest["samples"]
    names = table["basename"].unique()  # in dataset order, each basename in one stretch
    assert (dataset_order(names) == np.arange(len(names))).all()
    assert (table["basename"] != table["basename"].shift()).sum() == len(names)
    assert table["key_hash"].is_unique
    np.testing.assert_array_equal(
        table["key_hash"], splits.key_hash(table["basename"], table["event"], table["match_id"])
    )
    for k in range(3):  # every image is its own sample's, in plane order U, V, X
        np.testing.assert_array_equal(images[:, k, 0, 0], table["event"])
        np.testing.assert_array_equal(images[:, k, 0, 1], table["match_id"])
        np.testing.assert_array_equal(images[:, k, 0, 2], k + 1)
    labels = table[["label_x", "label_y", "label_z"]].to_numpy()
    np.testing.assert_allclose(np.linalg.norm(labels, axis=1), 1, rtol=1e-6)
    is_test = splits.test_mask(table["key_hash"].to_numpy(), 0.2)
    np.testing.assert_array_equal(table["split"] == "test", is_test)
    np.testing.assert_array_equal(
        table["rank"], splits.pool_rank(table["key_hash"].to_numpy(), is_test)
    )
    assert table["nu_energy_mev"].isna().all() and table["is_es"].all()
    assert (table["drift_side"] == 1).all()  # true_pos_x is 0 here: the x ≥ 0 side
    assert manifest["drift_side_from"] == ["true_position_x"]
    assert table["source"].str.endswith("_planeX.npz").all()
    assert manifest["pool_size"] + manifest["test_size"] == expected
    assert manifest["counts"]["unmatched"] == 6 and manifest["skipped_files"] == []
    assert len(manifest["inputs"]) == 18
    assert all(0 < i["bytes_read"] < i["size"] for i in manifest["inputs"])


def test_per_plane_layout_and_18_columns(tmp_path):
    make_production(tmp_path / "flat", range(4), width=18)
    make_production(tmp_path / "split", range(4), layout="per-plane", width=18)
    flat, flat_images, flat_manifest = load(build(tmp_path, "a", [tmp_path / "flat"]))
    split, split_images, split_manifest = load(build(tmp_path, "b", [tmp_path / "split"]))
    pd.testing.assert_frame_equal(flat.drop(columns="source"), split.drop(columns="source"))
    assert split["source"].str.contains("/X/").all()
    np.testing.assert_array_equal(flat_images, split_images)
    assert flat["nu_energy_mev"].notna().all()
    nu = flat[["nu_dir_x", "nu_dir_y", "nu_dir_z"]].to_numpy()
    np.testing.assert_allclose(np.linalg.norm(nu, axis=1), 1, rtol=1e-6)
    assert flat_manifest["test_set_hash"] == split_manifest["test_set_hash"]


def test_independent_of_chunking_and_input_order(tmp_path):
    make_production(tmp_path / "a", range(0, 5))
    make_production(tmp_path / "b", range(5, 9), layout="per-plane")
    one = build(tmp_path, "one", [tmp_path / "a", tmp_path / "b"], chunks=1)
    four = build(
        tmp_path, "four", [tmp_path / "b", tmp_path / "a"], chunks=4, chunk_order=[2, 0, 3, 1]
    )
    assert_same_dataset(one, four)
    assert len(part_paths(one)) == 1 and len(part_paths(four)) == 4


@pytest.mark.parametrize("block_rows", [4, 12])  # smaller than a basename (5 samples); two
def test_small_write_blocks_give_the_same_dataset(tmp_path, monkeypatch, block_rows):
    make_production(tmp_path / "p", range(9))
    one = build(tmp_path, "one", [tmp_path / "p"])
    monkeypatch.setattr("edtrain.dataset.image_files.BLOCK_ROWS", block_rows)
    assert_same_dataset(one, build(tmp_path, "small", [tmp_path / "p"], chunks=2))


def test_empty_chunks_assemble(tmp_path):
    expected = make_production(tmp_path / "p", [0])
    table, images, _ = load(build(tmp_path, "ds", [tmp_path / "p"], chunks=3))
    assert len(table) == len(images) == expected


def test_growing_production_keeps_test_set_and_ranks_nested(tmp_path):
    make_production(tmp_path / "small", range(4))
    make_production(tmp_path / "large", range(10))
    small, _, _ = load(build(tmp_path, "s", [tmp_path / "small"]))
    large, _, _ = load(build(tmp_path, "l", [tmp_path / "large"]))
    merged = small.merge(large, on="key_hash", suffixes=("_s", "_l"))
    assert len(merged) == len(small)
    assert (merged["split_s"] == merged["split_l"]).all()
    pool = merged[merged["split_s"] == "pool"]
    assert (np.argsort(pool["rank_s"].to_numpy()) == np.argsort(pool["rank_l"].to_numpy())).all()
    for n in (5, 10):  # a version's N samples of the smaller pool come first in the larger one too
        chosen = set(small.loc[(small["rank"] >= 0) & (small["rank"] < n), "key_hash"])
        before = large.loc[large["key_hash"].isin(chosen), "rank"].max()
        assert (
            set(large.loc[(large["rank"] >= 0) & (large["rank"] <= before), "key_hash"]) >= chosen
        )


def test_cuts_are_applied_and_recorded(tmp_path):
    make_production(tmp_path / "p", range(3))
    table, _, manifest = load(
        build(tmp_path, "ds", [tmp_path / "p"], extra=["--energy-min", "10", "--energy-max", "30"])
    )
    assert table["energy_mev"].between(10, 30).all() and len(table) > 0
    assert manifest["cuts"] == {
        "energy_max": 30.0,
        "energy_min": 10.0,
        "es_only": True,
        "marley_only": True,
    }


def _row_key(path, row):
    """(event, match_id) of one metadata row of a plane file."""
    with np.load(path) as f:
        meta = f["metadata"][row]
    return int(meta[col.EVENT]), int(meta[col.MATCH_ID])


def _damage(prod, extra):
    """Damage a production in every listed way; returns {path: reason fragment} and bad rows."""
    b = {i: _basename(i) for i in range(12)}

    def x(i):
        return prod / f"{b[i]}_planeX.npz"

    def u(i):
        return prod / f"{b[i]}_planeU.npz"

    x(0).write_bytes(b"")
    u(1).write_bytes(u(1).read_bytes()[:5000])
    missing = prod / f"{b[2]}_planeV.npz"
    missing.unlink()
    with np.load(x(3)) as f:
        images, meta = f["images"], f["metadata"]
    write_plane_npz(x(3), images[:, :, :16], meta)
    with np.load(u(4)) as f:
        images, meta = f["images"], f["metadata"]
    write_plane_npz(u(4), images, meta[:, :13])
    with np.load(x(5)) as f:  # row-level: one matched sample with an inf pixel, one with p = 0
        images, meta = f["images"].copy(), f["metadata"].copy()
    main = np.flatnonzero((meta[:, col.IS_MAIN_TRACK] == 1) & (meta[:, col.MATCH_ID] != 50))
    images[main[0], 50, 15] = np.inf
    meta[main[1], col.MOM] = 0
    write_plane_npz(x(5), images, meta)
    with np.load(u(6)) as f:  # a U row repeats a key: the match is ambiguous
        images, meta = f["images"], f["metadata"]
    dup = np.flatnonzero(meta[:, col.MATCH_ID] > 0)[0]
    write_plane_npz(
        u(6),
        np.concatenate([images, images[dup : dup + 1]]),
        np.concatenate([meta, meta[dup : dup + 1]]),
    )
    for plane in col.PLANES:  # the same basename in a second input directory
        shutil.copy(prod / f"{b[7]}_plane{plane}.npz", extra / f"{b[7]}_plane{plane}.npz")
    files = {
        str(x(0)): "empty file",
        str(u(1)): "truncated",
        str(missing): "missing plane file",
        str(x(3)): "128×16",
        str(u(4)): "metadata width 13",
        **{str(extra / f"{b[7]}_plane{p}.npz"): "duplicate basename" for p in col.PLANES},
    }
    keys = (meta[dup, col.EVENT], meta[dup, col.MATCH_ID])
    rows = {
        (b[5], *_row_key(x(5), main[0])): "non-finite pixels",
        (b[5], *_row_key(x(5), main[1])): "zero momentum",
        (b[6], int(keys[0]), int(keys[1])): "duplicate key",
    }
    return files, rows


def test_damaged_production_names_every_bad_file_and_keeps_good_samples(tmp_path, capsys):
    prod, extra = tmp_path / "prod", tmp_path / "z_extra"  # sorts after: prod is kept
    make_production(prod, range(12))
    clean, clean_images, _ = load(build(tmp_path, "clean", [prod]))
    extra.mkdir()
    files, rows = _damage(prod, extra)
    damaged, images, manifest = load(build(tmp_path, "damaged", [prod, extra], chunks=2))
    skipped = {s["path"]: s["reason"] for s in manifest["skipped_files"]}
    assert set(skipped) == set(files)
    for path, reason in files.items():
        assert reason in skipped[path], (path, skipped[path])
    skipped_rows = {
        (r["basename"], r["event"], r["match_id"]): r["reason"] for r in manifest["skipped_rows"]
    }
    assert set(skipped_rows) == set(rows)
    for key, reason in rows.items():
        assert reason in skipped_rows[key]
    stderr = capsys.readouterr().err
    assert "empty file" in stderr and "missing plane file" in stderr
    # untouched basenames and the surviving rows of basenames 5 and 6 are exactly as before
    lost = clean["basename"].isin({_basename(i) for i in range(5)})
    key = list(zip(clean["basename"], clean["event"], clean["match_id"], strict=True))
    lost |= pd.Series([k in rows for k in key])
    assert not damaged["basename"].isin({_basename(i) for i in range(5)}).any()
    expected = clean[~lost].drop(columns="rank").reset_index(drop=True)
    pd.testing.assert_frame_equal(expected, damaged.drop(columns="rank"))
    np.testing.assert_array_equal(clean_images[~lost.to_numpy()], images)


def test_strict_fails_naming_the_file(tmp_path, capsys):
    prod = tmp_path / "prod"
    make_production(prod, range(3))
    (prod / f"{_basename(1)}_planeX.npz").write_bytes(b"")
    status = run(
        "chunk", "--inputs", prod, "--chunk", 0, "--chunks", 1, "--out", tmp_path / "c", "--strict"
    )
    assert status == 1 and not (tmp_path / "c" / "chunk.json").exists()
    err = capsys.readouterr().err
    assert f"{_basename(1)}_planeX.npz: empty file" in err
    assert run("chunk", "--inputs", prod, "--chunk", 0, "--chunks", 1, "--out", tmp_path / "c") == 0
    args = ["assemble", "--chunks", tmp_path / "c", "--out", tmp_path / "d", "--test-fraction", 0.2]
    assert run(*args, "--strict") == 1 and not (tmp_path / "d").exists()
    assert run(*args) == 0


def test_bad_invocations_exit_2_with_a_message(tmp_path, capsys):
    assert (
        run(
            "chunk",
            "--inputs",
            tmp_path / "nope",
            "--chunk",
            0,
            "--chunks",
            1,
            "--out",
            tmp_path / "c",
        )
        == 2
    )
    assert "input directory not found" in capsys.readouterr().err
    make_production(tmp_path / "p", range(2))
    assert (
        run(
            "chunk",
            "--inputs",
            tmp_path / "p",
            "--chunk",
            0,
            "--chunks",
            2,
            "--out",
            tmp_path / "c0",
        )
        == 0
    )
    args = [
        "assemble",
        "--chunks",
        tmp_path / "c0",
        "--out",
        tmp_path / "d",
        "--test-fraction",
        0.2,
    ]
    assert run(*args) == 2
    assert "missing [1]" in capsys.readouterr().err


def test_assemble_refuses_damaged_chunks_naming_them(tmp_path, capsys):
    make_production(tmp_path / "p", range(6))
    build(tmp_path, "ds", [tmp_path / "p"], chunks=2)
    chunks = [tmp_path / f"ds_chunk{i}" for i in range(2)]
    args = ["assemble", "--chunks", *chunks, "--out", tmp_path / "out", "--test-fraction", 0.2]

    def refused(damage, message):
        for d in chunks:  # fresh copies of the good chunks
            shutil.rmtree(d.with_name(d.name + "_bad"), ignore_errors=True)
            shutil.copytree(d, d.with_name(d.name + "_bad"))
        damage(*(d.with_name(d.name + "_bad") for d in chunks))
        bad_args = [a.with_name(a.name + "_bad") if a in chunks else a for a in args]
        assert run(*bad_args) == 2
        err = capsys.readouterr().err
        assert re.search(message, err) and "ds_chunk" in err, err

    def swap_tables(a, b):
        (a / "samples.npz").rename(a / "tmp")
        (b / "samples.npz").rename(a / "samples.npz")
        (a / "tmp").rename(b / "samples.npz")

    def truncate_table(a, _):
        (a / "samples.npz").write_bytes((a / "samples.npz").read_bytes()[:100])

    def drop_images(a, _):
        np.save(a / "images.npy", np.zeros((1, 3, *SHAPE), dtype=np.float16))

    def repeat_basename(a, _):
        with np.load(a / "samples.npz") as f:
            columns = dict(f)
        assert len(columns["basenames"]) > 1
        columns["basenames"][1] = columns["basenames"][0]
        np.savez(a / "samples.npz", **columns)

    refused(swap_tables, "rows, |not in dataset order")  # another chunk's table
    refused(truncate_table, "not a chunk table")
    refused(drop_images, "expected float16")
    refused(repeat_basename, "not in dataset order")
    assert not (tmp_path / "out").exists()


def _refused_dataset(tmp_path, capsys, inputs, extra=()):
    """Chunk (succeeds) and assemble ``inputs``; assembly must refuse: its stderr."""
    chunk_dirs = [tmp_path / f"c{i}" for i in range(2)]
    for i, d in enumerate(chunk_dirs):
        argv = ["chunk", "--inputs", *inputs, "--chunk", i, "--chunks", 2, "--out", d, *extra]
        assert run(*argv) == 0
    out = tmp_path / "ds"
    capsys.readouterr()
    assert run("assemble", "--chunks", *chunk_dirs, "--out", out, "--test-fraction", 0.2) == 2
    assert not (out / "manifest.json").exists()
    return capsys.readouterr().err


def test_empty_folder_is_refused_naming_it(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    err = _refused_dataset(tmp_path, capsys, [tmp_path / "empty"])
    assert f"no samples: 0 basenames found in the inputs ({tmp_path / 'empty'})" in err


def test_folder_without_plane_files_is_refused_naming_it(tmp_path, capsys):
    make_production(tmp_path / "parent" / "prod", range(2))  # the production's parent folder
    (tmp_path / "parent" / "notes.txt").write_text("not a plane file")
    err = _refused_dataset(tmp_path, capsys, [tmp_path / "parent"])
    assert f"no samples: 0 basenames found in the inputs ({tmp_path / 'parent'})" in err


def test_energy_window_that_keeps_nothing_names_the_cut_and_counts(tmp_path, capsys):
    make_production(tmp_path / "p", range(3))  # cluster energies 2–40 MeV
    err = _refused_dataset(tmp_path, capsys, [tmp_path / "p"], extra=["--energy-min", "45"])
    # per basename: 5 + 1 unmatched main-track X rows and 2 noise rows, all MARLEY and ES
    chain = "3 basenames → 24 X rows → 18 main-track → 18 MARLEY → 18 ES → 0 with energy ≥ 45.0 MeV"
    assert f"no samples: {chain}: 'with energy ≥ 45.0 MeV' removed the last ones" in err
    assert f"(inputs: {tmp_path / 'p'})" in err


def test_chunk_refuses_an_empty_energy_window(tmp_path, capsys):
    argv = ["chunk", "--inputs", tmp_path, "--chunk", 0, "--chunks", 1, "--out", tmp_path / "c"]
    assert run(*argv, "--energy-min", 30, "--energy-max", 10) == 2
    assert "--energy-min 30.0 ≥ --energy-max 10.0" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
