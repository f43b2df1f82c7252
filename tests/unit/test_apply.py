"""`edtrain apply`: a saved version on a fresh production, in every input layout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_dataset import tiny_config

from edtrain.apply import predict_rows
from edtrain.cli import main as cli
from edtrain.formats import columns as col
from edtrain.losses import KAPPA_FLOOR, head, output_size
from edtrain.metrics import KappaCalibration, vmf_cone_deg
from edtrain.model import build_model
from edtrain.simulation.simulate import (
    FLAT_IMAGES_DIR,
    MATCHED_DIR,
    PLANE_IMAGES_DIR,
    PRODUCTION_DIR,
)

ROOT = Path(__file__).resolve().parents[2]
SCALE = 2.5  # the version's recorded κ calibration (one factor: as older versions saved it)


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> Path:
    """A saved vmf version in the face frame: model.keras, config.json, metrics.json."""
    folder = tmp_path_factory.mktemp("v")
    config = tiny_config(loss="vmf", input={"normalization": "scale", "scale": 100.0,
                                            "frame": "face"})  # fmt: skip
    build_model(config["model"], config["input"], output_size("vmf")).save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(json.dumps({"uncertainty": {"kappa_scale": SCALE}}))
    return folder


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prod")
    args = ["simulate", "--out", str(out), "--files", "2", "--events-per-file", "30"]
    assert cli([*args, "--seed", "5"]) == 0
    return out / PRODUCTION_DIR


def main_triplets(folder: Path) -> int:
    """Main-track X clusters whose (event, match_id) is in U and in V, counted by hand."""
    n = 0
    for x_file in sorted(folder.rglob("*_planeX.npz")):
        keys = {}
        for plane in "UVX":
            meta = np.load(
                str(x_file).replace("planeX", f"plane{plane}").replace("/X/", f"/{plane}/")
            )["metadata"]
            main = meta[:, col.IS_MAIN_TRACK] == 1 if plane == "X" else np.ones(len(meta), bool)
            keys[plane] = {
                (int(e), int(m)) for e, m in meta[main][:, [col.EVENT, col.MATCH_ID]] if m >= 0
            }
        n += len(keys["X"] & keys["U"] & keys["V"])
    return n


@pytest.mark.parametrize("layout", [FLAT_IMAGES_DIR, PLANE_IMAGES_DIR, MATCHED_DIR])
def test_every_matched_triplet_gets_a_direction(version, production, tmp_path, layout) -> None:
    out = tmp_path / "directions.parquet"
    args = ["apply", "--model", str(version / "model.keras"), "--inputs", str(production / layout)]
    assert cli([*args, "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert len(table) == main_triplets(production / PLANE_IMAGES_DIR) > 20
    assert table["basename"].nunique() == 2 and not out.with_name(out.name + ".partial").exists()
    direction = table[["dir_x", "dir_y", "dir_z"]].to_numpy(np.float64)
    np.testing.assert_allclose(np.linalg.norm(direction, axis=1), 1.0, atol=1e-5)
    # κ: the network's concentration times the version's calibration, and its 68 % cone
    assert (table["kappa"] >= SCALE * KAPPA_FLOOR * (1 - 1e-6)).all()
    np.testing.assert_allclose(table["cone68_deg"], vmf_cone_deg(table["kappa"], 0.68), rtol=1e-4)
    # MC input: the truth is there, and the error is the angle between the two
    true = table[["true_x", "true_y", "true_z"]].to_numpy(np.float64)
    cos = np.clip(np.sum(direction * true, axis=1), -1, 1)
    np.testing.assert_allclose(table["error_deg"], np.degrees(np.arccos(cos)), atol=1e-3)


def test_a_head_tail_version_writes_its_sense_probability(production, tmp_path) -> None:
    """Read twice, as its test_augment says (edtrain.symmetrize)."""
    read = {"normalization": "scale", "scale": 100.0, "frame": "face", "test_augment": "x_rotation"}
    config = tiny_config(loss="axial_sense", input=read)
    model = build_model(config["model"], config["input"], output_size("axial_sense"),
                        head=head("axial_sense"))  # fmt: skip
    model.save(tmp_path / "model.keras")
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = tmp_path / "directions.parquet"
    args = ["apply", "--model", str(tmp_path / "model.keras"), "--out", str(out)]
    assert cli([*args, "--inputs", str(production / PLANE_IMAGES_DIR)]) == 0
    table = pd.read_parquet(out)
    assert "kappa" not in table and len(table) > 20
    assert table["sense_probability"].between(0.5, 1.0).all()
    assert table["sense_probability"].std() > 0  # one per cluster, not a constant


def test_kappa_is_calibrated_at_each_cluster_energy() -> None:
    """κ times the factor interpolated in log energy between the knots, held beyond them."""

    class Fixed:  # a network whose raw outputs are known
        def predict(self, images, batch_size, verbose):
            return np.tile([0.0, 0.0, 1.0, 2.0], (len(images), 1))

    energy = np.array([2.0, 5.0, 10.0, 20.0, 60.0])
    calibration = KappaCalibration(np.array([5.0, 20.0]), np.array([2.0, 3.0]))
    images = np.zeros((len(energy), 3, 128, 32), np.float32)
    out = predict_rows(Fixed(), images, np.ones(5, np.int8), "face", energy, calibration, "vmf")
    raw = KAPPA_FLOOR + np.log1p(np.exp(2.0))
    np.testing.assert_allclose(out["kappa"], raw * np.array([2.0, 2.0, 2.5, 3.0, 3.0]), rtol=1e-5)
    np.testing.assert_allclose(out["cone68_deg"], vmf_cone_deg(out["kappa"], 0.68), rtol=1e-5)


def test_missing_model_or_inputs_are_named(version, tmp_path, capsys) -> None:
    out = str(tmp_path / "o.parquet")
    assert (
        cli(["apply", "--model", str(tmp_path / "nope.keras"), "--inputs", ".", "--out", out]) == 2
    )
    assert "nope.keras not found" in capsys.readouterr().err
    args = ["apply", "--model", str(version / "model.keras"), "--inputs", str(tmp_path / "none")]
    assert cli([*args, "--out", out]) == 2
    assert "input directory not found" in capsys.readouterr().err


def test_the_documented_recipe_loads_a_model_in_a_fresh_process(version) -> None:
    """The README's Python lines, run as written (model path replaced), with compile."""
    readme = (ROOT / "README.md").read_text()
    recipe = re.search(r"```python\n(.*?)```", readme.split("## Using a trained model")[1], re.S)
    code = recipe.group(1).replace("results/demo/v16/model.keras", str(version / "model.keras"))
    code += "\nprint(model.name, model.output_shape)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "(None, 4)" in done.stdout


def test_edtrain_without_a_command_is_a_usage_error(capsys) -> None:
    assert cli([]) == 2
    assert "apply" in capsys.readouterr().err  # the overview lists every command
    assert cli(["--help"]) == 0


def test_help_of_a_keras_command_prints_only_its_help() -> None:
    """`edtrain train --help` imports Keras; TensorFlow's start-up lines stay out of it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    done = subprocess.run([sys.executable, "-m", "edtrain.cli", "train", "--help"],
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("usage: edtrain train")
    assert done.stderr == ""
