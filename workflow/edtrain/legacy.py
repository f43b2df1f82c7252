"""The `import-legacy` command: the predecessor's config files and result folders into edtrain.

`configs` turns its JSON configs (both schemas, docs/insights.md, "Legacy imports") into
version entries for config.yaml. `run` turns one of its result folders into a results/<version>/
folder that the insights read beside new versions, marked imported and saying what it lacks.

Principle: an entry keeps what the user asked for. Keys the predecessor's trainer silently
ignored (clipnorm, dropout_rate, use_batch_norm, hyperopt.enabled, ...) are carried over where
edtrain honours them and always reported, because edtrain will act on them where the
predecessor did not.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from edtrain.config import flatten, write_config_json
from edtrain.formats import columns
from edtrain.metrics import angular_error_deg, by_energy, summarize, unit
from edtrain.version_files import CONFIG, HISTORY, METRICS, PREDICTIONS, RECORD

log = logging.getLogger(__name__)

LOSS_NAMES = {
    "cosine_similarity": "cosine",
    "cosine": "cosine",
    "angular_loss": "angular",
    "angular": "angular",
    "focal_angular_loss": "focal_angular",
    "focal_angular": "focal_angular",
    "hybrid_loss": "hybrid",
    "hybrid": "hybrid",
}

# What the predecessor's code did whatever its config said
# (docs/insights.md, "Legacy imports").
PREDECESSOR_FIXED: dict[str, Any] = {
    "model": {
        "kernel_size": 3,
        "filter_growth": 2.0,
        "batch_norm": True,
        "dense_layers": 2,
        "dense_units": 256,
        "dropout": 0.3,
    },
    "optimizer": {"type": "adam", "learning_rate": 1.0e-3, "clipnorm": None},
    "callbacks": {"reduce_lr": {"factor": 0.5, "min_lr": 1.0e-6}},
    "batch_size": 32,
    "hyperopt": {"enabled": False},
}

# source key (dotted) → entry key (dotted); the trainer read these.
MAPPED = {
    "model.n_conv_layers": "model.conv_layers",
    "model.n_filters": "model.filters",
    "model.kernel_size": "model.kernel_size",
    "model.n_dense_layers": "model.dense_layers",
    "model.n_dense_units": "model.dense_units",
    "data.max_samples": "samples",
    "training.loss": "loss",
    "training.optimizer": "optimizer.type",
    "training.learning_rate": "optimizer.learning_rate",
    "training.batch_size": "batch_size",
    "training.epochs": "max_epochs",
    "training.early_stopping_patience": "callbacks.early_stopping.patience",
    "training.reduce_lr_patience": "callbacks.reduce_lr.patience",
    "training.reduce_lr_factor": "callbacks.reduce_lr.factor",
    "training.min_lr": "callbacks.reduce_lr.min_lr",
}

# The search the predecessor's hyperopt script was meant to run (20 trials), in edtrain's
# hyperopt schema; a config asking for a search gets this one.
PREDECESSOR_SEARCH: dict[str, Any] = {
    "rounds": 4,
    "trials_per_round": 5,
    "space": {
        "model.conv_layers": {"choices": [3, 4, 5]},
        "model.filters": {"choices": [32, 64, 128]},
        "model.kernel_size": {"choices": [3, 5]},
        "model.dense_layers": {"choices": [1, 2, 3]},
        "model.dense_units": {"choices": [128, 256, 512]},
        "model.dropout": {"float": [0.2, 0.5]},
        "optimizer.learning_rate": {"choices": [1.0e-4, 1.0e-3, 1.0e-2]},
    },
}

# leaf key → entry key (None: edtrain has no such setting); the trainer never read these.
IGNORED_BY_PREDECESSOR: dict[str, str | None] = {
    "clipnorm": "optimizer.clipnorm",
    "dropout_rate": "model.dropout",
    "use_batch_norm": "model.batch_norm",
    "terminate_on_nan": None,
    "enabled": "hyperopt.enabled",
}

# Keys describing the old system's files and bookkeeping, with where edtrain keeps that now.
NOT_CARRIED = {
    "model.name": "the version name",
    "model.architecture": "edtrain has one three-branch architecture",
    "model.input_shape": "fixed by the dataset (128×32 per plane)",
    "model.output_dim": "always 3",
    "model.normalize_output": "edtrain scores normalized predictions",
    "model_type": "edtrain has one model type",
    "version": "the version name",
    "data.data_directories": "config data.directories",
    "data.use_matched": "edtrain always trains on matched triplets",
    "data.require_three_plane_match": "edtrain always trains on matched triplets",
    "data.shuffle": "edtrain shuffles with the version seed",
    "data.val_split": "folded into val_fraction (the predecessor had no test set)",
    "data.test_split": "edtrain's common test set is config data.test_fraction",
    "output": "edtrain writes results/<version>/",
    "hyperopt": "a requested search runs the predecessor's intended one (docs/insights.md)",
}


@dataclass
class Conversion:
    """One converted config: the entry plus everything the reader should know about it."""

    name: str
    entry: dict[str, Any]
    ignored: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)


def _set(entry: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        entry = entry.setdefault(key, {})
    entry[leaf] = value


def version_name(source: dict[str, Any], fallback: str) -> str:
    """vN from the old schema's `version`, else from model.name (three_plane_v12_100k)."""
    version = source.get("version")
    if version is not None:
        return f"v{version}" if isinstance(version, int) else str(version)
    match = re.search(r"v\d+", str((source.get("model") or {}).get("name", "")))
    return match.group(0) if match else fallback


def _not_carried_reason(key: str) -> str | None:
    for prefix, reason in NOT_CARRIED.items():
        if key == prefix or key.startswith(prefix + "."):
            return reason
    return None


def convert_config(source: dict[str, Any], fallback_name: str) -> Conversion:
    """A predecessor config (either schema) → an edtrain version entry with its report."""
    name = version_name(source, fallback_name)
    entry: dict[str, Any] = {"description": str(source.get("description", "")).strip()}
    entry |= copy.deepcopy(PREDECESSOR_FIXED)
    digits = re.search(r"\d+", name)
    entry["seed"] = int(digits.group(0)) if digits else 0
    conv = Conversion(name=name, entry=entry)
    for key, value in flatten(source).items():
        leaf = key.rsplit(".", 1)[-1]
        if key == "description":
            continue
        if key == "training.loss":
            if value not in LOSS_NAMES:
                conv.unmapped.append(f"{key}={value!r}: unknown loss")
                continue
            _set(entry, "loss", LOSS_NAMES[value])
        elif key in MAPPED:
            _set(entry, MAPPED[key], value)
        elif key == "data.train_split":
            entry["val_fraction"] = round(1.0 - float(value), 6)
        elif leaf in IGNORED_BY_PREDECESSOR and (leaf != "enabled" or key == "hyperopt.enabled"):
            target = IGNORED_BY_PREDECESSOR[leaf]
            if target:
                _set(entry, target, value)
            conv.ignored.append(
                f"{key}={value!r}: ignored by the predecessor; "
                + (f"edtrain applies it as {target}" if target else "edtrain has no such setting")
            )
        elif "augmentation" in key.split("."):
            conv.ignored.append(f"{key}={value!r}: ignored by the predecessor; not mapped")
        elif (reason := _not_carried_reason(key)) is not None:
            conv.unmapped.append(f"{key}: not carried over ({reason})")
        else:
            conv.unmapped.append(f"{key}={value!r}: unknown key, not mapped")
    if entry["hyperopt"]["enabled"]:
        entry["hyperopt"] |= copy.deepcopy(PREDECESSOR_SEARCH)
        if "max_epochs" in entry:
            entry["hyperopt"]["epochs_per_trial"] = entry["max_epochs"]
    return conv


ENTRY_ORDER = (
    "description",
    "samples",
    "val_fraction",
    "model",
    "loss",
    "optimizer",
    "callbacks",
    "max_epochs",
    "batch_size",
    "seed",
    "hyperopt",
)


def ordered(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ENTRY_ORDER if k in entry} | {
        k: v for k, v in entry.items() if k not in ENTRY_ORDER
    }


def conversion_notes(conv: Conversion) -> list[str]:
    return [f"{conv.name}: {line}" for line in conv.ignored + conv.unmapped]


def import_configs(paths: list[Path], out: Path) -> list[Conversion]:
    """Write versions.yaml (a `versions:` block) with the notes as a comment header."""
    conversions = [convert_config(json.loads(p.read_text()), p.stem) for p in paths]
    notes = [n for c in conversions for n in conversion_notes(c)]
    header = "".join(f"# {n}\n" for n in notes)
    body = yaml.safe_dump(
        {"versions": {c.name: ordered(c.entry) for c in conversions}},
        sort_keys=False,
        allow_unicode=True,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# Imported from the predecessor's configs by `edtrain import-legacy configs`.\n"
        + header
        + body
    )
    for note in notes:
        print(note, file=sys.stderr)
    return conversions


# ---- result folders ------------------------------------------------------------------------

HISTORY_KEYS = ("loss", "val_loss", "learning_rate", "mae", "val_mae")


def history_frame(history: dict[str, list[Any]]) -> pd.DataFrame:
    """Keras-CSVLogger-like history (0-based epoch column); null entries become NaN."""
    data = {
        key: pd.Series([np.nan if v is None else float(v) for v in history[key]], dtype=float)
        for key in HISTORY_KEYS
        if key in history
    }
    frame = pd.DataFrame(data)
    frame.insert(0, "epoch", np.arange(len(frame)))
    return frame


def training_record(frame: pd.DataFrame, config: dict[str, Any]) -> dict[str, Any]:
    """training.json of an imported run; epochs count from 1, as the predecessor logged them."""
    losses = frame[[c for c in ("loss", "val_loss") if c in frame]].to_numpy(dtype=float)
    bad = ~np.isfinite(losses).all(axis=1) if losses.size else np.zeros(len(frame), bool)
    val = frame["val_loss"].to_numpy(dtype=float) if "val_loss" in frame else np.array([])
    finite_val = np.isfinite(val)
    best = int(np.nanargmin(np.where(finite_val, val, np.nan))) if finite_val.any() else None
    return {
        "imported": True,
        "status": "nan" if bad.any() else "ok",
        "epochs_run": len(frame),
        "best_epoch": None if best is None else best + 1,
        "nan_epoch": int(np.argmax(bad)) + 1 if bad.any() else None,
        "best_val_loss": None if best is None else float(val[best]),
        "samples_requested": config.get("samples"),
        "seed": None,
        "device": None,
    }


LOGGED_METRICS = {
    "angular_error_mean": "mean_deg",
    "angular_error_median": "median_deg",
    "angular_error_std": "std_deg",
    "angular_error_25th": "p25_deg",
    "angular_error_75th": "p75_deg",
}


def legacy_predictions(npz_path: Path) -> dict[str, np.ndarray]:
    """val_predictions.npz → the predictions.npz contract (keys it cannot know are left out)."""
    with np.load(npz_path, allow_pickle=False) as src:
        pred = np.asarray(src["predictions"], dtype=np.float32)
        true = np.asarray(src["true_directions"], dtype=np.float32)
        out = {"test_predictions": pred, "test_true": true}
        if "energies" in src.files:
            out["energy_mev"] = np.asarray(src["energies"], dtype=np.float32)
        meta = np.asarray(src["metadata"]) if "metadata" in src.files else np.empty((0, 0))
    nu = np.full(true.shape, np.nan, dtype=np.float32)
    if meta.ndim == 2 and meta.shape[0] == len(true) and meta.shape[1] >= columns.MATCH_ID + 1:
        out["event"] = meta[:, columns.EVENT].astype(np.int64)
        out["match_id"] = meta[:, columns.MATCH_ID].astype(np.int64)
        if meta.shape[1] >= columns.NU_MOM.stop:
            nu = unit(meta[:, columns.NU_MOM]).astype(np.float32)
    out["nu_dir"] = nu
    return out


def missing_items(has_predictions: bool) -> list[str]:
    items = [
        "common test set (scored on its own validation split)",
        "training record (device, wall time, dataset hash, n_train/n_val)",
    ]
    if not has_predictions:
        items[:0] = ["predictions (so no 68 % containment, no intervals)", "error vs energy"]
    return items


def import_run(result_dir: Path, version: str, out_dir: Path) -> dict[str, Any]:
    """Write the contract files an old result folder supports, plus legacy.json."""
    results = json.loads((result_dir / "results.json").read_text())
    conv = convert_config(results.get("config") or {}, version)
    config = {"name": version, **ordered(conv.entry)}
    config["hyperopt"] = {**config.get("hyperopt", {}), "ran": "best_params" in results}
    if "best_params" in results:
        config["hyperopt"]["best_params"] = results["best_params"]
    dirs = ((results.get("config") or {}).get("data") or {}).get("data_directories") or []
    config["dataset"] = ", ".join(map(str, dirs)) or None
    frame = history_frame(results.get("history") or {})
    metrics: dict[str, Any] = {
        "version": version,
        "imported": True,
        "test_set_hash": None,
        "evaluated_on": "the run's own validation split",
    }
    metrics |= {new: results[old] for old, new in LOGGED_METRICS.items() if old in results}
    out_dir.mkdir(parents=True, exist_ok=True)
    npz = result_dir / "val_predictions.npz"
    if npz.is_file():
        predictions = legacy_predictions(npz)
        errors = angular_error_deg(predictions["test_predictions"], predictions["test_true"])
        metrics |= summarize(errors)
        if "energy_mev" in predictions:
            metrics["by_energy"] = by_energy(errors, predictions["energy_mev"])
        np.savez(out_dir / PREDICTIONS, **predictions)
    legacy = {
        "source": str(result_dir),
        "version": version,
        "missing": missing_items(npz.is_file()),
        "config_notes": conv.ignored + conv.unmapped,
    }
    write_config_json(config, out_dir / CONFIG)
    (out_dir / RECORD).write_text(json.dumps(training_record(frame, config), indent=2) + "\n")
    frame.to_csv(out_dir / HISTORY, index=False)
    (out_dir / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / "legacy.json").write_text(json.dumps(legacy, indent=2) + "\n")
    return legacy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True)
    configs = sub.add_parser("configs", help="predecessor JSON configs → version entries")
    configs.add_argument("files", nargs="+", type=Path)
    configs.add_argument("--out", type=Path, required=True, help="versions.yaml to write")
    run = sub.add_parser("run", help="a predecessor result folder → results/<version>/")
    run.add_argument("result_dir", type=Path)
    run.add_argument("--version", required=True)
    run.add_argument("--out-dir", type=Path, required=True)


def main(args: argparse.Namespace) -> int:
    if args.what == "configs":
        conversions = import_configs(args.files, args.out)
        log.info("wrote %d version entries to %s", len(conversions), args.out)
        return 0
    legacy = import_run(args.result_dir, args.version, args.out_dir)
    for line in legacy["missing"] + legacy["config_notes"]:
        print(f"{args.version}: {line}", file=sys.stderr)
    return 0
