"""What Snakemake plans, without running a job: targets, profiles, config errors, reruns.

Each test runs the real `snakemake` CLI in a scratch directory (see tests/conftest.py) and
reads the jobs off its dry-run listing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake.utils import validate

from edtrain.config import resolve_version
from edtrain.dataset.discover import chunk_of

REPO = Path(__file__).resolve().parents[2]
# every version config.yaml declares: the plan must train each one
ALL_VERSIONS = list(yaml.safe_load((REPO / "config" / "config.yaml").read_text())["versions"])
DATA_RULES = {"simulate", "chunk", "assemble"}
GPU_RULES = {"train", "hyperopt_trial"}
VERSION_RULES = {"version_config", "train", "predict"}


@dataclass
class Job:
    rule: str
    outputs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    wildcards: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    threads: int = 1


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(", ") if "=" in item)


def planned_jobs(listing: str) -> list[Job]:
    """The jobs of a `snakemake -n` listing, one per `rule NAME:` / `localrule NAME:` block."""
    jobs: list[Job] = []
    for line in listing.splitlines():
        if match := re.fullmatch(r"(?:local)?rule (\S+):", line.strip()):
            jobs.append(Job(match[1]))
        elif jobs and (match := re.fullmatch(r"\s+(\w+): (.*)", line)):
            key, value = match.groups()
            if key == "output":
                jobs[-1].outputs = value.split(", ")
            elif key == "log":
                jobs[-1].logs = value.split(", ")
            elif key == "wildcards":
                jobs[-1].wildcards = _pairs(value)
            elif key == "resources":
                jobs[-1].resources = _pairs(value)
            elif key == "threads":
                jobs[-1].threads = int(value)
    return jobs


def dry_run(snakemake, *args: str) -> list[Job]:
    result = snakemake("-n", *args)
    assert result.returncode == 0, result.stdout
    return planned_jobs(result.stdout)


def test_a_version_target_plans_that_version_and_its_data_only(snakemake) -> None:
    jobs = dry_run(snakemake, "v12")
    rules = {job.rule for job in jobs}
    assert rules == DATA_RULES | VERSION_RULES | {"v12"}
    assert {job.wildcards.get("version") for job in jobs if job.rule in VERSION_RULES} == {"v12"}
    outputs = [out for job in jobs for out in job.outputs]
    assert "results/v12/model.keras" in outputs
    assert "results/v12/metrics.json" in outputs
    for out in outputs:
        assert out.startswith(
            ("results/v12/", "results/datasets/synthetic/", "results/chunks/synthetic/")
        ) or out in {"results/production/eos", "results/production/production.json"}, out


def test_runs_of_different_configs_never_share_a_file(snakemake, rundir: Path) -> None:
    # a demo run has begun; a plain `snakemake -n v12` plans the unnamed run, beside it
    made = snakemake(
        "--cores", "1", "results/demo/v14/config.json", "--configfile", "config/demo.yaml"
    )  # fmt: skip
    assert made.returncode == 0, made.stdout
    assert (rundir / "results/demo/v14/config.json").is_file()
    plain = snakemake("-n", "-p", "v12")
    assert plain.returncode == 0, plain.stdout
    demo = snakemake("-n", "-p", "v12", "--configfile", "config/demo.yaml")
    assert demo.returncode == 0, demo.stdout
    for listing, inside in ((plain.stdout, False), (demo.stdout, True)):
        jobs = planned_jobs(listing)
        assert {"simulate", "train", "predict"} <= {job.rule for job in jobs}
        files = [path for job in jobs for path in (*job.outputs, *job.logs)]
        assert files and all(
            path.startswith(("results/demo/", "logs/demo/")) == inside for path in files
        ), files
        assert ("--state-dir .state/demo/v12" in listing) == inside
    assert "--state-dir .state/v12" in plain.stdout


def test_results_can_live_elsewhere_with_logs_and_state_in_the_checkout(
    snakemake, rundir: Path, tmp_path: Path
) -> None:
    """run.results_dir (e.g. EOS on lxplus): the bulk moves, logs and state stay."""
    store = tmp_path / "store"
    config = rundir / "elsewhere.yaml"
    config.write_text(yaml.safe_dump({"run": {"name": "big", "results_dir": f"{store}/"}}))
    listing = snakemake("-n", "-p", "v12", "--configfile", str(config))
    assert listing.returncode == 0, listing.stdout
    jobs = planned_jobs(listing.stdout)
    assert {"simulate", "chunk", "assemble", "train", "predict"} <= {job.rule for job in jobs}
    outputs = [path for job in jobs for path in job.outputs]
    assert outputs and all(path.startswith(f"{store}/big/") for path in outputs), outputs
    assert all(path.startswith("logs/big/") for job in jobs for path in job.logs)
    assert "--state-dir .state/big/v12" in listing.stdout


def test_a_version_file_target_plans_that_version_only(snakemake) -> None:
    jobs = dry_run(snakemake, "results/v9/metrics.json")
    assert {job.wildcards["version"] for job in jobs if "version" in job.wildcards} == {"v9"}
    assert "train" in {job.rule for job in jobs}
    assert not any(job.rule in {"insights", "gallery", "v9"} for job in jobs)


@pytest.mark.parametrize(
    ("profile", "gpu"),
    [("condor", {"request_gpus": "1"}), ("slurm", {"gpu": "1"}), ("local", {})],
)
def test_profiles_plan_the_whole_workflow(snakemake, profile: str, gpu: dict[str, str]) -> None:
    jobs = dry_run(snakemake, "--profile", f"profiles/{profile}")
    trains = [job for job in jobs if job.rule == "train"]
    assert sorted(job.wildcards["version"] for job in trains) == sorted(ALL_VERSIONS)
    assert {"insights", "gallery", "all"} <= {job.rule for job in jobs}
    assert sum(job.rule == "chunk" for job in jobs) == 16
    for job in jobs:
        # a GPU is requested by training jobs and by nothing else
        asked = {key: job.resources.get(key) for key in gpu}
        assert asked == (gpu if job.rule in GPU_RULES else dict.fromkeys(gpu)), job


def test_condor_training_jobs_carry_the_lxplus_settings(snakemake) -> None:
    # memory and runtime are sized from the version's resolved config (a local rule)
    written = snakemake("--cores", "1", "results/v14/config.json")
    assert written.returncode == 0, written.stdout
    jobs = dry_run(snakemake, "--profile", "profiles/condor", "v14")
    (train,) = [job for job in jobs if job.rule == "train"]
    assert train.threads == 1
    assert train.resources["htcondor_request_mem_mb"] == "16000"
    assert int(train.resources["classad_MaxRuntime"]) >= 86400
    assert train.resources["htcondor_submit_MY__SendCredential"] == "True"
    assert "classad_AccountingGroup" in train.resources


@pytest.mark.parametrize("samples", [1_000, 100_000, 200_000])
def test_condor_training_retries_never_outgrow_a_gpu_slot(tmp_path: Path, samples: int) -> None:
    profile = yaml.safe_load((REPO / "profiles" / "condor" / "config.yaml").read_text())
    train = profile["set-resources"]["train"]
    (tmp_path / "config.json").write_text(json.dumps({"samples": samples}))
    names = {"input": SimpleNamespace(config=str(tmp_path / "config.json"))}
    memory = [eval(train["htcondor_request_mem_mb"], {**names, "attempt": a}) for a in (1, 2, 3)]
    runtime = [eval(train["classad_MaxRuntime"], {**names, "attempt": a}) for a in (1, 2, 3)]
    assert memory == sorted(memory) and max(memory) <= 16000
    assert runtime == sorted(runtime) and max(runtime) <= 3 * 86400
    assert memory[0] == min(16000, 4000 + samples // 8)


def test_only_selected_versions_are_built_by_default(snakemake, rundir: Path) -> None:
    (rundir / "two.yaml").write_text("run_versions: [v8, v14]\n")
    jobs = dry_run(snakemake, "--configfile", "two.yaml")
    trained = {job.wildcards["version"] for job in jobs if job.rule == "train"}
    assert trained == {"v8", "v14"}


def test_a_version_with_hyperopt_plans_its_search_before_its_training(snakemake) -> None:
    jobs = dry_run(snakemake, "v11")
    rules = [job.rule for job in jobs]
    assert rules.count("hyperopt_trial") == 20
    (apply,) = [job for job in jobs if job.rule == "hyperopt_apply"]
    assert apply.outputs == ["results/v11/config.json"]
    assert "version_config" not in rules


@pytest.mark.parametrize(
    ("layer", "named"),
    [
        ("bogus_key: 1\n", ["bogus_key: unknown key", "value: 1, set in bad.yaml"]),
        ("versions:\n  v8:\n    loss: angular_loss\n", ["versions.v8.loss: 'angular_loss'"]),
        ("defaults:\n  batch_size: 32.5\n", ["defaults.batch_size: 32.5 is not of type"]),
        (
            "data:\n  source: eos\n  directories: [/nonexistent/cluster_images_nov11]\n",
            ["data.directories[0]", "/nonexistent/cluster_images_nov11"],
        ),
        (
            "versions:\n  v9:\n    model: {conv_layers: 9}\n",
            ["versions.v9.model.conv_layers: 9 conv layers", "at most 5"],
        ),
        ("versions:\n  train: {}\n", ["versions.train:", "rules: all, assemble, chunk"]),
    ],
)
def test_bad_config_stops_before_any_job(
    snakemake, rundir: Path, layer: str, named: list[str]
) -> None:
    (rundir / "bad.yaml").write_text(layer)
    result = snakemake("-n", "--configfile", "bad.yaml")
    assert result.returncode != 0
    for fragment in named:
        assert fragment in result.stdout
    assert not planned_jobs(result.stdout)


def test_a_config_error_is_a_few_lines_naming_key_value_file_and_fix(
    snakemake, rundir: Path
) -> None:
    (rundir / "bad.yaml").write_text("versions:\n  v10:\n    model: {dropuot: 0.5}\n")
    result = snakemake("-n", "--configfile", "bad.yaml")
    assert result.returncode != 0
    error = result.stdout[result.stdout.index("ConfigError") :]
    assert len(error.splitlines()) <= 15, error
    assert "versions.v10.model.dropuot: unknown key; did you mean 'dropout'?" in error
    assert "value: 0.5, set in bad.yaml" in error


def test_without_edtrain_on_path_nothing_is_planned(rundir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "v7"],
        cwd=rundir,
        env={**os.environ, "PATH": "/usr/bin:/bin", "CONDOR_CONFIG": "/dev/null"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "`edtrain` command is not on PATH" in result.stdout + result.stderr
    assert "pip install -e ." in result.stdout + result.stderr


def test_a_config_edit_reruns_only_the_edited_version(snakemake, rundir: Path) -> None:
    targets = ["results/v7/config.json", "results/v8/config.json"]
    first = snakemake("--cores", "1", *targets)
    assert first.returncode == 0, first.stdout
    assert not planned_jobs(snakemake("-n", *targets).stdout)
    (rundir / "edit.yaml").write_text("versions:\n  v7:\n    batch_size: 64\n")
    jobs = dry_run(snakemake, *targets, "--configfile", "edit.yaml")
    assert [(job.rule, job.wildcards["version"]) for job in jobs] == [("version_config", "v7")]


def test_resolved_config_on_disk_is_what_the_package_resolves(snakemake, rundir: Path) -> None:
    result = snakemake("--cores", "1", "results/v14/config.json")
    assert result.returncode == 0, result.stdout
    config = yaml.safe_load((rundir / "config" / "config.yaml").read_text())
    validate(config, str(rundir / "workflow" / "schemas" / "config.schema.yaml"))
    on_disk = json.loads((rundir / "results/v14/config.json").read_text())
    assert on_disk == json.loads(json.dumps(resolve_version(config, "v14")))


@pytest.mark.parametrize("keep_chunks", [True, False])
def test_files_added_to_a_production_redo_only_their_chunk(
    snakemake, rundir: Path, keep_chunks: bool
) -> None:
    """Kept chunks: only the one the files fall in. Deleted chunks (data.keep_chunks false,
    against storing the images twice): none while nothing changed, every one when files come."""
    simulated = subprocess.run(
        [
            *(sys.executable, "-m", "edtrain.cli", "simulate", "--out", "production"),
            *("--files", "4", "--events-per-file", "20", "--seed", "5"),
        ],
        cwd=rundir,
        capture_output=True,
        text=True,
    )
    assert simulated.returncode == 0, simulated.stderr
    eos = yaml.safe_load((rundir / "config" / "test" / "eos.yaml").read_text())
    folder = rundir / eos["data"]["directories"][0]
    late = sorted(folder.glob("*_planeX.npz"))[-1].name.removesuffix("_planeX.npz")
    aside = rundir / "aside"
    aside.mkdir()
    for path in folder.glob(f"{late}_plane*.npz"):
        path.rename(aside / path.name)
    (rundir / "chunks.yaml").write_text(yaml.safe_dump({"data": {"keep_chunks": keep_chunks}}))
    target = ["results/datasets/eos/manifest.json"]
    target += ["--configfile", "config/test/eos.yaml", "chunks.yaml"]
    built = snakemake("--cores", "2", *target)
    assert built.returncode == 0, built.stdout
    assert not planned_jobs(snakemake("-n", *target).stdout)
    assert (rundir / "results/chunks/eos").is_dir() == keep_chunks

    for path in aside.iterdir():
        path.rename(folder / path.name)
    jobs = dry_run(snakemake, *target)
    chunks = chunk_of([late], 2).tolist() if keep_chunks else [0, 1]
    planned = [job.wildcards for job in jobs if job.rule == "chunk"]
    assert sorted(planned, key=str) == [{"chunk": str(k)} for k in chunks]
    assert "assemble" in {job.rule for job in jobs}
