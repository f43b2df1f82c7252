"""``edtrain hyperopt-trial``: train one trial and record it, whatever happens.

Training runs as the ordinary ``edtrain train`` command in a child process, so a
crash, a NaN stop or a broken configuration (say, too many poolings for the image)
ends up as a FAIL record with its reason instead of a failed job that would stop
the whole search.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

from edtrain.exit_status import NOT_HERE
from edtrain.hyperopt import record
from edtrain.hyperopt.propose import search_settings
from edtrain.version_files import HISTORY, RECORD

log = logging.getLogger(__name__)


class NotHereError(RuntimeError):
    """The trial could not run here (no GPU, its state busy): nothing about its parameters."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


def run_training(argv: list[str]) -> int:
    """Run ``edtrain train`` (the executable on PATH, as the workflow's rules do)."""
    return subprocess.run(["edtrain", "train", *argv], check=False).returncode


def run(
    dataset: Path, config: Path, params: Path, out_dir: Path, state_dir: Path
) -> dict[str, Any]:
    """Train the trial and build its record. A trial re-proposed with other parameters
    finds its state discarded by ``edtrain train`` (edtrain.state: another config)."""
    trial = json.loads(params.read_text())
    objective = search_settings(json.loads(config.read_text()))["objective"]
    out_dir.mkdir(parents=True, exist_ok=True)
    # a rerun must not score the previous attempt's outputs (training rewrites both)
    for name in (RECORD, HISTORY):
        (out_dir / name).unlink(missing_ok=True)
    flags = {
        "--dataset": dataset,
        "--config": config,
        "--out-dir": out_dir,
        "--state-dir": state_dir,
    }
    returncode = run_training([str(x) for pair in flags.items() for x in pair])
    if returncode in NOT_HERE:
        raise NotHereError(
            f"edtrain train could not run {trial['id']} here (exit {returncode}: see above)",
            returncode,
        )
    training = record.read_json_or_none(out_dir / RECORD)
    history = record.read_history(out_dir / HISTORY)
    value, reason = record.score(objective, training, history)
    status = (training or {}).get("status", "failed")
    if returncode != 0:
        value, reason = None, f"edtrain train exited with code {returncode} (status {status})"
    if status == "ok" and value is None:
        status = "failed"
    return {
        "id": trial["id"],
        "round": trial["round"],
        "trial": trial["trial"],
        "params": trial["params"],
        "objective": objective,
        "status": status,
        "score": value,
        "reason": reason,
        "returncode": returncode,
        "training": training,
        "history": record.history_columns(history),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True, help="the trial's config.json")
    parser.add_argument("--params", type=Path, required=True, help="the trial's params.json")
    parser.add_argument("--out-dir", type=Path, required=True, help="training outputs go here")
    parser.add_argument("--state-dir", type=Path, required=True, help="resumable training state")
    parser.add_argument("--result", type=Path, required=True, help="the trial's result.json")


def main(args: argparse.Namespace) -> int:
    try:
        result = run(args.dataset, args.config, args.params, args.out_dir, args.state_dir)
    except NotHereError as err:
        log.error("%s", err)
        return err.returncode
    if result["score"] is None:
        log.warning("%s recorded as failed: %s", result["id"], result["reason"])
    else:
        log.info("%s: %s = %.6g", result["id"], result["objective"], result["score"])
    args.result.write_text(json.dumps(result, indent=2) + "\n")
    return 0
