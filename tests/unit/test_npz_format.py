"""Plane npz files: upstream's np.savez layout, header-only opening, row reads, clear rejections."""

import zipfile

import numpy as np
import pytest

from edtrain.formats.npz import (
    NpzFormatError,
    open_plane_npz,
    read_image_rows,
    read_metadata,
    write_plane_npz,
)
from edtrain.formats.range_file import LocalFile


def _plane(rows=20, width=14, shape=(128, 32), seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(100, 30, size=(rows, *shape)).astype(np.float32)
    metadata = rng.normal(size=(rows, width)).astype(np.float32)
    return images, metadata


@pytest.mark.parametrize("width", [14, 18])
def test_written_file_is_what_np_load_reads(tmp_path, width):
    images, metadata = _plane(width=width)
    path = tmp_path / "a_planeX.npz"
    write_plane_npz(path, images, metadata)
    assert path.exists() and not (tmp_path / "a_planeX.npz.npz").exists()
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["images", "metadata"]
        np.testing.assert_array_equal(npz["images"], images)
        np.testing.assert_array_equal(npz["metadata"], metadata)
    with zipfile.ZipFile(path) as zf:  # uncompressed, as np.savez writes it
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_rows_read_at_their_offsets_match_a_full_load(tmp_path):
    images, metadata = _plane(rows=50, width=18)
    path = str(tmp_path / "a_planeU.npz")
    write_plane_npz(path, images, metadata)
    plane = open_plane_npz(path)
    assert (plane.rows, plane.width) == (50, 18)
    np.testing.assert_array_equal(read_metadata(plane), metadata)
    rows = np.array([49, 3, 3, 17, 0])
    np.testing.assert_array_equal(read_image_rows(plane, rows), images[rows])
    assert read_image_rows(plane, np.array([], dtype=int)).shape == (0, 128, 32)


def test_reads_two_header_windows_and_then_only_the_rows_used(tmp_path):
    images, metadata = _plane(rows=64)
    path = str(tmp_path / "a_planeV.npz")
    write_plane_npz(path, images, metadata)
    file = LocalFile(path)
    plane = open_plane_npz(file)
    headers = file.bytes_read
    assert headers <= 2 * 16 * 1024 < plane.size  # the zip directory and metadata come with them
    one_row = 128 * 32 * 4
    np.testing.assert_array_equal(
        read_image_rows(plane, np.array([41, 5, 40])), images[[41, 5, 40]]
    )
    assert file.bytes_read - headers == 3 * one_row
    read_image_rows(plane, np.array([7, 7]))
    assert file.bytes_read - headers == 4 * one_row
    with pytest.raises(IndexError, match=r"a_planeV\.npz"):
        read_image_rows(plane, np.array([64]))


def test_a_file_cut_after_opening_is_an_os_error_naming_it(tmp_path):
    path = tmp_path / "a_planeX.npz"
    write_plane_npz(path, *_plane(rows=30))
    plane = open_plane_npz(str(path))
    path.write_bytes(path.read_bytes()[:4096])
    with pytest.raises(OSError, match="truncated") as err:
        read_image_rows(plane, np.array([20]))
    assert err.value.filename == str(path)


def _reason(path):
    with pytest.raises(NpzFormatError) as err:
        open_plane_npz(str(path))
    return str(err.value)


def test_rejections_name_the_reason(tmp_path):
    empty = tmp_path / "empty_planeX.npz"
    empty.write_bytes(b"")
    assert "empty file" in _reason(empty)

    good = tmp_path / "good_planeX.npz"
    write_plane_npz(good, *_plane())
    truncated = tmp_path / "cut_planeX.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "truncated" in _reason(truncated)

    nov10 = tmp_path / "nov10_planeX.npz"
    write_plane_npz(nov10, *_plane(shape=(128, 16)))
    assert "128×16" in _reason(nov10)

    narrow = tmp_path / "narrow_planeX.npz"
    write_plane_npz(narrow, *_plane(width=13))
    assert "metadata width 13" in _reason(narrow)

    compressed = tmp_path / "zipped_planeX.npz"
    images, metadata = _plane()
    np.savez_compressed(compressed, images=images, metadata=metadata)
    assert "compressed" in _reason(compressed)

    other_keys = tmp_path / "keys_planeX.npz"
    np.savez(other_keys, images=images, meta=metadata)
    assert "expected exactly" in _reason(other_keys)

    uneven = tmp_path / "uneven_planeX.npz"
    np.savez(uneven, images=images, metadata=metadata[:-1])
    assert "metadata rows" in _reason(uneven)


def test_writer_refuses_unequal_row_counts(tmp_path):
    images, metadata = _plane()
    with pytest.raises(ValueError, match="metadata rows"):
        write_plane_npz(tmp_path / "x_planeX.npz", images, metadata[:3])


@pytest.mark.parametrize("variant", ["zip64", "comment", "large metadata"])
def test_zip_layouts_of_other_writers_read_the_same(tmp_path, monkeypatch, variant):
    images, metadata = _plane(rows=2000 if variant == "large metadata" else 20, width=18)
    path = tmp_path / "v_planeX.npz"
    if variant == "zip64":  # every size and offset past the limit: zip64 records and extras
        monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1024)
    with zipfile.ZipFile(path, "w") as zf:  # as np.savez writes, but for the variant
        for name, array in (("images", images), ("metadata", metadata)):
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array)
        if variant == "comment":  # pushes the zip directory out of the last 16 KiB
            zf.comment = b"c" * 40_000
    monkeypatch.undo()
    if variant == "zip64":  # the end record defers to the zip64 one, as large archives do
        data = bytearray(path.read_bytes())
        data[-6:-2] = b"\xff" * 4  # the directory's offset
        path.write_bytes(bytes(data))
    with np.load(path) as npz:  # what numpy itself makes of it
        np.testing.assert_array_equal(npz["metadata"], metadata)
    plane = open_plane_npz(str(path))
    np.testing.assert_array_equal(read_metadata(plane), metadata)
    rows = np.array([0, 7, 19])
    np.testing.assert_array_equal(read_image_rows(plane, rows), images[rows])
