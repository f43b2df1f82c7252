# edtrain: train electron-direction CNNs on DUNE cluster images, one version at a time,
# and compare them. `snakemake` builds every version in config/config.yaml plus the insights;
# `snakemake v12` rebuilds one version with its data. See README.md and config/README.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/production.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/hyperopt.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),


# One target per version: `snakemake v12` builds results/v12/ and the data it needs.
for version in VERSIONS:

    rule:
        name:
            version
        input:
            version_outputs(version),
        localrule: True
