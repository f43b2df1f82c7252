"""The fake schedd drives the real HTCondor executor plugin on a two-rule workflow."""

import json
import re
import textwrap

SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input: "b.txt"

    rule a:
        output: "a.txt"
        resources: request_gpus=1, classad_JobFlavour="microcentury"
        shell: "echo gpu=$CUDA_VISIBLE_DEVICES > {output}"

    rule b:
        input: "a.txt"
        output: "b.txt"
        shell: "cat {input} > {output}; echo cpus=$OMP_NUM_THREADS >> {output}"

    rule broken:
        output: "never.txt"
        shell: "exit 3"
    """
)
ARGS = [
    "--executor",
    "htcondor",
    "--jobs",
    "2",
    "--seconds-between-status-checks",
    "1",
    "--default-resources",
    "getenv=True",
]


def test_two_rules_run_through_the_plugin(tmp_path, condor_snakemake):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    assert condor_snakemake(ARGS, tmp_path).returncode == 0
    assert (tmp_path / "b.txt").read_text() == "gpu=0\ncpus=1\n"
    submits = [json.loads(line) for line in (tmp_path / ".fakecondor/submits.jsonl").open()]
    by_rule = {s["batch_name"].split("-")[0]: s for s in submits}
    assert set(by_rule) == {"a", "b"}
    assert by_rule["a"]["request_gpus"] == "1"
    assert by_rule["a"]["MY.JobFlavour"] == '"microcentury"'
    assert "request_gpus" not in by_rule["b"]
    events = (tmp_path / ".snakemake/htcondor/snakemake-rules.log").read_text()
    assert len(re.findall(r"Normal termination \(return value 0\)", events)) == 2


def test_a_failing_job_fails_the_run(tmp_path, condor_snakemake):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    result = condor_snakemake(["never.txt", *ARGS], tmp_path)
    assert result.returncode != 0
    assert "completed but failed with ExitCode 1" in result.stderr
    (err,) = (tmp_path / ".snakemake/htcondor/broken").glob("*.err")
    assert "exit status 3" in err.read_text()


def test_storage_plugin_prefix_kills_jobs_without_a_wrapper(tmp_path, condor_snakemake):
    """The plugin defect the condor profile's job wrapper exists for is reproduced here."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    result = condor_snakemake(["a.txt", *ARGS], tmp_path, storage_plugin=True)
    assert result.returncode != 0
    (submit,) = [json.loads(line) for line in (tmp_path / ".fakecondor/submits.jsonl").open()]
    # the plugin takes `pip` for the Python to strip: the job runs `python install ...`
    assert submit["arguments"].startswith("install --target ")
    (err,) = (tmp_path / ".snakemake/htcondor/a").glob("*.err")
    assert "can't open file" in err.read_text()
