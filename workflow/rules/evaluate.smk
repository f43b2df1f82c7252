# Per version: predictions on the common test set and their angular-error metrics.


rule predict:
    input:
        images=f"{DATASET}/images",
        samples=f"{DATASET}/samples.parquet",
        manifest=f"{DATASET}/manifest.json",
        config=f"{RESULTS}/{{version}}/config.json",
        model=f"{RESULTS}/{{version}}/model.keras",
        record=f"{RESULTS}/{{version}}/training.json",
    output:
        predictions=f"{RESULTS}/{{version}}/predictions.npz",
        metrics=f"{RESULTS}/{{version}}/metrics.json",
    log:
        "logs/evaluate/{version}.log",
    params:
        dataset=subpath(input.manifest, parent=True),
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain predict --dataset {params.dataset} --config {input.config}"
        " --model {input.model} --training {input.record}"
        " --out-predictions {output.predictions}"
        " --out-metrics {output.metrics} > {log} 2>&1"
