# Across versions: insights.md (the seed's structure), summary.csv, energy.csv and plots.


rule insights:
    input:
        configs=expand(version_file(CONFIG), version=RUN_VERSIONS),
        records=expand(version_file(RECORD), version=RUN_VERSIONS),
        histories=expand(version_file(HISTORY), version=RUN_VERSIONS),
        predictions=expand(version_file(PREDICTIONS), version=RUN_VERSIONS),
        metrics=expand(version_file(METRICS), version=RUN_VERSIONS),
        # the report's Datasets section: counts, skips, test samples with a neutrino direction
        dataset=[f"{DATASET}/manifest.json", f"{DATASET}/samples.parquet"],
    output:
        md=report(
            f"{RESULTS}/insights.md",
            caption="../report/insights.rst",
            category="Insights",
        ),
        summary=report(
            f"{RESULTS}/summary.csv",
            caption="../report/summary.rst",
            category="Insights",
        ),
        energy=f"{RESULTS}/energy.csv",
        plots=report(
            directory(f"{RESULTS}/plots"),
            patterns=["{name}.png"],
            caption="../report/plots.rst",
            category="Plots",
        ),
    log:
        f"{LOGS}/insights/insights.log",
    params:
        results_dir=subpath(output.md, parent=True),
        versions=RUN_VERSIONS,
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain insights --results-dir {params.results_dir} --versions {params.versions}"
        " --out-md {output.md} --out-csv {output.summary} --energy-csv {output.energy}"
        " --plots-dir {output.plots} > {log} 2>&1"
