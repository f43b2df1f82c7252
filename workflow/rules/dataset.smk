# One dataset per data source: independent chunk jobs index and select samples, one job
# assembles them (common hash-based test set, pool ranks) into results/datasets/<source>/.
# Chunks are kept (data.keep_chunks), so a production that gains files redoes only the chunks
# they fall in.


rule chunk:
    input:
        data_inputs,
    output:
        chunk_output(),
    log:
        f"{LOGS}/dataset/{dataset_name(config)}_chunk{{chunk}}.log",
    params:
        inputs=chunk_inputs(config),
        chunks=config["data"]["chunks"],
        selection=chunk_flags(config),
        strict=strict_flag(config),
        files=chunk_files,
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain chunk --inputs {params.inputs:q} --chunk {wildcards.chunk}"
        " --chunks {params.chunks} --out {output} {params.selection} {params.strict}"
        " > {log} 2>&1"


rule assemble:
    input:
        chunk_dirs(),
    output:
        images=directory(f"{DATASET}/images"),
        samples=f"{DATASET}/samples.parquet",
        manifest=f"{DATASET}/manifest.json",
    log:
        f"{LOGS}/dataset/{dataset_name(config)}_assemble.log",
    params:
        out=subpath(output.manifest, parent=True),
        test_fraction=config["data"]["test_fraction"],
        strict=strict_flag(config),
        # every chunk's file listing: with data.keep_chunks false the chunks are gone, and
        # only this notices files added to the production
        files=[chunk_listing(config, k) for k in range(config["data"]["chunks"])],
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain assemble --chunks {input:q} --out {params.out}"
        " --test-fraction {params.test_fraction} {params.strict} > {log} 2>&1"
