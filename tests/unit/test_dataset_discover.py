"""Finding plane files in both layouts, chunk assignment, the images.npy writer, file checks."""

import errno
import fcntl
import os

import numpy as np
import pytest

from edtrain.dataset.discover import chunk_listings, chunk_of, dataset_order, discover
from edtrain.dataset.extract import BadFile, extract
from edtrain.dataset.image_files import (
    IMAGE_DTYPE,
    SAMPLE_SHAPE,
    ImageWriter,
)
from edtrain.dataset.match import Cuts
from edtrain.formats import columns as col
from edtrain.formats.npz import write_plane_npz


def _touch(path, plane="X", rows=2, value=1.0):
    """A small valid plane file whose rows form matching main-track triplets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = np.zeros((rows, 14), dtype=np.float32)
    meta[:, col.EVENT] = np.arange(rows) + 10
    meta[:, col.MATCH_ID] = np.arange(rows)
    meta[:, [col.IS_MAIN_TRACK, col.IS_MARLEY, col.IS_ES]] = 1
    meta[:, col.MOM] = (0, 0, 1)
    meta[:, col.PLANE] = col.PLANE_ID[plane]
    write_plane_npz(path, np.full((rows, 128, 32), value, dtype=np.float32), meta)


def test_both_layouts_group_by_basename(tmp_path):
    for p in col.PLANES:
        _touch(tmp_path / "flat" / f"a_plane{p}.npz", p)
        _touch(tmp_path / "split" / p / f"b_plane{p}.npz", p)
    (tmp_path / "flat" / "notes.txt").write_text("ignored")
    sources, skips = discover([str(tmp_path / "split"), str(tmp_path / "flat")])
    assert [s.basename for s in sources] == ["a", "b"] and skips == []
    assert sources[1].planes["V"] == str(tmp_path / "split" / "V" / "b_planeV.npz")


def test_misplaced_and_doubled_plane_files_are_reported(tmp_path):
    for p in col.PLANES:
        _touch(tmp_path / p / f"a_plane{p}.npz", p)
    _touch(tmp_path / "U" / "c_planeV.npz", "V")  # a V file in the U folder
    _touch(tmp_path / "a_planeX.npz")  # X both flat and in X/
    sources, skips = discover([str(tmp_path)])
    reasons = {s.path: s.reason for s in skips}
    assert sources == []
    assert reasons[str(tmp_path / "U" / "c_planeV.npz")] == "plane V file in the U/ folder"
    assert any("found twice" in r for r in reasons.values())


def test_missing_input_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="input directory not found"):
        discover([str(tmp_path / "nope")])


def test_chunks_are_stable_when_a_production_grows_and_are_ranges_of_the_order():
    names = [f"file_{i:04d}" for i in range(400)]
    small, large = chunk_of(names[:150], 8), chunk_of(names, 8)
    np.testing.assert_array_equal(small, large[:150])
    assert set(large) == set(range(8))
    ordered = [names[i] for i in dataset_order(names)]
    for chunks in (1, 3, 8):
        assert (np.diff(chunk_of(ordered, chunks)) >= 0).all()


def test_a_new_file_changes_the_listing_of_its_chunk_only(tmp_path):
    for i in range(12):
        _touch(tmp_path / f"b{i}_planeX.npz")
    before = chunk_listings([str(tmp_path)], 4)
    _touch(tmp_path / "new_planeX.npz")
    after = chunk_listings([str(tmp_path)], 4)
    (chunk,) = chunk_of(["new"], 4)
    assert [b != a for b, a in zip(before, after, strict=True)] == [k == chunk for k in range(4)]


def test_plane_id_column_must_match_the_file(tmp_path):
    for p in col.PLANES:
        _touch(tmp_path / f"a_plane{p}.npz", "U" if p == "V" else p)
    (source,), _ = discover([str(tmp_path)])
    with pytest.raises(BadFile, match="plane-id column holds 0 in a V-plane file"):
        extract(source, Cuts())


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (7e4, "pixel beyond the float16 range in the V plane"),
        (-7e4, "pixel beyond the float16 range in the V plane"),
        (np.nan, "non-finite pixels in the V plane"),
        (-np.inf, "non-finite pixels in the V plane"),
    ],
)
def test_unstorable_pixels_skip_the_sample_with_a_reason(tmp_path, value, reason):
    for p in col.PLANES:
        _touch(tmp_path / f"a_plane{p}.npz", p, value=value if p == "V" else 1.0)
    (source,), _ = discover([str(tmp_path)])
    found = extract(source, Cuts())
    assert len(found.images) == 0 and found.counts["samples"] == 0
    assert {r.reason for r in found.skipped_rows} == {reason}


@pytest.mark.parametrize("direct", [True, False, "refused"])
def test_image_writer_appends_and_np_load_reads_it(tmp_path, monkeypatch, direct):
    refused = []
    if direct == "refused":  # a file system that accepts O_DIRECT at open, not at the write
        pwrite = os.pwrite

        def refusing(fd: int, data, offset: int) -> int:
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
                refused.append(offset)
                raise OSError(errno.EINVAL, "Invalid argument")
            return pwrite(fd, data, offset)

        monkeypatch.setattr(os, "pwrite", refusing)
    path = str(tmp_path / "images.npy")
    blocks = [np.full((n, *SAMPLE_SHAPE), n, dtype=IMAGE_DTYPE) for n in (3, 0, 600)]
    with ImageWriter(path, direct=bool(direct)) as writer:
        for block in blocks:
            writer.append(block)
    images = np.load(path, mmap_mode="r")
    assert images.shape == (603, *SAMPLE_SHAPE) and images.dtype == IMAGE_DTYPE
    np.testing.assert_array_equal(images[:, 0, 0, 0], [3] * 3 + [600] * 600)
    assert len(refused) == (direct == "refused")  # refused once, then buffered
    with pytest.raises(ValueError, match="float16"):
        ImageWriter(str(tmp_path / "bad.npy")).append(np.zeros((1, 3, 128, 16), IMAGE_DTYPE))


def test_image_writer_leaves_nothing_behind_on_error(tmp_path):
    path = tmp_path / "images.npy"
    with pytest.raises(RuntimeError), ImageWriter(str(path)) as writer:
        writer.append(np.zeros((1, *SAMPLE_SHAPE), dtype=IMAGE_DTYPE))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_cluster_files_are_sources_unless_npz_files_have_the_basename(tmp_path):
    for p in col.PLANES:
        _touch(tmp_path / f"a_plane{p}.npz", p)
    (tmp_path / "a.root").write_bytes(b"x")
    (tmp_path / "b.root").write_bytes(b"x")
    sources, skips = discover([str(tmp_path)])
    assert [(s.basename, s.cluster_file) for s in sources] == [
        ("a", None),
        ("b", str(tmp_path / "b.root")),
    ]
    assert [(s.path, s.reason) for s in skips] == [
        (str(tmp_path / "a.root"), f"duplicate basename, already read from {tmp_path}")
    ]
