"""The tiny test workflow through `--profile profiles/slurm` on the local Slurm.

One run goes from nothing to results/insights.md: production, dataset, a hyperopt search and
training on GPU jobs, prediction, insights. In it, `edtrain predict` for v7 fails once as if out
of memory: the job must come back with twice the memory and succeed. A second run asks for v12
alone.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

TEST_CONFIG = ["--configfile", "config/test/synthetic.yaml"]
# Fast status checks for a tiny run (the profile's 40 s suit real clusters); the test cluster's
# MinJobAge (3600 s) stays above 3 x init seconds, so squeue remains the status command. The
# node has 2 CPUs.
FAST = ["--slurm-init-seconds-before-status-checks", "3", "--seconds-between-status-checks", "1"]
FAST += ["--max-threads", "2"]

# The `edtrain` the jobs find first: logs each call (command, version, GPU, memory granted by
# Slurm) and fails the first `predict` of v7 as the out-of-memory killer would.
SHIM = textwrap.dedent(
    """\
    #!/bin/bash
    version=$(grep -o 'results/v[0-9]*' <<<"$*" | head -n 1 | cut -d/ -f2)
    mem=local  # a local rule, run by Snakemake itself
    if [[ -n ${{SLURM_JOB_ID:-}} ]]; then
        mem=$(scontrol show job "$SLURM_JOB_ID" | grep -o 'MinMemoryNode=[0-9]*' | cut -d= -f2)
    fi
    echo "$1 ${{version:--}} gpu=${{CUDA_VISIBLE_DEVICES:-none}} mem=$mem" >>{calls}
    if [[ $1 == predict && $version == v7 && ! -e {calls}.failed ]]; then
        touch {calls}.failed
        echo "simulated out of memory" >&2
        exit 137
    fi
    exec {real} "$@"
    """
)
TRAINING = {"train", "hyperopt-trial"}  # edtrain commands run by the GPU rules
SUBMITTED = re.compile(r"with SLURM jobid \d+ \(log: \S*/rule_(\w+)/(?:(\w+)/)?\d+\.log\)")


def submitted(output: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job Snakemake submitted, from its log."""
    return sorted(SUBMITTED.findall(output))


@pytest.fixture(scope="module")
def slurm_run(slurm_snakemake, make_rundir):
    rundir = make_rundir("slurm")
    calls = rundir / "edtrain-calls.txt"
    shim = rundir / "shim"
    shim.mkdir()
    real = Path(sys.executable).parent / "edtrain"
    (shim / "edtrain").write_text(SHIM.format(calls=calls, real=real))
    (shim / "edtrain").chmod(0o755)
    args = ["--profile", "profiles/slurm", *TEST_CONFIG, *FAST]
    result = slurm_snakemake(args, rundir, {"PATH": f"{shim}:{real.parent}:/usr/bin:/bin"})
    lines = calls.read_text().splitlines() if calls.exists() else []
    return rundir, result, [line.split() for line in lines]


def test_tiny_workflow_completes_on_slurm(slurm_run):
    rundir, result, _ = slurm_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert (rundir / "results/insights.md").is_file()
    jobs = submitted(result.stderr)
    rules = {"simulate", "chunk", "assemble", "hyperopt_trial", "train", "predict", "insights"}
    assert rules <= {rule for rule, _ in jobs}
    assert ("train", "v7") in jobs and ("train", "v11") in jobs


def test_only_training_jobs_get_a_gpu(slurm_run):
    _, result, calls = slurm_run
    assert result.returncode == 0
    in_jobs = {(command, gpu) for command, _, gpu, mem in calls if mem != "mem=local"}
    # the fake GPU: Slurm sets CUDA_VISIBLE_DEVICES=0 in jobs that asked for it
    assert {gpu for command, gpu in in_jobs if command in TRAINING} == {"gpu=0"}
    assert {gpu for command, gpu in in_jobs if command not in TRAINING} == {"gpu=none"}
    assert {command for command, _ in in_jobs} >= {"train", "hyperopt-trial", "predict"}


def test_failed_job_is_resubmitted_with_more_memory(slurm_run):
    rundir, result, calls = slurm_run
    assert result.returncode == 0
    memory = [int(m.removeprefix("mem=")) for c, v, _, m in calls if (c, v) == ("predict", "v7")]
    assert len(memory) == 2 and memory[1] == 2 * memory[0], calls
    assert submitted(result.stderr).count(("predict", "v7")) == 2
    assert (rundir / "results/v7/metrics.json").is_file()


def test_one_version_target_submits_only_its_jobs(slurm_run, slurm_snakemake):
    rundir, first, _ = slurm_run
    assert first.returncode == 0
    result = slurm_snakemake(["--profile", "profiles/slurm", *TEST_CONFIG, *FAST, "v12"], rundir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert submitted(result.stderr) == [("predict", "v12"), ("train", "v12")]
