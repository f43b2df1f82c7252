"""Run Snakemake with a fake HTCondor schedd that executes every job on this machine.

    python tests/cluster/fakecondor.py [--with-storage-plugin] <snakemake arguments>

The real `snakemake-executor-plugin-htcondor` drives the run: it builds each submit description
with the real `htcondor2.Submit` and follows the jobs through the user event log with the real
`htcondor2.JobEventLog`. Only `htcondor2.Schedd` is replaced. The fake behaves like a vanilla
universe slot on a shared file system: it runs `executable arguments` (old argument syntax,
split on whitespace) in the submit directory with an environment built the way HTCondor builds
it (`getenv`, scratch/thread/GPU variables; nothing else from the submitter), sends
stdout/stderr to `output`/`error`, and appends SUBMIT, EXECUTE and TERMINATED events to `log`.

Every submit description is appended as one JSON line to `$FAKECONDOR_DIR/submits.jsonl`
(default `.fakecondor/` in the working directory) for the tests to inspect.

`--with-storage-plugin` registers a do-nothing Snakemake storage plugin first, which makes
Snakemake put `pip install ... &&` in front of every job command: the defect of the HTCondor
plugin (0.3) that a job wrapper must survive.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
from fnmatch import fnmatchcase
from pathlib import Path

import htcondor2

_LOCK = threading.Lock()
_CLUSTER_IDS = itertools.count(1)
_JOBS: dict[int, dict] = {}  # cluster id -> {"proc": Popen | None, "status": int, "code": int}


class _SubmitResult:
    def __init__(self, cluster: int) -> None:
        self._cluster = cluster

    def cluster(self) -> int:
        return self._cluster


def _event(log: str, code: int, cluster: int, text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with _LOCK, open(log, "a") as f:
        f.write(f"{code:03d} ({cluster:03d}.000.000) {stamp} {text}\n...\n")


def _terminated_text(returncode: int) -> str:
    if returncode < 0:
        head = f"\t(0) Abnormal termination (signal {-returncode})\n\t(0) No core file\n"
    else:
        head = f"\t(1) Normal termination (return value {returncode})\n"
    usage = "".join(
        f"\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  {what} Usage\n"
        for what in ("Run Remote", "Run Local", "Total Remote", "Total Local")
    )
    sizes = "".join(
        f"\t0  -  {what} By Job\n"
        for what in (
            "Run Bytes Sent",
            "Run Bytes Received",
            "Total Bytes Sent",
            "Total Bytes Received",
        )
    )
    return "Job terminated.\n" + head + usage + sizes.rstrip("\n")


def job_environment(desc: dict[str, str], cluster: int, scratch: str) -> dict[str, str]:
    """The environment HTCondor gives a vanilla-universe job on a Linux slot."""
    getenv = desc.get("getenv", "false").strip().lower()
    if getenv == "false":
        env = {}
    else:  # True (= "*") or a matchlist: names and patterns, "!" rejects; case-insensitive
        members = re.split(r"[,; ]+", "*" if getenv == "true" else getenv)
        take = [m for m in members if m and not m.startswith("!")]
        drop = [m[1:] for m in members if m.startswith("!")]
        env = {
            k: v
            for k, v in os.environ.items()
            if any(fnmatchcase(k.lower(), m) for m in take or ["*"])
            and not any(fnmatchcase(k.lower(), m) for m in drop)
        }
    cpus = desc.get("request_cpus", "1")
    env.update(
        _CONDOR_SCRATCH_DIR=scratch,
        _CONDOR_SLOT=f"slot1_{cluster}",
        TMPDIR=scratch,
        OMP_NUM_THREADS=cpus,
        MKL_NUM_THREADS=cpus,
    )
    if int(desc.get("request_gpus", "0") or 0) > 0:
        env["CUDA_VISIBLE_DEVICES"] = "0"
    return env


def _run(cluster: int, desc: dict[str, str], workdir: str) -> None:
    log = desc["log"]

    def expand(key: str) -> str:
        return desc[key].replace("$(ClusterId)", str(cluster)).replace("$(ProcId)", "0")

    scratch = tempfile.mkdtemp(prefix=f"condor-{cluster}-")
    iwd = desc.get("initialdir", workdir)
    # a relative executable is relative to the submit directory, as with condor_submit
    argv = [os.path.join(iwd, desc["executable"]), *desc.get("arguments", "").split()]
    _event(log, 1, cluster, "Job executing on host: <127.0.0.1:9618>")
    with open(expand("output"), "w") as out, open(expand("error"), "w") as err:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=iwd,
                env=job_environment(desc, cluster, scratch),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        except OSError as e:  # what the shadow reports as an exec failure
            err.write(f"fakecondor: cannot execute {argv[0]}: {e}\n")
            returncode = 1
        else:
            _JOBS[cluster]["proc"] = proc
            _JOBS[cluster]["status"] = 2
            returncode = proc.wait()
    shutil.rmtree(scratch, ignore_errors=True)
    _JOBS[cluster].update(status=4, code=returncode)
    _event(log, 5, cluster, _terminated_text(returncode))


def _record(desc: dict[str, str], cluster: int) -> None:
    folder = Path(os.environ.get("FAKECONDOR_DIR", ".fakecondor"))
    folder.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(folder / "submits.jsonl", "a") as f:
        f.write(json.dumps({"ClusterId": cluster, **desc}) + "\n")


class FakeSchedd:
    """The part of `htcondor2.Schedd` the Snakemake plugin uses."""

    def submit(self, description: htcondor2.Submit, count: int = 1) -> _SubmitResult:
        desc = {k: str(v) for k, v in description.items()}
        if "environment" in desc:  # its two syntaxes are not emulated; the profiles use getenv
            raise ValueError("fakecondor: the `environment` submit command is not supported")
        cluster = next(_CLUSTER_IDS)
        _JOBS[cluster] = {"proc": None, "status": 1, "code": None}
        _record(desc, cluster)
        _event(desc["log"], 0, cluster, "Job submitted from host: <127.0.0.1:9618>")
        threading.Thread(target=_run, args=(cluster, desc, os.getcwd()), daemon=True).start()
        return _SubmitResult(cluster)

    def _ads(self, constraint: str) -> list[dict]:
        wanted = {int(c) for c in re.findall(r"ClusterId == (\d+)", constraint)}
        return [
            {"ClusterId": c, "JobStatus": j["status"], "ExitCode": j["code"]}
            for c, j in _JOBS.items()
            if c in wanted
        ]

    def query(self, constraint: str = "true", projection: list | None = None, **_) -> list:
        return [ad for ad in self._ads(constraint) if ad["JobStatus"] != 4]

    def history(self, constraint: str = "true", projection: list | None = None, **_) -> list:
        return [ad for ad in self._ads(constraint) if ad["JobStatus"] == 4]

    def act(self, action, job_spec, **_) -> None:
        for spec in job_spec:
            proc = _JOBS.get(int(str(spec).split(".")[0]), {}).get("proc")
            if proc is not None and proc.poll() is None:
                proc.terminate()


def _register_storage_plugin() -> None:
    """Make Snakemake believe a storage plugin is installed (as with the xrootd one)."""
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry
    from snakemake_interface_storage_plugins.storage_object import StorageObjectRead
    from snakemake_interface_storage_plugins.storage_provider import StorageProviderBase

    module = types.ModuleType("snakemake_storage_plugin_fakecondor")
    module.StorageProvider = type("StorageProvider", (StorageProviderBase,), {})
    module.StorageObject = type("StorageObject", (StorageObjectRead,), {})
    StoragePluginRegistry().register_plugin(module.__name__, module)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--with-storage-plugin"]:
        argv = argv[1:]
        _register_storage_plugin()
    htcondor2.Schedd = FakeSchedd
    from snakemake.cli import main as snakemake_main

    sys.argv = ["snakemake", *argv]
    return snakemake_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
