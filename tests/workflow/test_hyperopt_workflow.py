"""The search as Snakemake runs it: the static plan, GPU requests, failed trials, final config.

The runs use the workflow's own rule files (common, train, hyperopt) and config, under a
Snakefile without the data stages: the dataset is written by the test. One run trains for
real (config/test/hyperopt.yaml); the others put a stand-in `edtrain train` on PATH whose
outcome is fixed per trial, so a crash and a NaN happen exactly where the test wants them.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from unit.tiny_dataset import make_dataset

BIN = Path(sys.executable).parent
DATASET = "results/datasets/synthetic"

SNAKEFILE = """\
from snakemake.utils import validate


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/hyperopt.smk"
"""

# `edtrain train` stand-in: round0/trial0 crashes, round0/trial1 goes NaN, the others (and
# the final training) succeed with a loss that is smallest at dropout 0.3 and lr 1e-3.
FAKE_TRAIN = """\
import argparse, json, math, pathlib, sys

parser = argparse.ArgumentParser()
for flag in ("--dataset", "--config", "--out-dir", "--state-dir"):
    parser.add_argument(flag)
args = parser.parse_args(sys.argv[1:])
config = json.loads(pathlib.Path(args.config).read_text())
out = pathlib.Path(args.out_dir)
out.mkdir(parents=True, exist_ok=True)
trial = config["hyperopt"].get("trial")
if trial == "round0/trial0":
    sys.exit("Negative dimension size caused by too many poolings")
lr = config["optimizer"]["learning_rate"]
loss = abs(config["model"]["dropout"] - 0.3) + abs(math.log10(lr) + 3)
status = "nan" if trial == "round0/trial1" else "ok"
last = "nan" if status == "nan" else loss
(out / "history.csv").write_text(
    f"epoch,loss,val_loss,val_q68_deg\\n0,{loss + 1},{loss + 0.5},60\\n1,{loss},{last},50\\n"
)
(out / "model.keras").write_bytes(b"model")
record = {"status": status, "epochs_run": 2, "best_epoch": 1, "best_val_loss": loss + 0.5,
          "trained_model": config["model"], "trained_optimizer": config["optimizer"]}
(out / "training.json").write_text(json.dumps(record))
"""


def _layer(rounds: int, trials: int) -> dict:
    """A config layer with one searching version ``vh`` and one plain version ``v0``."""
    hyperopt = {
        "enabled": True,
        "space": {
            "model.dropout": {"float": [0.2, 0.5]},
            "optimizer.learning_rate": {"float": [1.0e-4, 1.0e-2], "log": True},
            "model.filters": {"choices": [4, 8]},
        },
        "rounds": rounds,
        "trials_per_round": trials,
        "epochs_per_trial": 1,
        "objective": "val_loss",
        "seed": 7,
    }
    return {
        "run_versions": ["vh"],
        "require_gpu": False,
        "versions": {"vh": {"samples": 100, "hyperopt": hyperopt}, "v0": {}},
    }


@pytest.fixture
def workdir(rundir: Path):
    """``rundir`` with the search Snakefile; returns a runner taking a config layer."""
    (rundir / "Snakefile.hyperopt").write_text(SNAKEFILE)

    def run(layer: str, *args: str, fake_training: bool) -> subprocess.CompletedProcess[str]:
        path = [str(BIN), os.environ["PATH"]]
        if fake_training:
            path.insert(0, str(_shim(rundir)))
        command = [sys.executable, "-m", "snakemake", "-s", "Snakefile.hyperopt"]
        return subprocess.run(
            [*command, *args, "--configfile", layer],
            cwd=rundir,
            env={**os.environ, "PATH": os.pathsep.join(path), "CONDOR_CONFIG": "/dev/null"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=900,
            check=False,
        )

    return run


def _shim(rundir: Path) -> Path:
    """A directory whose `edtrain` runs the stand-in for `train` and the real one otherwise."""
    shim = rundir / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "fake_train.py").write_text(FAKE_TRAIN)
    edtrain = shim / "edtrain"
    edtrain.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = train ] && shift && exec {sys.executable} {shim}/fake_train.py "$@"\n'
        f'exec {BIN}/edtrain "$@"\n'
    )
    edtrain.chmod(0o755)
    return shim


def _write_layer(rundir: Path, rounds: int, trials: int) -> str:
    (rundir / "search.yaml").write_text(yaml.safe_dump(_layer(rounds, trials)))
    return "search.yaml"


def _stub_dataset(rundir: Path) -> None:
    dataset = rundir / DATASET
    dataset.mkdir(parents=True)
    (dataset / "images").mkdir()
    for name in ("samples.parquet", "manifest.json"):
        (dataset / name).write_text("stand-in")


def _job_counts(dry_run: str) -> dict[str, int]:
    """The "Job stats" table of a dry run."""
    table = dry_run.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def _jobs(dry_run: str, rule: str) -> list[str]:
    return [j for j in dry_run.split("\nrule ")[1:] if j.startswith(f"{rule}:")]


@pytest.mark.workflow
def test_dry_run_plans_one_gpu_job_per_trial(workdir, rundir: Path):
    layer = _write_layer(rundir, rounds=4, trials=5)
    _stub_dataset(rundir)
    proc = workdir(layer, "-n", "results/vh/training.json", fake_training=True)
    assert proc.returncode == 0, proc.stdout
    assert _job_counts(proc.stdout) == {
        "hyperopt_base_config": 1,
        "hyperopt_propose": 20,
        "hyperopt_trial": 20,
        "hyperopt_select": 1,
        "hyperopt_apply": 1,
        "train": 1,
    }
    trials = _jobs(proc.stdout, "hyperopt_trial")
    wanted = {
        f"results/vh/hyperopt/round{r}/trial{t}/result.json" for r in range(4) for t in range(5)
    }
    assert {re.search(r"output: (\S+)", j).group(1) for j in trials} == wanted
    for job in trials:
        resources = re.search(r"resources: (.*)", job).group(1).split(", ")
        assert "gpu=1" in resources and "request_gpus=1" in resources
    # round r waits for every trial of the rounds before it, and for nothing else
    propose = _jobs(proc.stdout, "hyperopt_propose")
    round2 = next(j for j in propose if "wildcards: version=vh, round=2, trial=4" in j)
    inputs = re.search(r"input: (.*)", round2).group(1)
    earlier = re.findall(r"round(\d)/trial\d/result\.json", inputs)
    assert sorted(earlier) == ["0"] * 5 + ["1"] * 5
    # the final training's config comes from the search; a plain version's does not
    assert "output: results/vh/config.json\n" in _jobs(proc.stdout, "hyperopt_apply")[0]
    plain = workdir(layer, "-n", "results/v0/config.json", fake_training=True)
    assert plain.returncode == 0, plain.stdout
    assert _job_counts(plain.stdout) == {"version_config": 1}


@pytest.mark.workflow
def test_search_survives_failed_and_nan_trials_and_trains_the_best(workdir, rundir: Path):
    layer = _write_layer(rundir, rounds=2, trials=3)
    _stub_dataset(rundir)
    proc = workdir(layer, "--cores", "2", "results/vh/training.json", fake_training=True)
    assert proc.returncode == 0, proc.stdout
    hyperopt = rundir / "results" / "vh" / "hyperopt"

    table = pd.read_csv(hyperopt / "trials.csv", na_filter=False)
    assert list(table["id"]) == [f"round{r}/trial{t}" for r in range(2) for t in range(3)]
    status = dict(zip(table["id"], table["status"], strict=True))
    assert (status["round0/trial0"], status["round0/trial1"]) == ("failed", "nan")
    assert all(status[f"round{r}/trial{t}"] == "ok" for r, t in [(0, 2), (1, 0), (1, 1), (1, 2)])
    crashed = json.loads((hyperopt / "round0" / "trial0" / "result.json").read_text())
    assert crashed["score"] is None and "exited with code 1" in crashed["reason"]

    best = json.loads((hyperopt / "best_params.json").read_text())
    scores = {r["id"]: r["score"] for r in best["trials"] if r["score"] is not None}
    assert len(scores) == 4 and best["n_failed"] == 2
    assert best["best_trial"] == min(scores, key=scores.get)
    assert math.isclose(best["best_score"], min(scores.values()))
    for trial in range(3):
        params = json.loads((hyperopt / "round1" / f"trial{trial}" / "params.json").read_text())
        assert params["sampler"] == "tpe" and params["n_earlier"] == 3

    # the version's config.json, and so its final training, carries the best parameters
    config = json.loads((rundir / "results" / "vh" / "config.json").read_text())
    trained = json.loads((rundir / "results" / "vh" / "training.json").read_text())
    bp = best["best_params"]
    for where in (config["model"], trained["trained_model"]):
        assert (where["dropout"], where["filters"]) == (bp["model.dropout"], bp["model.filters"])
    for where in (config["optimizer"], trained["trained_optimizer"]):
        assert where["learning_rate"] == bp["optimizer.learning_rate"]
    assert config["max_epochs"] != 1  # the version's epochs, not a trial's
    assert config["hyperopt"]["ran"] is True
    assert config["hyperopt"]["best_trial"] == best["best_trial"]
    assert config["hyperopt"]["best_params"] == bp

    # a second run plans nothing: the trials' parameters are fixed by their recorded inputs
    again = workdir(layer, "-n", "results/vh/training.json", fake_training=True)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout, again.stdout


@pytest.mark.workflow
@pytest.mark.slow
def test_tiny_search_trains_for_real_and_final_config_uses_best(workdir, rundir: Path):
    make_dataset(rundir / DATASET, n=240)
    layer = "config/test/hyperopt.yaml"
    version = yaml.safe_load((rundir / layer).read_text())["run_versions"][0]
    proc = workdir(layer, "--cores", "2", f"results/{version}/training.json", fake_training=False)
    assert proc.returncode == 0, proc.stdout

    results = rundir / "results" / version
    best = json.loads((results / "hyperopt" / "best_params.json").read_text())
    assert best["n_trials"] == 6 and best["objective"] == "val_q68"
    for trial in best["trials"]:
        history = json.loads((results / "hyperopt" / trial["id"] / "result.json").read_text())[
            "history"
        ]
        assert len(history["val_q68_deg"]) == 1  # one epoch per trial
    # the final config holds the best values, scaled like the version (test scaling)
    config = json.loads((results / "config.json").read_text())
    bp, scaling = best["best_params"], config["scaling"]
    assert config["model"]["dropout"] == bp["model.dropout"]
    assert config["optimizer"]["learning_rate"] == bp["optimizer.learning_rate"]
    for key in ("filters", "dense_units"):
        assert scaling["unscaled"][key] == bp[f"model.{key}"]
        assert config["model"][key] == round(bp[f"model.{key}"] * scaling["width_factor"])
    assert config["hyperopt"]["ran"] is True
    assert config["hyperopt"]["best_trial"] == best["best_trial"]
    assert json.loads((results / "training.json").read_text())["status"] in {"ok", "nan"}
