# Names and input functions shared by the rules; the logic behind them is edtrain.config.

from edtrain.config import (
    PRODUCTION_DIR,
    PRODUCTION_TREE,
    RESULTS,
    check_paths,
    check_selection,
    chunk_flags,
    chunk_inputs,
    chunk_listing,
    dataset_dir,
    dataset_name,
    resolve_version,
    run_versions,
    strict_flag,
    write_resolved,
)
from edtrain.dataset.storage import is_url

check_paths(config)
check_selection(config)

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


def chunk_files(wildcards):
    """A digest of the chunk's file names, as a param: a change reruns this chunk only."""
    return chunk_listing(config, int(wildcards.chunk))


def resolved_config(wildcards):
    """A version's resolved config as params: editing it re-runs that version only."""
    return resolve_version(config, wildcards.version)


def version_outputs(version):
    """Everything results/<version>/ holds (docs/architecture.md)."""
    names = ["config.json", "model.keras", "history.csv", "training.json"]
    names += ["predictions.npz", "metrics.json"]
    return [f"{RESULTS}/{version}/{name}" for name in names]


def all_targets():
    targets = [
        f"{RESULTS}/insights.md",
        f"{RESULTS}/summary.csv",
        f"{RESULTS}/energy.csv",
        f"{RESULTS}/plots",
    ]
    if SYNTHETIC:
        targets.append(f"{PRODUCTION_DIR}/gallery.png")
    return targets
