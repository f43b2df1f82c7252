"""The tiny test workflow through `--profile profiles/condor`: the real HTCondor executor plugin,
the fake schedd (tests/cluster/fakecondor.py) running the jobs here, and a Snakemake storage
plugin registered so that every job command carries the `pip install ... &&` prefix the job
wrapper has to survive.
"""

from __future__ import annotations

import json
import re

import pytest

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

GPU_RULES = {"train", "hyperopt_trial"}


@pytest.fixture(scope="module")
def condor_run(condor_snakemake, make_rundir):
    rundir = make_rundir("condor")
    args = ["--profile", "profiles/condor", "--configfile", "config/test/synthetic.yaml"]
    args += ["--seconds-between-status-checks", "1"]
    env = {"EDTRAIN_JOB_ENV": "none", "EDTRAIN_ACCOUNTING_GROUP": "group_u_TEST.ci"}
    result = condor_snakemake(args, rundir, env, storage_plugin=True)
    submits = [json.loads(line) for line in (rundir / ".fakecondor/submits.jsonl").open()]
    for submit in submits:
        submit["rule"] = submit["batch_name"].rsplit("-", 1)[0]
    return rundir, result, submits


def test_tiny_workflow_completes_through_the_wrapper(condor_run):
    rundir, result, submits = condor_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert (rundir / "results/insights.md").is_file()
    assert {"simulate", "chunk", "assemble", "train", "predict", "insights"} <= {
        s["rule"] for s in submits
    }
    for submit in submits:
        # the defect is there, and the wrapper is what runs
        assert submit["arguments"].startswith("pip install "), submit["arguments"][:200]
        assert submit["executable"] == "profiles/condor/job-wrapper.sh"
    events = (rundir / ".condor_jobs/snakemake-rules.log").read_text()
    assert events.count("Normal termination (return value 0)") == len(submits)
    err = next((rundir / ".condor_jobs/train").glob("*.err")).read_text()
    assert "edtrain job wrapper: environment none" in err


def test_only_training_jobs_request_a_gpu(condor_run):
    _, _, submits = condor_run
    for submit in submits:
        if submit["rule"] in GPU_RULES:
            assert submit["request_gpus"] == "1"
            assert submit["request_cpus"] == "1"
        else:
            assert "request_gpus" not in submit, submit["rule"]


def test_submit_descriptions_carry_the_lxplus_settings(condor_run):
    rundir, _, submits = condor_run
    for submit in submits:
        assert megabytes(submit["request_memory"]) >= 2000
        assert int(submit["MY.MaxRuntime"]) >= 3600
        assert submit["MY.AccountingGroup"] == '"group_u_TEST.ci"'
        assert submit["MY.SendCredential"] == "True"
        assert submit["getenv"] == "EDTRAIN_*"
    trained = set()
    for submit in (s for s in submits if s["rule"] == "train"):
        version = re.search(r"train:version=(\w+)", submit["arguments"])[1]
        samples = json.loads((rundir / f"results/{version}/config.json").read_text())["samples"]
        assert megabytes(submit["request_memory"]) == min(16000, 4000 + samples // 8)
        assert int(submit["MY.MaxRuntime"]) == min(259200, 3600 + samples // 2)
        trained.add(version)
    assert trained == {"v7", "v11"}


def megabytes(request_memory: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(MB|GB)", request_memory).groups()
    return int(number) * (1024 if unit == "GB" else 1)
