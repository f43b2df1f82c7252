"""One dependency list: the job environments (envs/*.yaml) hold what pyproject.toml declares.

Jobs install edtrain with ``--no-deps`` (envs/*.post-deploy.sh), so a runtime dependency that
pyproject.toml has and an environment lacks only shows up as an ImportError on a cluster node
(root:// inputs failed that way once). The workflow engine and its executor plugins run on the
submitting host only and are not in the job environments."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HOST_ONLY = {
    "snakemake",
    "snakemake-executor-plugin-slurm",
    "snakemake-executor-plugin-htcondor",
}
CONDA_NAMES = {"matplotlib": "matplotlib-base"}  # conda-forge's name without the Qt GUI
# per environment: the pyproject extras it stands for (the TensorFlow build, ROOT)
ENV_EXTRAS = {"cpu": ("cpu", "root"), "gpu": ("gpu",)}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*((?:[<>=!~]=?|===?)\s*\S+)?\s*$")


def _requirement(text: str) -> tuple[str, str]:
    """(name, lower bound) of ``name >=x`` or ``name>=x`` (conda or pip spelling)."""
    match = REQUIREMENT.match(text.split("#")[0])
    assert match, f"cannot parse requirement {text!r}"
    name, bound = match.groups()
    return name.lower(), (bound or "").replace(" ", "")


def _pyproject(extras: tuple[str, ...]) -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [
        d for extra in extras for d in project["optional-dependencies"][extra]
    ]
    return {name: bound for name, bound in map(_requirement, listed) if name not in HOST_ONLY}


def _environment(name: str) -> dict[str, str]:
    spec = yaml.safe_load((REPO / "envs" / f"{name}.yaml").read_text())
    packages: dict[str, str] = {}
    for entry in spec["dependencies"]:
        for text in entry["pip"] if isinstance(entry, dict) else [entry]:
            package, bound = _requirement(text)
            packages[package] = bound
    reverse = {conda: pip for pip, conda in CONDA_NAMES.items()}
    return {reverse.get(k, k): v for k, v in packages.items() if k not in ("python", "pip")}


@pytest.mark.parametrize("env", sorted(ENV_EXTRAS))
def test_job_environments_hold_what_pyproject_declares(env):
    declared, present = _pyproject(ENV_EXTRAS[env]), _environment(env)
    # ROOT's conda package is versioned as ROOT itself, its PyPI wheel is not
    bounds = {k: v for k, v in declared.items() if k != "root"}
    assert sorted(set(declared) - set(present)) == [], f"envs/{env}.yaml lacks these"
    assert sorted(set(present) - set(declared)) == [], f"pyproject.toml lacks these of {env}"
    differ = {k: (v, present[k]) for k, v in bounds.items() if present[k] != v}
    assert differ == {}, f"lower bounds differ (pyproject, envs/{env}.yaml)"
