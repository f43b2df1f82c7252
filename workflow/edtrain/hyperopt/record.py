"""A trial's record (result.json): its parameters, status, score and history.

The record is the only thing later rounds and the selection read, so a trial is
self-describing even when training crashed before writing anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

# objective name → history.csv column (the degree metrics are logged per epoch by training)
OBJECTIVE_COLUMNS = {"val_loss": "val_loss", "val_q68": "val_q68_deg"}


def trial_id(round_: int | str, trial: int | str) -> str:
    """A trial's folder below the version's hyperopt/ (results, state and logs alike); with
    "{round}" and "{trial}" it is the rules' wildcard pattern."""
    return f"round{round_}/trial{trial}"


def read_json_or_none(path: Path) -> dict[str, Any] | None:
    """A JSON file, or None if it is missing or unreadable (a crashed trainer's leftovers)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_history(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError):
        return None


def score(
    objective: str, training: dict[str, Any] | None, history: pd.DataFrame | None
) -> tuple[float | None, str | None]:
    """(score, reason): the best finite epoch value of the objective, or None and why not.

    Only status ``ok`` scores: a NaN run's earlier epochs came from a configuration that
    diverges, and its weights are not a model the search should pick.
    """
    if training is None:
        return None, "no training.json"
    status = training.get("status")
    if status != "ok":
        return None, f"training status {status!r}"
    column = OBJECTIVE_COLUMNS[objective]
    if history is None or column not in history:
        return None, f"history.csv has no {column!r} column"
    values = pd.to_numeric(history[column], errors="coerce")
    finite = values[values.map(math.isfinite)]
    if finite.empty:
        return None, f"no finite {column!r} value"
    return float(finite.min()), None


def history_columns(history: pd.DataFrame | None) -> dict[str, list[float | None]] | None:
    """The history as JSON-safe columns (NaN/inf become null)."""
    if history is None:
        return None
    numeric = history.apply(pd.to_numeric, errors="coerce").astype(float)
    return {
        str(col): [v if math.isfinite(v) else None for v in numeric[col].tolist()]
        for col in numeric.columns
    }


def load(paths: list[Path]) -> list[dict[str, Any]]:
    """Trial records ordered by (round, trial): the order Optuna replays them in."""
    records = [json.loads(Path(p).read_text()) for p in paths]
    return sorted(records, key=lambda r: (r["round"], r["trial"]))
