"""``edtrain hyperopt-apply``: the version's final config = base config + best parameters.

The result is the version's ``config.json``: training reads it unchanged, and its
``hyperopt`` block records that the search ran and which trial won, so the record of
the final model says where its hyperparameters came from. As in a trial, the parameters
are set before the version's scaling.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edtrain.hyperopt import scaling


def final_config(base: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
    out = scaling.with_params(base, best["best_params"])
    out["hyperopt"] = {
        **base["hyperopt"],
        "ran": True,
        "best_params": best["best_params"],
        "best_trial": best["best_trial"],
        "best_score": best["best_score"],
        "n_trials": best["n_trials"],
        "n_failed": best["n_failed"],
    }
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", type=Path, required=True, help="the version's base config.json")
    parser.add_argument("--best", type=Path, required=True, help="best_params.json")
    parser.add_argument("--out", type=Path, required=True, help="the version's config.json")


def main(args: argparse.Namespace) -> int:
    config = final_config(json.loads(args.base.read_text()), json.loads(args.best.read_text()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(config, indent=2) + "\n")
    return 0
