"""The face-consistent label frame: twin tracks on both drift faces render identically when their
labels agree in the face frame, and the map back to the detector frame is exact (frame.reflect).

A straight track on the x < 0 face and its mirror twin on the x > 0 face (direction with y
negated) are digitised through the channel map and the drift time, rendered with the
``consistent`` flips and compared pixel for pixel. Wire and sample quantization only agree when
the twin's start point sits on the mirror image of the first track's grid, so the twin's start
is constructed for that and the quantized sequences are checked before the images are.
"""

from __future__ import annotations

import numpy as np
import pytest

from edtrain import detector
from edtrain.frame import FRAMES, reflect
from edtrain.losses import plane_projections
from edtrain.render import orientation_flips, render_clusters

STEP_CM = 0.02
LENGTH_CM = 2.0
T = np.arange(round(LENGTH_CM / STEP_CM) + 1) * STEP_CM  # path length of the sampled points
# Face −1, APA 1, mid-height; z off-centre so that the twin can sit ~160 cm away in z (m = −335),
# where the U/V wire grids of the two faces line up best (see _twin_starts).
START_NEAR = np.array([-100.03, 300.11, 200.123])
ADC_PEAK = 200.0
MARGIN_CM = 3.0  # keeps every track away from the APA's edges
SPLITS = np.linspace(0.0, 1.0, 9)  # shares of the U/V grid mismatch given to U

DIRECTIONS = [(0.3, 0.6, 0.74), (-0.5, -0.4, 0.77), (0.2, 0.5, -0.84), (0.6, -0.7, -0.39)]


def _unit(d) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    return d / np.linalg.norm(d)


def _digitise(
    start: np.ndarray, direction: np.ndarray, path: np.ndarray = T
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per plane, (channel, sample) of every point of the track (at these path lengths)."""
    x, y, z = start[:, None] + path[None, :] * direction[:, None]
    out = {}
    for plane in detector.PLANES:
        channel = detector.plane_channel(plane, x, y, z)
        sample = (
            np.floor(detector.drift_samples(x)).astype(np.int64)
            + detector.PLANE_TIME_OFFSET_SAMPLES[plane]
        )
        out[plane] = (channel, sample)
    return out


def _render(channel: np.ndarray, sample: np.ndarray, plane: str, side: int) -> np.ndarray:
    """One cluster: a 1-sample TP per unique (channel, sample) pixel, consistent flips."""
    pixels = np.unique(np.stack([channel, sample], axis=1), axis=0)
    n = len(pixels)
    ones = np.ones(n)
    flip_time, flip_channel = orientation_flips(plane, np.array([side]), np.array([0]))
    return render_clusters(
        pixels[:, 0],
        pixels[:, 1] * detector.TICKS_PER_SAMPLE,
        ones,  # SoT 1: the TP renders as its peak alone, symmetric under a time flip
        np.zeros(n),
        ADC_PEAK * ones,
        ADC_PEAK * ones,
        np.array([0, n]),
        plane,
        flip_time,
        flip_channel,
    )[0]


def _crop(image: np.ndarray) -> np.ndarray:
    """The image cut to its nonzero bounding box (centring can shift a flipped image by one)."""
    rows, cols = np.nonzero(image)
    assert rows.size, "empty image"
    return image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _images(
    start: np.ndarray, direction: np.ndarray, side: int, path: np.ndarray = T
) -> dict[str, np.ndarray]:
    digits = _digitise(start, direction, path)
    return {p: _crop(_render(*digits[p], p, side)) for p in detector.PLANES}


def _mirrored(near: dict, far: dict) -> dict[str, bool]:
    """Whether the far-face quantization is the mirror image of the near face's, per plane:
    samples mirrored (the time flip reverses rows), U/V channels mirrored (their wires wrap),
    X channels shifted by a constant onto the other face's wires (same order, no channel flip)."""
    ok = {}
    for plane in detector.PLANES:
        (c_near, s_near), (c_far, s_far) = near[plane], far[plane]
        samples = np.unique(s_near + s_far).size == 1
        if plane == "X":
            channels = np.unique(c_far - c_near).size == 1
        else:
            channels = np.unique(c_near + c_far).size == 1
        ok[plane] = bool(samples and channels)
    return ok


def _twin_starts(start: np.ndarray):
    """Candidate x > 0 start points whose wire/sample grids (nearly) mirror those of ``start``
    (x < 0), best first.

    Time: rows run along −x on both faces after the flip, so |x| of the twin sits at the
    complementary fraction of a sample (|x_near| + |x_far| a whole number of samples): exact.
    X: z is shifted by m whole pitches: exact. U/V: the wire coordinate w = unrolled·cos θ ∓
    y·sin θ (unrolled = z on the x < 0 face, W − z on the x > 0 face) needs w_near + w_far ≡ 0
    (mod pitch) on both planes. With S = (W − m·pitch_X)·cos θ and Y = y_near + y_far that is
    S ∓ Y·sin θ ≡ 0, so 2S ≡ 0, which m can only approximate: 2·pitch_X·cos θ / pitch ≈ 1.6663
    is close to 5/3, so within |m| ≲ 230 the best miss is ~4 % of a pitch, while m = −335 misses
    by 0.05 % (hence the near start's z). Y is then solved for a split λ of the leftover ε
    between U and V. A candidate is a twin when no sampled
    point falls in the leftover slivers, which :func:`_twin` checks on the digitised tracks.
    """
    cps, pitch, pitch_x = detector.CM_PER_SAMPLE, detector.PITCH_CM["U"], detector.PITCH_CM["X"]
    width, sin = detector.APA_WIDTH_CM, np.sin(np.radians(detector.WIRE_ANGLE_DEG))
    x_far = round(2 * abs(start[0]) / cps) * cps - abs(start[0])
    m = np.arange(-detector.COLLECTION_WIRES_PER_FACE, detector.COLLECTION_WIRES_PER_FACE)
    z_far = start[2] + m * pitch_x
    fits = (z_far > MARGIN_CM) & (z_far < width - MARGIN_CM)
    m, z_far = m[fits], z_far[fits]
    two_s = 2 * (width - m * pitch_x) * np.cos(np.radians(detector.WIRE_ANGLE_DEG)) / pitch
    q = np.round(two_s)
    eps = two_s - q
    target = 4 * start[1] * sin / pitch  # 2·Y·sin θ / pitch for y_far = y_near
    for i in np.argsort(np.abs(eps), kind="stable"):
        # 2·Y·sin θ / pitch = k + (1 − 2λ)·ε with k ≡ q (mod 2): U misses by λε, V by (1 − λ)ε.
        k = q[i] + 2 * np.round((target - q[i]) / 2)
        for split in SPLITS:
            y_far = (k + (1 - 2 * split) * eps[i]) * pitch / (2 * sin) - start[1]
            if MARGIN_CM < y_far < detector.APA_HEIGHT_CM - MARGIN_CM:
                yield np.array([x_far, y_far, z_far[i]])


def _twin(d: np.ndarray):
    """(far start, mirrored direction) of the twin of the track (START_NEAR, d): the first
    candidate whose digitised wire/sample sequences mirror the near track's on every plane."""
    d_twin = d * np.array([1.0, -1.0, 1.0])
    near = _digitise(START_NEAR, d)
    for start_far in _twin_starts(START_NEAR):
        if all(_mirrored(near, _digitise(start_far, d_twin)).values()):
            return start_far, d_twin
    pytest.fail(f"no twin start with mirror-symmetric wire/sample quantization for d = {d}")


@pytest.mark.parametrize("d", DIRECTIONS)
def test_twin_labels_agree_in_the_face_frame_only(d):
    d = _unit(d)
    d_twin = d * np.array([1.0, -1.0, 1.0])
    near = reflect(d[None], np.array([-1]), "face")
    far = reflect(d_twin[None], np.array([1]), "face")
    np.testing.assert_array_equal(far, near)
    assert not np.array_equal(
        reflect(d_twin[None], np.array([1]), "detector"),
        reflect(d[None], np.array([-1]), "detector"),
    )


@pytest.mark.parametrize("d", DIRECTIONS)
def test_twins_on_both_faces_render_the_same_images(d):
    d = _unit(d)
    start_far, d_twin = _twin(d)
    near = _digitise(START_NEAR, d)
    far = _digitise(start_far, d_twin)
    mirrored = _mirrored(near, far)
    assert all(mirrored.values()), (
        f"precondition: the twin's wire/sample quantization mirror the near track's {mirrored}"
    )
    assert np.all(far["X"][0] >= detector.X_FACE_SPLIT) and np.all(
        near["X"][0] < detector.X_FACE_SPLIT
    )
    images_near = _images(START_NEAR, d, side=-1)
    images_far = _images(start_far, d_twin, side=1)
    for plane in detector.PLANES:
        rows, cols = images_near[plane].shape
        assert rows > 1 and cols > 1, f"{plane}: a track this short tests no flip"
        np.testing.assert_array_equal(images_far[plane], images_near[plane], err_msg=plane)


@pytest.mark.parametrize("d", DIRECTIONS)
def test_the_detector_frame_gives_one_image_two_labels(d):
    """The same detector-frame direction on the x > 0 face: X unchanged, U/V different."""
    d = _unit(d)
    start_far, _ = _twin(d)
    images_near = _images(START_NEAR, d, side=-1)
    images_same = _images(start_far, d, side=1)
    np.testing.assert_array_equal(images_same["X"], images_near["X"])
    for plane in ("U", "V"):
        differ = images_same[plane].shape != images_near[plane].shape or not np.array_equal(
            images_same[plane], images_near[plane]
        )
        assert differ, f"{plane}: the same detector-frame direction rendered the same image"


def test_predictions_map_back_to_the_detector_frame_exactly():
    rng = np.random.default_rng(15)
    p = rng.normal(size=(1000, 3)).astype(np.float32)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    side = rng.choice(np.array([-1, 1]), size=len(p))
    before = p.copy()
    face = reflect(p, side, "face")
    assert face.dtype == np.float32 and face is not p
    np.testing.assert_array_equal(face[:, 1], p[:, 1] * side)
    np.testing.assert_array_equal(face[:, [0, 2]], p[:, [0, 2]])
    back = reflect(face, side, "face")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.view(np.uint32), p.view(np.uint32))
    detector_frame = reflect(p, side, "detector")
    np.testing.assert_array_equal(detector_frame.view(np.uint32), p.view(np.uint32))
    np.testing.assert_array_equal(p.view(np.uint32), before.view(np.uint32))  # input untouched
    assert set(FRAMES) == {"detector", "face"}


@pytest.mark.parametrize(
    ("side", "frame"),
    [
        (np.array([1, 0]), "face"),
        (np.array([1, 2]), "face"),
        (np.array([1.0, -0.5]), "face"),
        (np.array([1]), "face"),  # one side for two directions
        (np.array([1, -1]), "Face"),
        (np.array([1, -1]), "upstream"),
    ],
)
def test_reflect_rejects_bad_sides_and_frames(side, frame):
    with pytest.raises(ValueError):
        reflect(np.ones((2, 3), dtype=np.float32), side, frame)


@pytest.mark.parametrize("d", DIRECTIONS)
@pytest.mark.parametrize("side", [-1, 1])
def test_each_plane_draws_the_face_frame_projection(d, side):
    """The planes' 2-D directions that plane supervision trains towards
    (losses.plane_projections of the face-frame label) lie along the tracks the renderer
    draws, on both faces; with U's and V's column axes exchanged they do not."""
    d = _unit(d)
    start = START_NEAR * np.array([-side, 1.0, 1.0])
    path = np.arange(0.0, 8.0, STEP_CM)  # 8 cm: enough wires for the axis to be measured
    images = _images(start, d, side, path)
    label = reflect(d[None], np.array([side]), "face")
    expected = np.asarray(plane_projections(label))[0]  # (3 planes, 2)
    swapped = expected.copy()  # U drawn with V's column axis and V with U's
    swapped[[0, 1], 1] = expected[[1, 0], 1]
    pitch = [detector.PITCH_CM[p] for p in detector.PLANES]
    for i, plane in enumerate(detector.PLANES):
        rows, cols = np.nonzero(images[plane])
        points = np.stack([rows * detector.CM_PER_SAMPLE, cols * pitch[i]], axis=1)
        axis = np.linalg.svd(points - points.mean(0), full_matrices=False)[2][0]
        drawn = [np.degrees(np.arccos(min(1.0, abs(axis @ e) / np.linalg.norm(e))))
                 for e in (expected[i], swapped[i])]  # fmt: skip
        assert drawn[0] < 3.0, f"{plane}: drawn {axis}, expected {expected[i]}"
        if plane != "X" and abs(d[1]) > 0.3:
            assert drawn[1] > 10.0, f"{plane}: the other induction plane's axis fits too"
