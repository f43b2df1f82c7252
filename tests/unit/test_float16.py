"""The float32 → float16 image cast and the local-file row reader: kernel and numpy agree."""

import errno
import os

import numpy as np
import pytest

from edtrain.dataset import float16
from edtrain.dataset.float16 import (
    BEYOND_RANGE,
    FITS,
    NON_FINITE,
    numpy_to_float16,
    read_plane_rows,
    to_float16,
)
from edtrain.dataset.image_files import IMAGE_DTYPE, SAMPLE_SHAPE
from edtrain.formats.npz import open_plane_npz, write_plane_npz

PATHS = ["kernel", "numpy"]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """Run the test on the F16C kernel and on numpy alone."""
    if request.param == "kernel" and not float16.F16C:
        pytest.skip("no F16C kernel here")
    monkeypatch.setattr(float16, "F16C", request.param == "kernel")
    return request.param


def _samples(n=6, seed=1):  # n ≥ 6
    """Sparse images with awkward values, and the code each (sample, plane) must get."""
    rng = np.random.default_rng(seed)
    raw = np.zeros((n, *SAMPLE_SHAPE), dtype=np.float32)
    raw[:, :, 40:90:3, 5:12] = rng.uniform(-3000, 3000, size=(n, 3, 17, 7))
    special = [6.1e-5, 5.9e-8, 3e-8, -0.0, 2049.0, 65504.0, 65519.0, 1e-45]
    raw[0, 1, 127, : len(special)] = special  # subnormal, ties, the largest float16 values
    raw[1].reshape(-1)[::97] = rng.integers(0, 2**32, size=127, dtype=np.uint32).view(np.float32)
    raw[1] = np.where(np.abs(raw[1]) < 6e4, raw[1], 1.0)  # any bit pattern float16 can hold
    raw[2, 2, 7, 31] = 65520.0  # rounds to infinity
    raw[3, 0, 64, 0] = np.nan
    raw[4, 1, 0, 0] = -np.inf
    raw[5, 2, 3, 3] = 7e4
    raw[5, 2, 9, 9] = np.inf  # both problems: non-finite is the one named
    codes = np.full((n, 3), FITS, dtype=np.uint8)
    codes[2, 2] = codes[5, 2] = BEYOND_RANGE
    codes[3, 0] = codes[4, 1] = codes[5, 2] = NON_FINITE
    return raw, codes


def _numpy_cast(raw):
    with np.errstate(over="ignore", invalid="ignore"):
        return raw.astype(np.float16).view(np.uint16)


def test_cast_is_numpys_and_codes_what_float16_cannot_hold(path):
    raw, codes = _samples()
    out = np.empty(raw.shape, dtype=IMAGE_DTYPE)
    np.testing.assert_array_equal(to_float16(raw, out), codes)
    np.testing.assert_array_equal(out.view(np.uint16), _numpy_cast(raw))


def test_cast_into_one_plane_of_samples(path):
    """``out`` may be strided, as ``images[:, k]`` is; the other planes stay untouched."""
    raw, codes = _samples()
    out = np.full(raw.shape, 7, dtype=IMAGE_DTYPE)
    np.testing.assert_array_equal(to_float16(raw[:, 2], out[:, 2]), codes[:, 2])
    np.testing.assert_array_equal(out[:, 2].view(np.uint16), _numpy_cast(raw[:, 2]))
    assert (out[:, :2] == 7).all()
    assert to_float16(raw[:0, 0], out[:0, 0]).shape == (0,)


def test_cast_refuses_an_output_that_does_not_fit():
    raw = _samples()[0][:2]
    with pytest.raises(ValueError, match=r"out is float16 \(2, 3, 128, 16\)"):
        to_float16(raw, np.empty((2, 3, 128, 16), dtype=IMAGE_DTYPE))
    with pytest.raises(ValueError, match="out is float32"):
        to_float16(raw, raw.copy())


def _plane_file(tmp_path, raw):
    path = tmp_path / "a_planeU.npz"
    write_plane_npz(path, raw, np.zeros((len(raw), 14), dtype=np.float32))
    return path


def test_plane_rows_read_straight_into_float16(path, tmp_path):
    raw, codes = _samples(12, seed=3)
    images = raw.reshape(-1, *SAMPLE_SHAPE[1:])  # 36 images, one plane file
    plane = open_plane_npz(str(_plane_file(tmp_path, images)))
    rows = np.array([35, 2, 9, 10, 11, 2, 15, 0])  # unordered, repeated, adjacent
    out = np.zeros((len(rows), *SAMPLE_SHAPE), dtype=IMAGE_DTYPE)
    got = read_plane_rows(plane, rows, out[:, 1])
    np.testing.assert_array_equal(got, codes.reshape(-1)[rows])
    np.testing.assert_array_equal(out[:, 1].view(np.uint16), _numpy_cast(images[rows]))
    assert not out[:, [0, 2]].any()
    assert plane.file.bytes_read > len(rows) * images[0].nbytes
    with pytest.raises(IndexError, match=r"a_planeU\.npz: row outside 0\.\.35"):
        read_plane_rows(plane, np.array([36]), out[:1, 0])


def test_a_file_cut_short_after_opening_is_named(path, tmp_path):
    raw, _ = _samples()
    file = _plane_file(tmp_path, raw[:4].reshape(-1, *SAMPLE_SHAPE[1:]))
    plane = open_plane_npz(str(file))
    os.truncate(file, plane.images.offset + 5 * plane.images.nbytes // 12)
    out = np.empty((2, *SAMPLE_SHAPE[1:]), dtype=IMAGE_DTYPE)
    read_plane_rows(plane, np.array([1, 4]), out)  # still there
    with pytest.raises(OSError, match="truncated") as caught:
        read_plane_rows(plane, np.array([1, 5]), out)
    assert caught.value.errno == errno.EIO and caught.value.filename == str(file)


def test_f16c_kernel_is_built_and_used_where_the_cpu_has_it():
    """CI has a C compiler, so there the kernel must have been built; elsewhere it may not."""
    if float16._float16 is None:
        if os.environ.get("CI"):
            pytest.fail("the F16C kernel (edtrain.dataset._float16) was not built at install")
        pytest.skip("the F16C kernel was not built here (no C compiler at install)")
    flags = set()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    assert float16.F16C == ({"avx", "f16c"} <= flags)


def test_f16c_kernel_refuses_buffers_that_do_not_fit():
    if not float16.F16C:
        pytest.skip("no F16C kernel here")
    kernel = float16._float16
    f4, f2 = np.zeros((2, 16), np.float32), np.zeros((2, 16), np.float16)
    with pytest.raises(TypeError, match="src must hold format 'f', not 'd'"):
        kernel.cast(np.zeros((2, 16)), f2)
    with pytest.raises(TypeError, match="dst must hold format 'e', not 'h'"):
        kernel.cast(f4, np.zeros((2, 16), np.int16))
    with pytest.raises(ValueError, match="src holds 32 values, dst 16"):
        kernel.cast(f4, f2[:1])
    with pytest.raises(ValueError, match="multiple of 8 values"):
        kernel.cast(np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float16))
    with pytest.raises(ValueError, match=r"rows .* must be C-contiguous"):
        kernel.cast(f4, np.zeros((2, 32), np.float16)[:, ::2])
    with pytest.raises(BufferError, match="not writable"):
        kernel.cast(f4, bytes(64))
    with pytest.raises(TypeError, match="offsets must hold format 'q', not 'i'"):
        kernel.pread_rows(0, np.zeros(2, np.int32), f2)
    with pytest.raises(ValueError, match="1 offsets for 2 rows"):
        kernel.pread_rows(0, np.zeros(1, np.int64), f2)
    with pytest.raises(OSError) as caught:
        kernel.pread_rows(-1, np.zeros(2, np.int64), f2)
    assert caught.value.errno == errno.EBADF


def test_numpy_path_alone_on_images():
    raw, codes = _samples()
    out = np.empty((18, *SAMPLE_SHAPE[1:]), dtype=IMAGE_DTYPE)
    got = numpy_to_float16(raw.reshape(out.shape), out)
    np.testing.assert_array_equal(got, codes.reshape(-1))
    assert numpy_to_float16(raw[:0, 0], out[:0]).shape == (0,)
