"""``edtrain hyperopt-propose``: one trial's parameters and training config.

Every job of a round computes the round's whole batch from the same inputs and keeps
its own entry, so the trials of a round are proposed in separate jobs yet agree:
round 0 takes scrambled Halton points; later rounds replay all earlier records into a
fresh in-memory study (failed ones as FAIL) and ask a TPE sampler seeded by
(seed, round) once per trial. The batch's earlier asks stay RUNNING, and TPE's
constant liar steers the next ask away from them, so a round does not repeat itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState, create_trial

from edtrain.hyperopt import record, scaling, space

log = logging.getLogger(__name__)


def search_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The version's hyperopt block, with the version seed standing in for a missing one."""
    block = config.get("hyperopt") or {}
    if not block.get("enabled"):
        raise ValueError(f"version {config.get('name')!r} has no enabled hyperopt block")
    return {"seed": config["seed"], "objective": "val_loss", **block}


def propose_round(
    hopt: dict[str, Any], round_: int, earlier: list[dict[str, Any]]
) -> list[space.Params]:
    """The parameters of every trial of ``round_``, from the records of earlier rounds."""
    dists = space.distributions(hopt["space"])
    n = int(hopt["trials_per_round"])
    if round_ == 0:
        points = space.scrambled_halton(n, len(dists), space.derive_seed(hopt["seed"], 0))
        return [space.from_unit(dists, p) for p in points]
    sampler = optuna.samplers.TPESampler(
        seed=space.derive_seed(hopt["seed"], round_),
        n_startup_trials=0,  # round 0 is the start-up phase
        multivariate=True,
        constant_liar=True,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(direction="minimize", sampler=sampler)
        for rec in earlier:
            if rec["round"] >= round_:
                raise ValueError(f"trial {rec['id']} is not from a round before {round_}")
            ok = rec["score"] is not None
            study.add_trial(
                create_trial(
                    state=TrialState.COMPLETE if ok else TrialState.FAIL,
                    value=rec["score"] if ok else None,
                    params={k: rec["params"][k] for k in dists},
                    distributions=dists,
                )
            )
        return [study.ask(dists).params for _ in range(n)]


def trial_config(
    config: dict[str, Any], hopt: dict[str, Any], round_: int, trial: int, params: space.Params
) -> dict[str, Any]:
    """The version config with the trial's parameters, epochs and samples (then scaled)."""
    overrides = {"max_epochs": int(hopt["epochs_per_trial"])}
    if "samples" in hopt:
        overrides["samples"] = int(hopt["samples"])
    out = scaling.with_params(config, params, overrides)
    out["hyperopt"] = {**config["hyperopt"], "trial": record.trial_id(round_, trial)}
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", type=Path, required=True, help="the version's base config.json")
    parser.add_argument("--round", type=int, required=True)
    parser.add_argument("--trial", type=int, required=True)
    parser.add_argument(
        "--earlier", type=Path, nargs="*", default=[], help="result.json of every earlier trial"
    )
    parser.add_argument("--out-config", type=Path, required=True, help="the trial's config.json")
    parser.add_argument("--out-params", type=Path, required=True, help="the trial's params.json")


def main(args: argparse.Namespace) -> int:
    config = json.loads(args.base.read_text())
    hopt = search_settings(config)
    if not 0 <= args.trial < int(hopt["trials_per_round"]):
        raise ValueError(f"trial {args.trial} is outside 0..{hopt['trials_per_round'] - 1}")
    earlier = record.load(args.earlier)
    params = propose_round(hopt, args.round, earlier)[args.trial]
    log.info(
        "%s from %d earlier trials: %s",
        record.trial_id(args.round, args.trial),
        len(earlier),
        params,
    )
    args.out_config.parent.mkdir(parents=True, exist_ok=True)
    args.out_config.write_text(
        json.dumps(trial_config(config, hopt, args.round, args.trial, params), indent=2) + "\n"
    )
    args.out_params.write_text(
        json.dumps(
            {
                "id": record.trial_id(args.round, args.trial),
                "round": args.round,
                "trial": args.trial,
                "seed": hopt["seed"],
                "sampler": "halton" if args.round == 0 else "tpe",
                "n_earlier": len(earlier),
                "params": params,
            },
            indent=2,
        )
        + "\n"
    )
    return 0
