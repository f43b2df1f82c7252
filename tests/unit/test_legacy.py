"""import-legacy: the predecessor's configs (both schemas) and result folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from edtrain import cli
from edtrain.legacy import convert_config
from edtrain.metrics import angular_error_deg

NEW_SCHEMA = {
    "model": {"name": "three_plane_v12_100k", "architecture": "three_plane_cnn",
              "input_shape": [128, 32, 1], "output_dim": 3, "n_conv_layers": 4, "n_filters": 64,
              "kernel_size": 3, "n_dense_layers": 2, "n_dense_units": 256},
    "data": {"data_directories": ["/eos/x/cluster_images_nov11/"], "max_samples": 100000,
             "use_matched": True, "train_split": 0.7, "val_split": 0.15, "test_split": 0.15},
    "training": {"loss": "angular_loss", "optimizer": "adam", "learning_rate": 0.001,
                 "batch_size": 32, "epochs": 200, "early_stopping_patience": 20,
                 "reduce_lr_patience": 10},
    "hyperopt": {"enabled": False},
    "output": {"base_dir": "/eos/x/electron_direction/"},
}  # fmt: skip
OLD_SCHEMA = {
    "model_type": "three_plane_cnn", "version": "v7", "description": "cosine baseline",
    "model": {"n_conv_layers": 3, "n_filters": 32, "kernel_size": 3, "n_dense_layers": 2,
              "n_dense_units": 256, "normalize_output": False},
    "data": {"max_samples": 10000, "train_split": 0.8, "require_three_plane_match": True,
             "shuffle": True},
    "training": {"loss": "cosine_similarity", "optimizer": "adam", "learning_rate": 0.001,
                 "batch_size": 32, "epochs": 100, "early_stopping_patience": 15,
                 "reduce_lr_patience": 5},
    "output": {"save_best_only": True, "save_checkpoints": True},
}  # fmt: skip


def test_new_schema_maps_to_the_version_entry():
    conv = convert_config(NEW_SCHEMA, "fallback")
    assert conv.name == "v12"
    e = conv.entry
    assert (e["samples"], e["val_fraction"], e["loss"], e["max_epochs"]) == (
        100000,
        0.3,
        "angular",
        200,
    )
    assert e["model"] == {"conv_layers": 4, "filters": 64, "kernel_size": 3, "filter_growth": 2.0,
                          "batch_norm": True, "dense_layers": 2, "dense_units": 256,
                          "dropout": 0.3}  # fmt: skip
    assert e["optimizer"] == {"type": "adam", "learning_rate": 0.001, "clipnorm": None}
    reduce_lr = {"patience": 10, "factor": 0.5, "min_lr": 1e-6}
    assert e["callbacks"] == {"early_stopping": {"patience": 20}, "reduce_lr": reduce_lr}
    assert (e["batch_size"], e["seed"], e["hyperopt"]) == (32, 12, {"enabled": False})
    assert any(n.startswith("data.data_directories: not carried") for n in conv.unmapped)
    assert any(n.startswith("output.base_dir: not carried") for n in conv.unmapped)


def test_old_schema_maps_loss_names_and_version():
    conv = convert_config(OLD_SCHEMA, "fallback")
    assert (conv.name, conv.entry["loss"], conv.entry["val_fraction"]) == ("v7", "cosine", 0.2)
    assert conv.entry["description"] == "cosine baseline"
    assert conv.entry["callbacks"]["early_stopping"]["patience"] == 15
    for key in ("model_type", "data.shuffle", "model.normalize_output", "output.save_best_only"):
        assert any(n.startswith(f"{key}: not carried") for n in conv.unmapped), key
    focal = convert_config({**OLD_SCHEMA, "training": {"loss": "focal_angular_loss"}}, "x")
    assert focal.entry["loss"] == "focal_angular"


def test_keys_the_predecessor_ignored_are_applied_and_reported():
    source = json.loads(json.dumps(NEW_SCHEMA))
    source["training"] |= {"clipnorm": 1.0, "terminate_on_nan": True}
    source["model"] |= {"dropout_rate": 0.4, "use_batch_norm": False}
    source["augmentation"] = {"enabled": True, "flip": True}
    source["hyperopt"] = {"enabled": True}
    conv = convert_config(source, "x")
    assert conv.entry["optimizer"]["clipnorm"] == 1.0
    assert conv.entry["model"]["dropout"] == 0.4 and conv.entry["model"]["batch_norm"] is False
    assert conv.entry["hyperopt"]["enabled"] is True
    ignored = " ".join(conv.ignored)
    for key in ("training.clipnorm", "training.terminate_on_nan", "model.dropout_rate",
                "model.use_batch_norm", "augmentation.enabled", "augmentation.flip",
                "hyperopt.enabled"):  # fmt: skip
        assert key in ignored, key
    assert "edtrain has no such setting" in ignored


def test_unknown_keys_and_losses_are_listed_not_guessed():
    source = json.loads(json.dumps(NEW_SCHEMA))
    source["training"] |= {"loss": "hybrid_v2", "warmup": 5}
    conv = convert_config(source, "x")
    assert "loss" not in conv.entry
    assert "training.loss='hybrid_v2': unknown loss" in conv.unmapped
    assert "training.warmup=5: unknown key, not mapped" in conv.unmapped


def test_configs_command_writes_versions_yaml(tmp_path, capsys):
    for name, source in (("v7.json", OLD_SCHEMA), ("v12.json", NEW_SCHEMA)):
        (tmp_path / name).write_text(json.dumps(source))
    out = tmp_path / "versions.yaml"
    argv = ["import-legacy", "configs", str(tmp_path / "v7.json"), str(tmp_path / "v12.json"),
            "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    versions = yaml.safe_load(out.read_text())["versions"]
    assert list(versions) == ["v7", "v12"]
    assert versions["v7"]["model"]["conv_layers"] == 3
    assert "v12: data.data_directories: not carried over" in capsys.readouterr().err
    assert "# v7: model_type: not carried over" in out.read_text()


def legacy_run(folder: Path, history: dict, predictions: bool) -> Path:
    folder.mkdir()
    results = {"angular_error_mean": 60.0, "angular_error_median": 50.0,
               "angular_error_std": 40.0, "angular_error_25th": 30.0,
               "angular_error_75th": 90.0, "config": NEW_SCHEMA, "history": history}  # fmt: skip
    (folder / "results.json").write_text(json.dumps(results))
    if predictions:
        rng = np.random.default_rng(0)
        true = rng.normal(size=(50, 3))
        pred = true + rng.normal(size=(50, 3))
        meta = np.zeros((50, 18), dtype=np.float32)
        meta[:, 0], meta[:, 13] = np.arange(50), 7
        meta[:, 15:18] = [0.0, 0.0, 0.02]
        np.savez(folder / "val_predictions.npz", predictions=pred, true_directions=true,
                 angular_errors=angular_error_deg(pred, true), energies=rng.uniform(2, 70, 50),
                 metadata=meta)  # fmt: skip
    return folder


def import_run(tmp_path: Path, history: dict, predictions: bool = False) -> Path:
    source = legacy_run(tmp_path / "src", history, predictions)
    out = tmp_path / "results" / "v12"
    argv = ["import-legacy", "run", str(source), "--version", "v12", "--out-dir", str(out)]
    assert cli.main(argv) == 0
    return out


def test_run_with_nan_history_is_marked_nan(tmp_path):
    history = {"loss": [1.2, 1.1, 1.0, None], "val_loss": [1.3, 1.0, 1.1, float("nan")],
               "learning_rate": [1e-3] * 4}  # fmt: skip
    out = import_run(tmp_path, history)
    training = json.loads((out / "training.json").read_text())
    assert training["imported"] is True and training["status"] == "nan"
    assert (training["epochs_run"], training["best_epoch"], training["nan_epoch"]) == (4, 2, 4)
    assert training["best_val_loss"] == 1.0
    frame = pd.read_csv(out / "history.csv")
    assert list(frame.columns) == ["epoch", "loss", "val_loss", "learning_rate"]
    assert frame["val_loss"].isna().tolist() == [False, False, False, True]
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["mean_deg"], metrics["p75_deg"], metrics["test_set_hash"]) == (60.0, 90.0, None)
    legacy = json.loads((out / "legacy.json").read_text())
    assert legacy["missing"][0].startswith("predictions")
    assert not (out / "predictions.npz").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["name"] == "v12" and config["hyperopt"] == {"enabled": False, "ran": False}


def test_run_with_predictions_writes_the_contract(tmp_path):
    out = import_run(tmp_path, {"loss": [1.0, 0.9], "val_loss": [1.1, 1.0]}, predictions=True)
    assert json.loads((out / "training.json").read_text())["status"] == "ok"
    with np.load(out / "predictions.npz") as npz:
        assert npz["test_predictions"].shape == npz["test_true"].shape == (50, 3)
        assert np.allclose(npz["nu_dir"], [0.0, 0.0, 1.0])
        assert npz["event"].tolist() == list(range(50))
        errors = angular_error_deg(npz["test_predictions"], npz["test_true"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 50 and np.isclose(metrics["q68_deg"], np.percentile(errors, 68))
    assert sum(row["n"] for row in metrics["by_energy"]) == 50
    legacy = json.loads((out / "legacy.json").read_text())
    assert not any(item.startswith("predictions") for item in legacy["missing"])


def test_imported_entries_are_valid_workflow_versions(tmp_path):
    """The converted entries pass the workflow's config schema and resolve like config.yaml's."""
    from snakemake.utils import validate

    from edtrain.config import resolve_version

    repo = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    hyperopt = json.loads(json.dumps(NEW_SCHEMA)) | {"hyperopt": {"enabled": True}}
    hyperopt["model"]["name"] = "three_plane_v13_100k"
    conversions = [convert_config(s, "x") for s in (OLD_SCHEMA, NEW_SCHEMA, hyperopt)]
    imported = {c.name: c.entry for c in conversions}
    trial = {**config, "run_versions": "all", "versions": imported}
    validate(trial, str(repo / "workflow" / "schemas" / "config.schema.yaml"))
    assert imported["v13"]["hyperopt"]["enabled"] is True
    for name in ("v7", "v12"):
        ours, theirs = resolve_version(trial, name), resolve_version(config, name)
        for resolved in (ours, theirs):
            del resolved["description"]
        assert ours == theirs, name
