# edtrain: train electron-direction CNNs on DUNE cluster images, one version at a time,
# and compare them. `snakemake` builds every version in config/config.yaml plus the insights;
# `snakemake v12` rebuilds one version with its data. See README.md and config/README.md.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

try:
    from edtrain.config import check_version_names
    from edtrain.config_schema import validate_config
except ImportError as err:
    raise WorkflowError(
        "the rules call the edtrain package, which this Python cannot import: run `make` in "
        "the repository (it creates .venv/ with edtrain) and use .venv/bin/snakemake, or "
        f"`pip install -e .` where snakemake runs ({err})"
    ) from err

min_version("9.0")


configfile: "config/config.yaml"


# A bad config stops here with a few lines naming the key, its value and the file setting it.
validate_config(
    config,
    Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
    ["config/config.yaml", *map(str, workflow.overwrite_configfiles)],
    workflow.config_settings.config,
)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulation.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/hyperopt.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/insights.smk"


# Failed jobs with --keep-going: the insights are written anyway (docs/insights.md).
onerror:
    insights_despite_failures()


rule all:
    default_target: True
    input:
        all_targets(),


# One target per version: `snakemake v12` builds results/v12/ and the data it needs.
check_version_names(config, [rule.name for rule in workflow.rules])
for version in VERSIONS:

    rule:
        name:
            version
        input:
            version_outputs(version),
        localrule: True
