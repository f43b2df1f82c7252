# Per version: the resolved config.json, then one (GPU) training job. Site resources
# (GPU, memory, runtime) come from the profile's set-resources for `train`.


rule version_config:
    output:
        f"{RESULTS}/{{version}}/config.json",
    log:
        "logs/config/{version}.log",
    params:
        resolved=resolved_config,
    localrule: True
    run:
        write_resolved(params.resolved, output[0], log[0])


rule train:
    input:
        images=f"{DATASET}/images",
        samples=f"{DATASET}/samples.parquet",
        manifest=f"{DATASET}/manifest.json",
        config=f"{RESULTS}/{{version}}/config.json",
    output:
        model=f"{RESULTS}/{{version}}/model.keras",
        history=f"{RESULTS}/{{version}}/history.csv",
        record=f"{RESULTS}/{{version}}/training.json",
    log:
        "logs/train/{version}.log",
    params:
        dataset=subpath(input.manifest, parent=True),
        out_dir=subpath(output.model, parent=True),
    threads: 2
    conda:
        "../../envs/gpu.yaml"
    shell:
        # Resumable state lives outside the outputs, so a preempted job continues.
        "edtrain train --dataset {params.dataset} --config {input.config}"
        " --out-dir {params.out_dir} --state-dir .state/{wildcards.version} > {log} 2>&1"
