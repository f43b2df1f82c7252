"""A tiny dataset directory following docs/architecture.md, with learnable labels.

Each plane carries a bright patch whose brightness encodes one label component (U → x,
V → y, X → z), so a small CNN can lower the loss within a few epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from edtrain import splits

TEST_FRACTION = 0.2


def tiny_config(**overrides) -> dict:
    """A resolved version config for a model small enough to train in seconds on a CPU."""
    config = {
        "name": "vtiny",
        "description": "unit-test version",
        "samples": 10_000,
        "val_fraction": 0.3,
        "model": {
            "conv_layers": 2,
            "filters": 4,
            "kernel_size": 3,
            "filter_growth": 2.0,
            "batch_norm": True,
            "dense_layers": 1,
            "dense_units": 16,
            "dropout": 0.2,
        },
        "input": {"normalization": "scale", "scale": 100.0, "frame": "detector"},
        "loss": "angular",
        "optimizer": {"type": "adam", "learning_rate": 3e-3, "clipnorm": 1.0, "weight_decay": 0.0},
        "callbacks": {
            "early_stopping": {"patience": 20},
            "reduce_lr": {"patience": 10, "factor": 0.5, "min_lr": 1e-6},
        },
        "max_epochs": 4,
        "batch_size": 16,
        "seed": 7,
        "require_gpu": False,
    }
    config.update(overrides)
    return config


def make_dataset(path: Path, n: int = 240, seed: int = 0, mirrored_faces: bool = False) -> Path:
    """Write two image parts, samples.parquet and manifest.json for n samples under path.

    With ``mirrored_faces`` the V patch shows the label's y-component times the drift side,
    as real induction planes do (edtrain.frame): only the face frame can learn its sign.
    """
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    basename = np.array([f"file{i % 3}" for i in range(n)])
    event = np.arange(n, dtype=np.int64) // 3
    match_id = np.arange(n, dtype=np.int64) % 5
    keys = splits.key_hash(basename, event, match_id)
    order = np.argsort(keys)
    basename, event, match_id, keys = basename[order], event[order], match_id[order], keys[order]

    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    # drawn from its own stream, so the other columns do not depend on it
    drift_side = np.random.default_rng([seed, 1]).choice(np.array([-1, 1], dtype=np.int8), n)
    shown = direction.copy()
    if mirrored_faces:
        shown[:, 1] *= drift_side
    images = rng.uniform(0, 5, size=(n, 3, 128, 32))
    images[:, :, 56:72, 12:20] += 100.0 * (1.5 + shown)[:, :, None, None]
    (path / "images").mkdir(exist_ok=True)
    parts = [{"file": "images/part-00000.npy", "samples": n // 2}]
    parts.append({"file": "images/part-00001.npy", "samples": n - n // 2})
    for part, rows in zip(parts, np.split(images.astype(np.float16), [n // 2]), strict=True):
        np.save(path / part["file"], rows)  # two parts, as from two chunks

    is_test = splits.test_mask(keys, TEST_FRACTION)
    nu = rng.normal(size=(n, 3))
    pd.DataFrame(
        {
            "basename": basename,
            "event": event,
            "match_id": match_id,
            "key_hash": keys,
            "split": np.where(is_test, "test", "pool"),
            "rank": splits.pool_rank(keys, is_test),
            "label_x": direction[:, 0].astype(np.float32),
            "label_y": direction[:, 1].astype(np.float32),
            "label_z": direction[:, 2].astype(np.float32),
            "energy_mev": rng.uniform(2, 60, n).astype(np.float32),
            "particle_energy_mev": rng.uniform(2, 60, n).astype(np.float32),
            "nu_energy_mev": rng.uniform(5, 70, n).astype(np.float32),
            "nu_dir_x": nu[:, 0],
            "nu_dir_y": nu[:, 1],
            "nu_dir_z": nu[:, 2],
            "is_es": np.ones(n, dtype=bool),
            "drift_side": drift_side,
            "source": [f"/data/{b}_X.npz" for b in basename],
        }
    ).to_parquet(path / "samples.parquet")
    manifest = {
        "test_set_hash": f"test-{seed}",
        "dataset_hash": f"tiny-{seed}-{n}",
        "images": {"parts": parts},
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def clusters(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random charge patches, a few rows by 2–6 columns per plane (one column looks the same
    rotated: no reading can tell its y-z sense); one in four touches the image's first column
    (a cluster that cannot be rotated)."""
    images = np.zeros((n, 3, 128, 32), np.float32)
    for i in range(n):
        for plane in range(3):
            rows, columns = rng.integers(3, 40), rng.integers(2, 7)
            top, left = rng.integers(1, 128 - rows), rng.integers(1, 32 - columns)
            if i % 4 == 0:
                left = 0
            images[i, plane, top : top + rows, left : left + columns] = rng.uniform(
                0, 300, (rows, columns)
            )
    return images
