"""One version's outputs as the insights read them (docs/architecture.md, "Version outputs").

Every file is optional here: a crashed version has no predictions, an imported legacy run
has no test set, a version that never ran has nothing. What is missing is recorded, not
fatal, so the report can say what each row lacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edtrain.config import with_neutral_defaults
from edtrain.metrics import KappaCalibration, angular_error_deg, oracle_comparison, uncertainty
from edtrain.version_files import CONFIG, HISTORY, METRICS, PREDICTIONS, RECORD

LOSS_COLUMNS = ("loss", "val_loss")


def samples_label(n: float | None) -> str:
    """10000 → "10k", as the seed writes sizes."""
    if n is None or not np.isfinite(n):
        return "?"
    return f"{n / 1000:g}k" if n >= 1000 else f"{int(n)}"


@dataclass
class Run:
    """The contract files of results/<version>/, each possibly absent."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    legacy: dict[str, Any] | None = None
    history: pd.DataFrame | None = None
    predictions: dict[str, np.ndarray] | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def imported(self) -> bool:
        return bool(self.training.get("imported")) or self.legacy is not None

    @property
    def training_status(self) -> str:
        """ok | nan | failed; a version without a training record counts as failed."""
        return str(self.training.get("status", "failed"))

    @cached_property
    def errors(self) -> np.ndarray | None:
        """Per-sample angular errors (degrees) on the test set, if predictions were saved."""
        if self.predictions is None:
            return None
        return angular_error_deg(
            self.predictions["test_predictions"], self.predictions["test_true"]
        )

    @cached_property
    def oracle(self) -> dict[str, Any] | None:
        """The oracle block of metrics.json (``metrics.oracle_comparison``), recomputed from the
        predictions where they carry oracle directions; None without an oracle."""
        p = self.predictions
        if p is None or "oracle_dir" not in p:
            return self.metrics.get("oracle")
        return oracle_comparison(
            p["test_predictions"], p["test_true"], p["oracle_dir"], p["energy_mev"]
        )

    @cached_property
    def uncertainty(self) -> dict[str, Any] | None:
        """The κ check of metrics.json (``metrics.uncertainty``), recomputed from the
        predictions where they carry κ (vmf versions); None without a κ."""
        p = self.predictions
        if p is None or "kappa" not in p:
            return self.metrics.get("uncertainty")
        calibration = KappaCalibration.saved(p)
        return uncertainty(self.errors, p["kappa"], p["energy_mev"], calibration=calibration)

    @property
    def frame(self) -> str | None:
        """The label frame the version was trained in (config ``input.frame``), if recorded."""
        return (self.config.get("input") or {}).get("frame")

    @property
    def samples(self) -> int | None:
        """Training + validation samples actually used, else the requested number."""
        used = [self.training.get("n_train"), self.training.get("n_val")]
        if all(isinstance(n, int) for n in used):
            return sum(used)
        value = self.config.get("samples")
        return int(value) if value is not None else None

    @property
    def architecture(self) -> str:
        model = self.config.get("model") or {}
        if "conv_layers" not in model:
            return "?"
        size = f"{model['conv_layers']}L×{model['filters']}F"
        if model.get("crop"):  # what each branch sees and learns from, where it is not all
            size += " on {}×{}".format(*model["crop"])
        if model.get("plane_supervision"):
            size += ", plane-supervised"
        if model.get("shared_induction"):
            size += ", U and V shared"
        # the predecessor's family keeps its bare name; the resnet family says so
        return size if model.get("type", "three_branch") == "three_branch" else f"ResNet {size}"

    @property
    def loss(self) -> str:
        return str(self.config.get("loss", "?"))

    @property
    def test_set(self) -> str:
        """Identity of the samples this version was scored on; legacy runs used their own."""
        digest = self.metrics.get("test_set_hash")
        if digest:
            return str(digest)
        return f"own validation split of {self.name}" if self.imported else "unknown"

    def history_nonfinite(self) -> bool:
        """Any NaN/inf in the training or validation loss (the NaN rule of docs/insights.md)."""
        if self.history is None:
            return False
        cols = [c for c in LOSS_COLUMNS if c in self.history]
        values = self.history[cols].to_numpy(dtype=np.float64)
        return bool(values.size) and not bool(np.isfinite(values).all())


def _read_json(path: Path, run: Run) -> dict[str, Any]:
    if not path.is_file():
        run.missing.append(path.name)
        return {}
    return json.loads(path.read_text())


def _read_predictions(path: Path, run: Run) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        run.missing.append(path.name)
        return None
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def load_run(results_dir: Path, name: str, unfinished: bool = False) -> Run:
    """Read results_dir/name; absent files are listed in ``Run.missing``. An ``unfinished``
    version (its jobs failed or did not run) keeps only its config: the rest is not its."""
    folder = Path(results_dir) / name
    run = Run(name=name)
    run.config = with_neutral_defaults(_read_json(folder / CONFIG, run))
    run.training = _read_json(folder / RECORD, run)
    run.metrics = _read_json(folder / METRICS, run)
    legacy = folder / "legacy.json"
    run.legacy = json.loads(legacy.read_text()) if legacy.is_file() else None
    history = folder / HISTORY
    if history.is_file():
        run.history = pd.read_csv(history)
    else:
        run.missing.append(history.name)
    run.predictions = _read_predictions(folder / PREDICTIONS, run)
    if run.training_status == "failed":  # no finite model: its predictions are NaN stand-ins
        run.predictions = None
    if unfinished or (not run.training and run.legacy is None):
        # no training of this run: what is left in the folder is an earlier run's
        run.training, run.metrics, run.history, run.predictions = {}, {}, None, None
    return run
