"""The static job plan of a search: which versions search, and the files of each trial.

Snakemake needs every trial's files before anything runs; they follow from the config
alone (rounds × trials_per_round), which is what keeps the plan static while later
rounds still learn from earlier ones through their result files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from edtrain.config import resolve_version, run_dir
from edtrain.hyperopt import space
from edtrain.hyperopt.record import trial_id


def search_block(config: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The resolved hyperopt block of a version."""
    return resolve_version(config, version)["hyperopt"]


def versions(config: Mapping[str, Any]) -> list[str]:
    """Declared versions whose search is enabled, after checking their parameter names."""
    chosen = []
    for name in config["versions"]:
        resolved = resolve_version(config, name)
        if resolved["hyperopt"]["enabled"]:
            space.check_parameter_paths(resolved, resolved["hyperopt"]["space"])
            chosen.append(name)
    return chosen


def version_pattern(config: Mapping[str, Any]) -> str:
    """A wildcard constraint matching exactly the searching versions (nothing if none)."""
    names = versions(config)
    return "|".join(re.escape(v) for v in names) if names else "(?!)"


def trial_dir(config: Mapping[str, Any], version: str, round_: int | str, trial: int | str) -> str:
    return f"{run_dir(config)}/{version}/hyperopt/{trial_id(round_, trial)}"


def results(config: Mapping[str, Any], version: str, before: int | None = None) -> list[str]:
    """result.json of every trial of the version's rounds < ``before`` (all rounds if None)."""
    hopt = search_block(config, version)
    rounds = int(hopt["rounds"]) if before is None else int(before)
    return [
        f"{trial_dir(config, version, r, t)}/result.json"
        for r in range(rounds)
        for t in range(int(hopt["trials_per_round"]))
    ]
