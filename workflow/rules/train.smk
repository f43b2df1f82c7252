# Per version: the resolved config.json, then one (GPU) training job. Site resources
# (GPU, memory, runtime) come from the profile's set-resources for `train`.


rule version_config:
    output:
        version_file(CONFIG),
    log:
        f"{LOGS}/train/{{version}}_config.log",
    params:
        # only what can change the training: config.json keeps a stale description until
        # something else rewrites it, and a new description retrains nothing
        result=result_config,
    localrule: True
    run:
        write_resolved(resolve_version(config, wildcards.version), output[0], log[0])


rule train:
    input:
        # The dataset is ancient: a re-assembly alone (another chunk count, which gives a
        # bitwise-identical dataset, or --forcerun assemble) retrains nothing. Its content is
        # followed through config.json instead, whose rule has the dataset's definition (data
        # settings less chunks, the input files' names) among its params: a change there
        # rewrites config.json and so retrains. The manifest's dataset_hash cannot be a param
        # here: it is unknown until assemble has run, and Snakemake does not look at the params
        # of a job below one that reruns, so a new selection would retrain a run too late.
        images=ancient(f"{DATASET}/images"),
        samples=ancient(f"{DATASET}/samples.parquet"),
        manifest=ancient(f"{DATASET}/manifest.json"),
        config=version_file(CONFIG),
    output:
        model=version_file(MODEL),
        history=version_file(HISTORY),
        record=version_file(RECORD),
    log:
        f"{LOGS}/train/{{version}}.log",
    params:
        dataset=subpath(input.manifest, parent=True),
        out_dir=subpath(output.model, parent=True),
        state_dir=f"{STATE}/{{version}}",
    threads: 2
    conda:
        "../../envs/gpu.yaml"
    shell:
        # Resumable state lives outside the outputs, so a preempted job continues.
        "edtrain train --dataset {params.dataset} --config {input.config}"
        " --out-dir {params.out_dir} --state-dir {params.state_dir} > {log} 2>&1"
