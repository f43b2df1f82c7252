# Names and input functions shared by the rules; the logic behind them is edtrain.config.
import json
import shutil
import subprocess
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from edtrain.config import (
    IGNORED_KEYS,
    PRODUCTION_TREE,
    check_models,
    check_data_folders,
    check_selection,
    chunk_flags,
    chunk_inputs,
    chunk_listing,
    dataset_definition,
    dataset_dir,
    dataset_name,
    production_dir,
    resolve_version,
    run_dir,
    run_versions,
    strict_flag,
    training_identity,
    write_resolved,
)
from edtrain.dataset.storage import is_url
from edtrain.simulation import GENERATOR_VERSION
from edtrain.version_files import (
    CONFIG,
    HISTORY,
    METRICS,
    MODEL,
    PREDICTIONS,
    RECORD,
    VERSION_FILES,
)

check_data_folders(config)
check_selection(config)
check_models(config)

# Every job runs `edtrain`: without it on PATH they would all fail with "command not found",
# after the planning. With --sdm conda the jobs' environments provide it.
_deployment = workflow.deployment_settings
if shutil.which("edtrain") is None and not (
    _deployment and DeploymentMethod.CONDA in _deployment.deployment_method
):
    raise WorkflowError(
        "the `edtrain` command is not on PATH, and every job runs it: activate the environment"
        " edtrain is installed in (e.g. `source .venv/bin/activate`), or install it with"
        " `pip install -e .`, or run with `--sdm conda`"
    )

# This run's folders (run.name): another config's commands never plan over them.
RESULTS = run_dir(config)
LOGS = run_dir(config, "logs")
STATE = run_dir(config, ".state")
PRODUCTION_DIR = production_dir(config)
VERSIONS = list(config["versions"])
RUN_VERSIONS = run_versions(config)
DATASET = dataset_dir(config)
CHUNK_DIR = f"{RESULTS}/chunks/{dataset_name(config)}"
PRODUCTION = f"{PRODUCTION_DIR}/production.json"
SYNTHETIC = config["data"]["source"] == "synthetic"


wildcard_constraints:
    version="|".join(VERSIONS),
    chunk=r"\d+",


def chunk_dirs():
    return expand(f"{CHUNK_DIR}/{{chunk}}", chunk=range(config["data"]["chunks"]))


def data_inputs(wildcards):
    """The synthetic production's record, or the configured local folders (root:// URLs are
    only passed to the jobs).

    Folders must exist, but their modification time is ignored: a touched EOS folder must not
    retrain every version. Added or removed files change the listing of their chunk
    (`chunk_files`), and only that chunk is redone.
    """
    if SYNTHETIC:
        return [PRODUCTION]
    return [ancient(d) for d in chunk_inputs(config) if not is_url(d)]


def chunk_output():
    """A chunk's folder; temporary with data.keep_chunks false: deleted once assembled, and
    not remade while the dataset is up to date."""
    folder = directory(f"{CHUNK_DIR}/{{chunk}}")
    return folder if config["data"]["keep_chunks"] else temp(folder)


def chunk_files(wildcards):
    """A digest of the chunk's file names, as a param: a change reruns this chunk only."""
    return chunk_listing(config, int(wildcards.chunk))


def result_config(wildcards, ignored=IGNORED_KEYS):
    """What a version's training follows, as params (canonical JSON, so reordering the YAML
    changes nothing): its resolved config less the keys that cannot change the trained weights
    (edtrain.config.IGNORED_KEYS: description, require_gpu, performance.workers, ...) and the
    settings newer than it at their neutral value (NEUTRAL_DEFAULTS), and the dataset's
    definition (see rule train). Editing a version re-runs that version only; a
    description or the chunk count re-runs none."""
    resolved = training_identity(resolve_version(config, wildcards.version), ignored)
    return json.dumps({"config": resolved, "data": dataset_definition(config)}, sort_keys=True)


def search_config(wildcards):
    """``result_config`` of a version's search, which its ``hyperopt`` settings also shape."""
    return result_config(wildcards, [key for key in IGNORED_KEYS if key != "hyperopt"])


def version_file(name, version="{version}"):
    """results/<version>/<name>: one of edtrain.version_files, for a version or the wildcard."""
    return f"{RESULTS}/{version}/{name}"


def version_outputs(version):
    """Everything results/<version>/ holds (docs/architecture.md)."""
    return [version_file(name, version) for name in VERSION_FILES]


def all_targets():
    """The report and, named too, every version's outputs: Snakemake regenerates a missing
    intermediate file only for a job that must run, so after an interrupted `--forcerun train`
    (outputs removed, later ones kept) only a target brings training and all after it back."""
    targets = [
        f"{RESULTS}/insights.md",
        f"{RESULTS}/summary.csv",
        f"{RESULTS}/energy.csv",
        f"{RESULTS}/plots",
    ]
    targets += [path for version in RUN_VERSIONS for path in version_outputs(version)]
    if SYNTHETIC:
        targets.append(f"{PRODUCTION_DIR}/gallery.png")
    return targets


def insights_despite_failures():
    """Failed jobs (a training killed after its last retry, a crash) leave rule insights
    without inputs, so it never runs and an old insights.md goes on describing old results.
    With --keep-going (the cluster profiles'), when this run was to make the insights, write
    them anyway: the rule's command, each version with an unfinished job marked ❌ Failed
    and its folder left unread (docs/insights.md)."""
    dag = workflow.dag
    job = next((j for j in dag.jobs if j.rule.name == "insights"), None) if dag else None
    if not workflow.execution_settings.keep_going or job is None or dag.finished(job):
        return
    pending = {j.wildcards.get("version") for j in dag.needrun_jobs() if j is not job}
    unfinished = [v for v in RUN_VERSIONS if v in pending]
    Path(job.log[0]).parent.mkdir(parents=True, exist_ok=True)
    print(f"Writing {job.output.md} anyway, {', '.join(unfinished) or 'no version'} unfinished.")
    # the options go after the rule's redirection, which the shell allows
    command = f"{job.shellcmd} --unfinished {' '.join(unfinished)}" if unfinished else job.shellcmd
    if subprocess.run(command, shell=True, check=False).returncode != 0:
        print(f"Could not write the insights: see {job.log[0]}.")
