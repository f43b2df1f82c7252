"""Shared fixtures: a scratch run directory for Snakemake and a way to call it.

Tests never run Snakemake in the checkout itself: its results/, logs/ and .snakemake/ (with
its locks) belong to whoever works there. A run directory links the workflow's files in and
keeps everything Snakemake writes private to the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "envs", "pyproject.toml")

Snakemake = Callable[..., subprocess.CompletedProcess[str]]


def _snakemake_env() -> dict[str, str]:
    """The environment of a Snakemake run: this interpreter's `edtrain` first on PATH."""
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        # the HTCondor bindings warn on import without a condor_config
        "CONDOR_CONFIG": "/dev/null",
    }


@pytest.fixture
def snakemake_env() -> dict[str, str]:
    """For tests that start Snakemake themselves (e.g. to kill it)."""
    return _snakemake_env()


@pytest.fixture
def rundir(tmp_path: Path) -> Path:
    """A directory that looks like the checkout to Snakemake but holds only links to it."""
    for name in WORKFLOW_FILES:
        (tmp_path / name).symlink_to(REPO / name)
    return tmp_path


@pytest.fixture
def snakemake(rundir: Path) -> Snakemake:
    """Run the `snakemake` CLI (profiles only apply there) in ``rundir``; stdout+stderr merged."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "snakemake", *args],
            cwd=rundir,
            env=_snakemake_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def pyroot():
    """PyROOT, for checks of the TTrees as upstream's C++ reads them. CI installs the ``root``
    extra, so there its absence fails instead of skipping."""
    from edtrain.formats import root_tree

    found = root_tree.root()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs the root extra, but ROOT cannot be imported")
        pytest.skip("ROOT is not installed (pip install 'edtrain[root]')")
    return found
