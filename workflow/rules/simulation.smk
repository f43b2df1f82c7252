# The synthetic production: the real EOS layout, generated when data.source is synthetic.


rule simulate:
    output:
        # the tree is declared so that a re-run starts from an empty one (no stale files)
        tree=directory(f"{PRODUCTION_DIR}/{PRODUCTION_TREE}"),
        record=PRODUCTION,
    log:
        f"{LOGS}/simulation/simulate.log",
    params:
        out=subpath(output.record, parent=True),
        files=config["data"]["synthetic"]["files"],
        events_per_file=config["data"]["synthetic"]["events_per_file"],
        seed=config["data"]["synthetic"]["seed"],
        spectrum=config["data"]["synthetic"]["spectrum"],
        # not passed on: a new generator changes the params, so the production is made anew
        generator=GENERATOR_VERSION,
    threads: 4
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain simulate --out {params.out} --files {params.files}"
        " --events-per-file {params.events_per_file} --seed {params.seed}"
        " --spectrum {params.spectrum} --jobs {threads} > {log} 2>&1"


rule gallery:
    input:
        PRODUCTION,
    output:
        report(
            f"{PRODUCTION_DIR}/gallery.png",
            caption="../report/gallery.rst",
            category="Production",
        ),
    log:
        f"{LOGS}/simulation/gallery.log",
    params:
        production=subpath(input[0], parent=True),
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain gallery --production {params.production} --out {output} > {log} 2>&1"
