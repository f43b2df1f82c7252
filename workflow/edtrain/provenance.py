"""What made an output: edtrain's version and git commit, Python and the key packages.

Recorded in every training.json and summarized in the insights, so a result can be traced to
the code and libraries that produced it (the package version alone says little between
releases). The commit is read from the checkout edtrain runs from, if it is one; an
installed copy outside a checkout records none.
"""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from edtrain import __version__

PACKAGES = ("keras", "tensorflow", "tensorflow-cpu", "jax", "numpy", "uproot", "snakemake")


@cache
def git_commit() -> str | None:
    """The checkout's commit, with ``-dirty`` if tracked files differ from it; None outside
    a git checkout (or without git)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def packages() -> dict[str, str]:
    """Installed versions of the packages that shape a result (absent ones left out)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def provenance() -> dict[str, Any]:
    """The record's provenance keys."""
    return {
        "edtrain_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "packages": packages(),
    }
