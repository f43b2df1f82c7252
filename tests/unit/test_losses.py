"""Losses: finite values and gradients everywhere; streaming metrics match edtrain.metrics."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import ops

from edtrain import metrics
from edtrain.epoch_metrics import angular_metrics
from edtrain.losses import (
    AXIS_BIN_KAPPA,
    AXIS_BINS,
    KAPPA_FLOOR,
    KAPPA_FLOORS,
    LOSSES,
    PLANE_OUTPUTS,
    angle,
    concentration,
    get_loss,
    plane_loss,
    plane_projections,
    predicts_sense,
    sense_probability,
)
from edtrain.model import AxisByDirection, BinnedAxis, SensedAxis

RNG = np.random.default_rng(3)
TRUE = RNG.normal(size=(64, 3)).astype(np.float32)
TRUE /= np.linalg.norm(TRUE, axis=1, keepdims=True)


def value_and_grad(loss, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample loss values and d(mean loss)/d(prediction), on the active backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        pred = tf.Variable(y_pred)
        with tf.GradientTape() as tape:
            values = loss(tf.constant(y_true), pred)
            mean = tf.reduce_mean(values)
        return values.numpy(), tape.gradient(mean, pred).numpy()
    if backend == "jax":
        import jax

        values = np.asarray(loss(y_true, y_pred))
        grad = jax.grad(lambda p: loss(y_true, p).mean())(y_pred)
        return values, np.asarray(grad)
    pytest.skip(f"no gradient helper for backend {backend}")


def predecessor_angular(y_true, y_pred):
    """The v8–v13 loss: arccos(clip(cos)), infinite gradient at |cos| = 1."""
    cos = ops.sum(y_true * y_pred, axis=-1) / (
        ops.norm(y_true, axis=-1) * ops.norm(y_pred, axis=-1)
    )
    return ops.arccos(ops.clip(cos, -1.0, 1.0))


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize(
    "case",
    ["exact", "opposite", "zero", "scaled", "huge", "random"],
)
def test_loss_and_gradient_are_finite(name: str, case: str) -> None:
    pred = {
        "exact": TRUE,
        "opposite": -TRUE,
        "zero": np.zeros_like(TRUE),
        "scaled": 7.0 * TRUE,
        "huge": 1e4 * TRUE,  # the vMF loss's sinh κ overflows float32 near κ = 89
        "random": RNG.normal(size=TRUE.shape).astype(np.float32),
    }[case]
    if name in KAPPA_FLOORS:  # its output carries κ too: at the floor, mid-range, huge
        floor = KAPPA_FLOORS[name]
        pred = vmf_output(pred, {"zero": floor + 1e-6, "huge": 1e4}.get(case, 7.0), floor)
    if predicts_sense(name):  # its output carries the head–tail logit: undecided, sure, huge
        logit = {"zero": 0.0, "opposite": -30.0, "huge": 1e4}.get(case, 3.0)
        pred = np.concatenate([pred, np.full((len(pred), 1), logit, np.float32)], axis=1)
    if name in ("axial_direction", "axial_bins"):  # the readout, the axis, the direction
        pred = np.concatenate([pred, pred, pred[:, ::-1]], axis=1)
    if name == "axial_bins":  # and the axis-bin logits: flat, peaked, huge
        scale = {"zero": 0.0, "huge": 1e4}.get(case, AXIS_BIN_KAPPA)
        pred = np.concatenate([pred, scale * bin_cosines(pred[:, :3]) ** 2], axis=1)
    values, grad = value_and_grad(get_loss(name), TRUE, pred.copy())
    assert values.shape == (len(TRUE),)
    assert np.isfinite(values).all()
    assert np.isfinite(grad).all()


def test_the_gradient_check_catches_the_predecessor_loss() -> None:
    _, grad = value_and_grad(predecessor_angular, TRUE, TRUE.copy())
    assert not np.isfinite(grad).all()


@pytest.mark.parametrize(
    ("name", "at_0", "at_90", "at_180"),
    [
        ("cosine", 0.0, 1.0, 2.0),
        ("angular", 0.0, math.pi / 2, math.pi),
        ("focal_angular", 0.0, math.pi / 8, math.pi),
        ("hybrid", 0.0, math.pi / 2 + 1.0, math.pi + 2.0),
        ("angular_axial", 0.0, math.pi, math.pi),
    ],
)
def test_loss_values_at_0_90_and_180_degrees(name, at_0, at_90, at_180) -> None:
    loss = get_loss(name)
    x, y = np.array([[1.0, 0, 0]], np.float32), np.array([[0, 2.0, 0]], np.float32)
    got = [float(ops.convert_to_numpy(loss(x, p))[0]) for p in (3 * x, y, -x)]
    assert got == pytest.approx([at_0, at_90, at_180], abs=1e-5)


def test_angular_axial_teaches_the_axis_of_a_head_tail_ambiguous_electron() -> None:
    """Labels t and −t for one image (sense unknown): the angular loss's mean is π/2 wherever
    the prediction points, so it teaches no axis; angular_axial's mean falls as the prediction
    nears the axis."""
    truth = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], np.float32)

    def pair_mean(name: str, degrees: float) -> float:
        a = math.radians(degrees)
        pred = np.tile([[math.sin(a), 0.0, math.cos(a)]], (2, 1)).astype(np.float32)
        return float(np.mean(ops.convert_to_numpy(get_loss(name)(truth, pred))))

    assert [pair_mean("angular", d) for d in (10, 30, 60)] == pytest.approx([math.pi / 2] * 3)
    axial = [pair_mean("angular_axial", d) for d in (10, 30, 60)]
    assert axial == pytest.approx([math.pi / 2 + math.radians(d) for d in (10, 30, 60)])


def test_axial_sense_scores_the_axis_and_the_sense_apart() -> None:
    """Axis ±t with logit ±2 or 0, through SensedAxis: the axis term is 0 whichever sense
    comes out, the cross-entropy is that of a classifier of whether the axis points along t
    (−log σ(2) when the logit says so, −log σ(−2) when it says the opposite, log 2 at 0)."""
    axis = TRUE[:6] * np.array([[1], [-1], [1], [-1], [1], [-1]], np.float32)
    logits = np.array([[2.0], [2.0], [-2.0], [-2.0], [0.0], [0.0]], np.float32)
    out = ops.convert_to_numpy(SensedAxis()(np.concatenate([axis, logits], axis=1)))
    np.testing.assert_allclose(out[:, :3] * np.where(logits >= 0, 1, -1), axis)
    right, wrong = math.log1p(math.exp(-2.0)), math.log1p(math.exp(2.0))
    expected = [right, wrong, wrong, right, math.log(2.0), math.log(2.0)]
    got = ops.convert_to_numpy(get_loss("axial_sense")(TRUE[:6], out))
    np.testing.assert_allclose(got, expected, atol=2e-3)  # the axis term: ~1e-3 of smoothing
    p = ops.convert_to_numpy(sense_probability(out))
    np.testing.assert_allclose(p, [0.8808, 0.8808, 0.8808, 0.8808, 0.5, 0.5], atol=1e-4)


def test_the_axis_heads_teach_the_axis_of_a_flipped_electron() -> None:
    """A prediction 170° off (the axis 10° off, the sense flipped): angular_axial's two terms
    cancel (θ + π − θ), so it leaves the axis where it is; axial_sense turns it towards the
    track's axis and pushes the logit to flip the sense, axial_direction turns it too and
    pulls its direction head towards the truth."""
    a = math.radians(170.0)
    truth = np.array([[0.0, 0.0, 1.0]], np.float32)
    pred = np.array([[math.sin(a), 0.0, math.cos(a)]], np.float32)
    _, axial_grad = value_and_grad(get_loss("angular_axial"), truth, pred.copy())
    np.testing.assert_allclose(axial_grad, 0.0, atol=1e-4)
    sensed = np.concatenate([pred, [[1.0]]], axis=1).astype(np.float32)
    _, grad = value_and_grad(get_loss("axial_sense"), truth, sensed)
    assert grad[0, 0] > 0.5  # descending −x pulls the axis onto −z, 10° away
    assert grad[0, 3] > 0.5  # descending lowers the logit: the sense flips
    two_heads = np.concatenate([pred, pred, pred], axis=1)
    _, grad = value_and_grad(get_loss("axial_direction"), truth, two_heads)
    assert grad[0, 3] > 0.5  # the axis turns onto −z
    assert grad[0, 6] < -0.5  # the direction head turns round, through +x, towards +z
    assert not grad[0, :3].any()  # the readout teaches nothing


def bin_cosines(directions: np.ndarray) -> np.ndarray:
    """Each direction's cosine with each axis bin (a zero vector: all zero)."""
    norm = np.linalg.norm(directions, axis=1, keepdims=True)
    return (directions / np.maximum(norm, 1e-12)) @ AXIS_BINS.T


def test_axial_bins_scores_the_axis_distribution_and_reads_its_principal_axis() -> None:
    """The bins' cross-entropy is least for the target's own logits (κ cos² about the true
    axis), the same for an axis and its opposite; BinnedAxis reads such a distribution back
    within 2° of the truth, finer than the ~9° between bins, and the heavier peak where the
    logits have two, not an axis between them."""
    loss = get_loss("axial_bins")
    directions = np.concatenate([TRUE, TRUE, TRUE], axis=1)

    def scored(truth, axis):
        logits = AXIS_BIN_KAPPA * bin_cosines(axis) ** 2
        pred = np.concatenate([directions, logits], axis=1).astype(np.float32)
        return ops.convert_to_numpy(loss(truth, pred)), pred

    at_truth, pred = scored(TRUE, TRUE)
    assert (at_truth < scored(TRUE, np.roll(TRUE, 1, axis=0))[0]).all()
    np.testing.assert_allclose(scored(-TRUE, TRUE)[0] - at_truth,
                               ops.convert_to_numpy(angle(-TRUE, TRUE) - angle(TRUE, TRUE)),
                               atol=1e-5)  # fmt: skip

    bins = len(AXIS_BINS)
    readout = ops.convert_to_numpy(BinnedAxis(bins)(pred[:, 6:][:, np.r_[3 : 3 + bins, 0:3]]))
    axis = readout[:, :3] / np.linalg.norm(readout[:, :3], axis=1, keepdims=True)
    assert np.degrees(np.arccos(np.clip(np.abs(np.sum(axis * TRUE, axis=1)), 0, 1))).max() < 2.0
    np.testing.assert_array_equal(readout[:, 3:6], TRUE)  # the direction head passes
    y, z = np.array([[0.0, 1.0, 0.0]]), np.array([[0.0, 0.0, 1.0]])
    two = np.log(0.6 * np.exp(AXIS_BIN_KAPPA * bin_cosines(y) ** 2)
                 + 0.4 * np.exp(AXIS_BIN_KAPPA * bin_cosines(z) ** 2))  # fmt: skip
    mode = ops.convert_to_numpy(BinnedAxis(bins)(np.concatenate([two, y], 1).astype(np.float32)))
    assert abs(mode[0, 1]) / np.linalg.norm(mode[0, :3]) > 0.99


def test_axial_bins_concentration_says_how_sharp_the_axis_distribution_is() -> None:
    """κ = 2 / (1 − λ) from the scatter matrix's largest eigenvalue (the axis head's length):
    a distribution shaped like exp(κ_W cos²) about an axis spreads like a vMF of κ = 2 κ_W
    (both ≈ exp(−κ_W θ²)), a flat one gives the least κ, 3."""
    bins = len(AXIS_BINS)
    direction = np.tile(TRUE[:1], (4, 1))

    def kappa(logits):
        readout = BinnedAxis(bins)(np.concatenate([logits, direction], 1).astype(np.float32))
        pred = np.concatenate([direction, ops.convert_to_numpy(readout)[:, :6]], axis=1)
        return ops.convert_to_numpy(concentration(pred, "axial_bins"))

    sharpness = np.array([[0.0], [5.0], [25.0], [100.0]])
    got = kappa(sharpness * bin_cosines(direction) ** 2)
    assert (np.diff(got) > 0).all()
    np.testing.assert_allclose(got[0], 3.0, rtol=0.02)
    np.testing.assert_allclose(got[2:], 2 * sharpness[2:, 0], rtol=0.15)


def test_axis_by_direction_reads_the_axis_in_the_directions_hemisphere() -> None:
    """The readout is the unit axis turned towards the direction head plus ½ its unit
    direction; the heads' own units follow unchanged, and the loss scores only those."""
    axis = 2.0 * TRUE[:4] * np.array([[1], [-1], [1], [-1]], np.float32)
    direction = TRUE[4:8] + 3.0 * TRUE[:4] * np.array([[1], [1], [-1], [-1]], np.float32)
    heads = np.concatenate([axis, direction], axis=1)
    out = ops.convert_to_numpy(AxisByDirection(blend=0.5)(heads))
    unit_direction = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    turned = TRUE[:4] * np.array([[1], [1], [-1], [-1]], np.float32)
    np.testing.assert_allclose(out[:, :3], turned + 0.5 * unit_direction, atol=1e-6)
    np.testing.assert_array_equal(out[:, 3:], heads)
    loss = get_loss("axial_direction")
    moved = out.copy()
    moved[:, :3] = -moved[:, :3]
    np.testing.assert_array_equal(ops.convert_to_numpy(loss(TRUE[:4], moved)),
                                  ops.convert_to_numpy(loss(TRUE[:4], out)))  # fmt: skip


def vmf_output(
    direction: np.ndarray, kappa: float | np.ndarray, floor: float = KAPPA_FLOOR
) -> np.ndarray:
    """A κ-predicting output (direction, s) whose concentration floor + softplus(s) is ``kappa``."""
    excess = np.broadcast_to(np.asarray(kappa, np.float64) - floor, len(direction))
    s = np.where(excess > 30, excess, np.log(np.expm1(np.minimum(excess, 30))))
    return np.concatenate([direction, s[:, None]], axis=1).astype(np.float32)


@pytest.mark.parametrize("kappa", [1.01, 1.3, 2.0, 30.0, 88.0, 120.0, 5000.0])
def test_vmf_loss_is_the_density_and_calibrates_kappa(kappa: float) -> None:
    """NLL = log 4π + log(sinh κ/κ) − κ cos θ; its derivative in κ is coth κ − 1/κ − cos θ,
    zero when κ matches the observed cosine (checked through κ's output, s)."""
    cos = np.array([-0.9, 0.0, 0.5, 0.99])
    true = np.stack([np.sqrt(1 - cos**2), np.zeros(4), cos], axis=1).astype(np.float32)
    pred = vmf_output(np.tile([[0.0, 0.0, 2.0]], (4, 1)), kappa)
    values, grad = value_and_grad(get_loss("vmf"), true, pred)
    k = np.float64(kappa)
    # sinh overflows float64 beyond κ ≈ 710: its large-κ form there
    log_sinhc = np.log(np.sinh(k) / k) if k < 500 else k - np.log(2.0 * k)
    expected = np.log(4 * np.pi) + log_sinhc - k * cos
    # float32: κ·cos θ carries κ times its rounding (2.6e-3 at κ = 5000)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-4 + 1e-6 * k)
    dkappa_ds = 1.0 / (1.0 + np.exp(-pred[:, 3].astype(np.float64)))  # softplus' = sigmoid
    per_sample = grad[:, 3] * len(cos)  # the gradient of the batch mean, per sample
    np.testing.assert_allclose(per_sample, (1 / np.tanh(k) - 1 / k - cos) * dkappa_ds, atol=2e-3)


def test_vmf_keeps_learning_the_direction_at_the_floor() -> None:
    """With κ at its floor the direction's gradient is the cosine loss's, whatever the
    direction vector's length: poor early directions do not stall training."""
    pred = vmf_output(RNG.normal(size=TRUE.shape) * 1e-2, KAPPA_FLOOR + 1e-6)
    _, grad = value_and_grad(get_loss("vmf"), TRUE, pred)
    _, cosine_grad = value_and_grad(get_loss("cosine"), TRUE, pred[:, :3].copy())
    np.testing.assert_allclose(grad[:, :3], cosine_grad, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("kappa", [0.06, 0.3, 3.0, 300.0])
def test_angular_vmf_learns_the_direction_by_angle_and_kappa_by_likelihood(kappa) -> None:
    """The direction's gradient is the angular loss's, whatever κ; κ's is the vMF
    likelihood's about the direction as it is, and may settle below vmf's floor of 1."""
    pred = vmf_output(RNG.normal(size=TRUE.shape), kappa, KAPPA_FLOORS["angular_vmf"])
    values, grad = value_and_grad(get_loss("angular_vmf"), TRUE, pred)
    theta, angular_grad = value_and_grad(get_loss("angular"), TRUE, pred[:, :3].copy())
    np.testing.assert_allclose(grad[:, :3], angular_grad, rtol=1e-4, atol=1e-6)
    cos = np.cos(theta.astype(np.float64))
    k = np.float64(kappa)
    nll = np.log(4 * np.pi) + np.log(np.sinh(k) / k) - k * cos
    # κ·cos θ carries κ times cos's float32 rounding and its smoothed normalization (≤ 4e-6)
    np.testing.assert_allclose(values, theta + nll, rtol=1e-4, atol=2e-4 + 4e-6 * k)
    dkappa_ds = 1.0 / (1.0 + np.exp(-pred[:, 3].astype(np.float64)))
    expected = (1 / np.tanh(k) - 1 / k - cos) * dkappa_ds / len(TRUE)
    np.testing.assert_allclose(grad[:, 3], expected, rtol=1e-3, atol=1e-6)


def test_angle_matches_the_metrics_definition() -> None:
    pred = RNG.normal(size=(500, 3)).astype(np.float32)
    true = RNG.normal(size=(500, 3)).astype(np.float32)
    got = np.degrees(ops.convert_to_numpy(angle(true, pred)))
    np.testing.assert_allclose(got, metrics.angular_error_deg(pred, true), atol=1e-3)


def test_unknown_loss_lists_the_valid_names() -> None:
    valid = "cosine, angular, focal_angular, hybrid, angular_axial, axial_sense, axial_direction"
    with pytest.raises(ValueError, match=valid):
        get_loss("cosine_similarity")


def test_streaming_metrics_match_summarize() -> None:
    true = RNG.normal(size=(3000, 3)).astype(np.float32)
    pred = (true + RNG.normal(scale=1.2, size=true.shape)).astype(np.float32)
    expected = metrics.summarize(metrics.angular_error_deg(pred, true))
    got = {}
    for metric in angular_metrics():
        for start in range(0, len(true), 256):  # streamed in batches, as in training
            metric.update_state(true[start : start + 256], pred[start : start + 256])
        got[metric.name] = float(ops.convert_to_numpy(metric.result()))
    assert got["mean_deg"] == pytest.approx(expected["mean_deg"], abs=1e-3)
    assert got["frac_over_90"] == pytest.approx(expected["frac_over_90"], abs=1e-6)
    for key in ("median_deg", "q68_deg", "folded_q68_deg"):
        assert got[key] == pytest.approx(expected[key], abs=0.1), key


def test_plane_supervision_adds_each_planes_2d_angle_weighted_by_what_it_sees() -> None:
    """get_loss(name, w) = the loss of the first outputs + w · the mean over U, V, X of the
    angle between each plane's 2-D output and the truth's projection, times the projection's
    length; zero at the projections, finite (with its gradient) for a track along a wire."""
    n = len(TRUE)
    kappa = RNG.normal(size=(n, 1)).astype(np.float32)
    direction = (TRUE + 0.3 * RNG.normal(size=TRUE.shape)).astype(np.float32)
    exact = np.asarray(plane_projections(TRUE)).reshape(n, PLANE_OUTPUTS)
    y_pred = np.concatenate([direction, kappa, 2.5 * exact], axis=1)  # any length
    combined = get_loss("angular_vmf", plane_weight=0.5)
    np.testing.assert_allclose(
        ops.convert_to_numpy(combined(TRUE, y_pred)),
        ops.convert_to_numpy(LOSSES["angular_vmf"](TRUE, y_pred)),
        rtol=1e-5,
        atol=1e-5,
    )
    assert np.all(ops.convert_to_numpy(plane_loss(TRUE, exact)) < 2e-3)
    # U drawn with a reversed column axis: the error is the angle, scaled by how much U sees
    flipped = exact.reshape(n, 3, 2).copy()
    flipped[:, 0, 1] *= -1
    got = ops.convert_to_numpy(plane_loss(TRUE, flipped.reshape(n, -1)))
    u = exact.reshape(n, 3, 2)[:, 0]
    length = np.linalg.norm(u, axis=1)
    angle_u = np.arctan2(2 * np.abs(u[:, 0] * u[:, 1]), u[:, 0] ** 2 - u[:, 1] ** 2)
    np.testing.assert_allclose(got, length * np.abs(angle_u) / 3, atol=2e-3)
    # a track along the X wires (y) is a dot on X: no pull from X, finite gradient
    along_y = np.array([[0.0, 1.0, 0.0]], np.float32)
    values, grad = value_and_grad(plane_loss, along_y, np.ones((1, PLANE_OUTPUTS), np.float32))
    assert np.isfinite(values).all() and np.isfinite(grad).all()
    assert np.allclose(grad[0, 4:], 0.0, atol=1e-6)
