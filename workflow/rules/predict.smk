# Per version: predictions on the common test set and their angular-error metrics; for a
# synthetic production also the oracle of each sample, read from the production's truth files.

from edtrain.config import synthetic_prefix

# edtrain.simulation.simulate.TRUTH_DIR under the synthetic tree
TRUTH = f"{synthetic_prefix(config)}/truth"


rule predict:
    input:
        # ancient: a re-assembly that changes nothing reruns nothing; a dataset that changes
        # changes the version's config.json params (rule train says how)
        images=ancient(f"{DATASET}/images"),
        samples=ancient(f"{DATASET}/samples.parquet"),
        manifest=ancient(f"{DATASET}/manifest.json"),
        config=version_file(CONFIG),
        model=version_file(MODEL),
        record=version_file(RECORD),
        # the truth files are complete once production.json exists
        production=[PRODUCTION] if SYNTHETIC else [],
    output:
        predictions=version_file(PREDICTIONS),
        metrics=version_file(METRICS),
    log:
        f"{LOGS}/predict/{{version}}.log",
    params:
        dataset=subpath(input.manifest, parent=True),
        truth=f"--truth {TRUTH}" if SYNTHETIC else "",
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain predict --dataset {params.dataset} --config {input.config}"
        " --model {input.model} --training {input.record} {params.truth}"
        " --out-predictions {output.predictions}"
        " --out-metrics {output.metrics} > {log} 2>&1"
