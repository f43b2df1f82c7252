"""profiles/condor/job-wrapper.sh: the job command it recovers and the environments it selects.

Each case runs the wrapper as HTCondor would, with the arguments the HTCondor plugin writes and
a minimal environment, and asks Snakemake for its version (or shows what would have run).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import snakemake

REPO = Path(__file__).resolve().parents[2]
WRAPPER = REPO / "profiles/condor/job-wrapper.sh"
PREFIX = ["pip", "install", "--target", ".snakemake/pip-deployments", "some-plugin", "&&"]
BASE_ENV = {"PATH": "/usr/bin:/bin"}


def wrapper(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(WRAPPER), *args],
        env={**BASE_ENV, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/bash\n" + text)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    "args",
    [
        [*PREFIX, sys.executable, "-m", "snakemake", "--version"],  # storage-plugin defect
        [sys.executable, "-m", "snakemake", "--version"],
        ["--version"],  # the plugin already removed `python -m snakemake`
    ],
    ids=["prefixed", "python-head", "bare"],
)
def test_runs_the_snakemake_job_command(args, tmp_path):
    env = {"EDTRAIN_JOB_ENV": "none", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    result = wrapper(args, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == snakemake.__version__


def test_lcg_sources_the_view_first(tmp_path):
    view = script(tmp_path / "view/setup.sh", f': "$LCG_NEVER_SET"\ntouch {tmp_path}/sourced\n')
    env = {"EDTRAIN_JOB_ENV": "lcg", "EDTRAIN_LCG_VIEW": str(view)}
    result = wrapper([*PREFIX, sys.executable, "-m", "snakemake", "--version"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sourced").exists()
    assert result.stdout.strip() == snakemake.__version__


def test_by_default_a_python_outside_lcg_runs_as_it_is(tmp_path):
    result = wrapper([sys.executable, "-m", "snakemake", "--version"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"environment none, {sys.executable}" in result.stderr


def test_by_default_a_venv_made_on_an_lcg_view_gets_the_view(tmp_path):
    view = script(tmp_path / "view/setup.sh", f"touch {tmp_path}/sourced\n")
    python = script(tmp_path / "venv/bin/python", f'exec {sys.executable} "$@"\n')
    lcg_python = "/cvmfs/sft.cern.ch/lcg/views/LCG_106_cuda/x86_64-el9-gcc11-opt/bin"
    (tmp_path / "venv/pyvenv.cfg").write_text(f"home = {lcg_python}\n")
    env = {"EDTRAIN_LCG_VIEW": str(view)}
    result = wrapper([*PREFIX, str(python), "-m", "snakemake", "--version"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sourced").exists()
    assert f"environment lcg, {python}" in result.stderr


def test_conda_activates_the_environment(tmp_path):
    bin_dir = tmp_path / "envs/edtrain/bin"
    script(bin_dir / "python", 'echo "conda python $*"\n')
    script(
        tmp_path / "conda/etc/profile.d/conda.sh",
        f'conda() {{ [[ $1 == activate && $2 == edtrain ]] && PATH="{bin_dir}:$PATH"; }}\n',
    )
    env = {"EDTRAIN_JOB_ENV": "conda", "EDTRAIN_CONDA_BASE": str(tmp_path / "conda")}
    env["EDTRAIN_CONDA_ENV"] = "edtrain"
    result = wrapper([*PREFIX, sys.executable, "-m", "snakemake", "--version"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "conda python -m snakemake --version"


def test_container_runs_inside_the_image_with_the_gpu(tmp_path):
    fake_bin = tmp_path / "bin"
    script(fake_bin / "apptainer", 'echo "apptainer $*"\n')
    env = {"EDTRAIN_JOB_ENV": "container", "EDTRAIN_CONTAINER": "/images/edtrain.sif"}
    env["PATH"] = f"{fake_bin}:/usr/bin:/bin"
    result = wrapper([*PREFIX, sys.executable, "-m", "snakemake", "--version"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip()
    assert command.startswith("apptainer exec --nv ")
    assert command.endswith(f"--pwd {tmp_path} /images/edtrain.sif python3 -m snakemake --version")


def test_unknown_environment_is_an_error(tmp_path):
    result = wrapper(["--version"], {"EDTRAIN_JOB_ENV": "venv"}, tmp_path)
    assert result.returncode == 2
    assert "unknown EDTRAIN_JOB_ENV=venv" in result.stderr
