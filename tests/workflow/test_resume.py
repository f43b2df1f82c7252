"""A training job killed mid-run (eviction, preemption) resumes at its last epoch on rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edtrain.callbacks import BACKUP_DIR, completed_epochs

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

EPOCHS = 6
LAYER = f"""
run_versions: [v7]
require_gpu: false
data:
  source: synthetic
  synthetic: {{files: 2, events_per_file: 40, layout: flat}}
  test_fraction: 0.2
  chunks: 1
scaling: {{name: test, samples_factor: 0.01, max_epochs: {EPOCHS}, width_factor: 0.125}}
versions:
  v7:
    callbacks: {{early_stopping: {{patience: 50}}, reduce_lr: {{patience: 50}}}}
"""


def _wait_for_epochs(backup: Path, epochs: int, job: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while completed_epochs(backup) < epochs:
        assert job.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.2)


def test_killed_training_resumes_at_its_last_epoch(
    snakemake, snakemake_env: dict[str, str], rundir: Path
) -> None:
    (rundir / "resume.yaml").write_text(LAYER)
    target = ["--configfile", "resume.yaml", "--cores", "1", "results/v7/training.json"]
    prepared = snakemake(*target, "--until", "version_config", "assemble", timeout=600)
    assert prepared.returncode == 0, prepared.stdout

    job = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *target],
        cwd=rundir,
        env=snakemake_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_epochs(rundir / ".state" / "v7" / BACKUP_DIR, 2, job, timeout=300)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    assert not (rundir / "results" / "v7" / "training.json").exists()

    # what a user does after a crash of the whole run: unlock, then run again
    assert snakemake(*target, "--unlock").returncode == 0
    rerun = snakemake(*target, "--rerun-incomplete", timeout=600)
    assert rerun.returncode == 0, rerun.stdout
    record = json.loads((rundir / "results" / "v7" / "training.json").read_text())
    assert record["resumed_from_epoch"] >= 2
    assert record["epochs_run"] == EPOCHS
    assert record["status"] == "ok"
