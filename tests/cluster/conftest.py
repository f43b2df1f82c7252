"""Fixtures for the cluster tests: a local Slurm, and Snakemake driving a fake HTCondor schedd.

Locally these tests skip, with the reason, when Slurm is not running (start it with
`sudo .ci/slurm.sh`) or the htcondor bindings are missing. With CI=true they fail instead: CI
must exercise both executors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FAKECONDOR = HERE / "fakecondor.py"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "envs", "pyproject.toml")


def unavailable(reason: str) -> None:
    """Skip, or fail under CI, because a cluster service is missing."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the cluster tests must run; see .ci/slurm.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm() -> str:
    """The name of an idle local Slurm node."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        unavailable("Slurm is not installed: run `sudo .ci/slurm.sh`")
    result = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, check=False
    )
    nodes = [line.split() for line in result.stdout.splitlines() if line.strip()]
    usable = [name for name, state in nodes if state in {"idle", "mixed", "allocated"}]
    if result.returncode != 0 or not usable:
        unavailable(f"no usable Slurm node ({result.stdout.strip() or result.stderr.strip()})")
    return usable[0]


@pytest.fixture(scope="session")
def htcondor_bindings() -> None:
    """The htcondor2 Python bindings the HTCondor executor plugin imports."""
    os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # no pool here: silence the warning
    try:
        import htcondor2  # noqa: F401
    except ImportError as e:
        unavailable(f"htcondor bindings not importable: {e}")


@pytest.fixture(scope="session")
def make_rundir(tmp_path_factory):
    """`(name) -> Path`: a new directory that looks like the checkout (links to its files)."""

    def _make(name: str) -> Path:
        path = tmp_path_factory.mktemp(name)
        for item in WORKFLOW_FILES:
            (path / item).symlink_to(REPO / item)
        return path

    return _make


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600):
    """Run a command with this Python's scripts (edtrain) on PATH; prints output for failures."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    result = subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(f"$ {' '.join(cmd)}\n[exit {result.returncode}]\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def condor_snakemake(htcondor_bindings):
    """Run Snakemake (CLI arguments) with the real HTCondor plugin and the fake schedd.

    Returns a function `(args, cwd, env=None, storage_plugin=False)`; submit descriptions are
    recorded in `<cwd>/.fakecondor/submits.jsonl`.
    """

    def _run(args, cwd: Path, env=None, storage_plugin: bool = False):
        flags = ["--with-storage-plugin"] if storage_plugin else []
        cmd = [sys.executable, str(FAKECONDOR), *flags, *args]
        base = {"CONDOR_CONFIG": "/dev/null", "FAKECONDOR_DIR": str(cwd / ".fakecondor")}
        return run(cmd, cwd, {**base, **(env or {})})

    return _run


@pytest.fixture(scope="session")
def slurm_snakemake(slurm):
    """Run Snakemake (CLI arguments) against the local Slurm: `(args, cwd, env=None)`."""

    def _run(args, cwd: Path, env=None):
        return run([sys.executable, "-m", "snakemake", *args], cwd, env or {})

    return _run
