# Per version with `hyperopt.enabled`: rounds × trials_per_round trial jobs (GPU, parallel
# within a round), then the selection, then the version's config.json = base config + best
# parameters, which the ordinary `train` rule trains. See docs/hyperopt.md.
from edtrain.hyperopt import plan as hyperopt_plan
from edtrain.hyperopt.record import trial_id

HYPEROPT_VERSIONS = hyperopt_plan.version_pattern(config)
HYPEROPT_TRIAL = hyperopt_plan.trial_dir(config, "{version}", "{round}", "{trial}")
TRIAL = trial_id("{round}", "{trial}")


# The searching versions' config.json comes from the search, not from version_config.
ruleorder: hyperopt_apply > version_config


rule hyperopt_base_config:
    output:
        f"{RESULTS}/{{version}}/hyperopt/base_config.json",
    log:
        f"{LOGS}/hyperopt/{{version}}/base_config.log",
    params:
        result=search_config,
    wildcard_constraints:
        version=HYPEROPT_VERSIONS,
    localrule: True
    run:
        write_resolved(resolve_version(config, wildcards.version), output[0], log[0])


rule hyperopt_propose:
    input:
        base=f"{RESULTS}/{{version}}/hyperopt/base_config.json",
        earlier=lambda w: hyperopt_plan.results(config, w.version, before=int(w.round)),
    output:
        config=f"{HYPEROPT_TRIAL}/config.json",
        params=f"{HYPEROPT_TRIAL}/params.json",
    log:
        f"{LOGS}/hyperopt/{{version}}/{TRIAL}/propose.log",
    wildcard_constraints:
        version=HYPEROPT_VERSIONS,
        round=r"\d+",
        trial=r"\d+",
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain hyperopt-propose --base {input.base} --round {wildcards.round}"
        " --trial {wildcards.trial} --earlier {input.earlier}"
        " --out-config {output.config} --out-params {output.params} > {log} 2>&1"


rule hyperopt_trial:
    input:
        # ancient: a re-assembly that changes nothing reruns nothing; a dataset that changes
        # changes the version's config.json params (rule train says how)
        images=ancient(f"{DATASET}/images"),
        samples=ancient(f"{DATASET}/samples.parquet"),
        manifest=ancient(f"{DATASET}/manifest.json"),
        config=f"{HYPEROPT_TRIAL}/config.json",
        params=f"{HYPEROPT_TRIAL}/params.json",
    output:
        f"{HYPEROPT_TRIAL}/result.json",
    log:
        f"{LOGS}/hyperopt/{{version}}/{TRIAL}/train.log",
    params:
        dataset=subpath(input.manifest, parent=True),
        out_dir=subpath(output[0], parent=True),
        state_dir=f"{STATE}/{{version}}/hyperopt/{TRIAL}",
    wildcard_constraints:
        version=HYPEROPT_VERSIONS,
        round=r"\d+",
        trial=r"\d+",
    threads: 2
    resources:
        gpu=1,
        request_gpus=1,
    conda:
        "../../envs/gpu.yaml"
    shell:
        # A failed or NaN training is recorded in result.json; only "no GPU here" fails the job.
        "edtrain hyperopt-trial --dataset {params.dataset} --config {input.config}"
        " --params {input.params} --out-dir {params.out_dir} --state-dir {params.state_dir}"
        " --result {output} > {log} 2>&1"


rule hyperopt_select:
    input:
        base=f"{RESULTS}/{{version}}/hyperopt/base_config.json",
        results=lambda w: hyperopt_plan.results(config, w.version),
    output:
        best=f"{RESULTS}/{{version}}/hyperopt/best_params.json",
        table=report(
            f"{RESULTS}/{{version}}/hyperopt/trials.csv",
            caption="../report/hyperopt_trials.rst",
            category="Hyperopt",
            subcategory="{version}",
        ),
        plot_trials=report(
            f"{RESULTS}/{{version}}/hyperopt/plots/score_per_trial.png",
            caption="../report/hyperopt_score_per_trial.rst",
            category="Hyperopt",
            subcategory="{version}",
        ),
        plot_params=report(
            f"{RESULTS}/{{version}}/hyperopt/plots/score_vs_params.png",
            caption="../report/hyperopt_score_vs_params.rst",
            category="Hyperopt",
            subcategory="{version}",
        ),
    log:
        f"{LOGS}/hyperopt/{{version}}/select.log",
    wildcard_constraints:
        version=HYPEROPT_VERSIONS,
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain hyperopt-select --base {input.base} --results {input.results}"
        " --best {output.best} --table {output.table} --plot-trials {output.plot_trials}"
        " --plot-params {output.plot_params} > {log} 2>&1"


rule hyperopt_apply:
    input:
        base=f"{RESULTS}/{{version}}/hyperopt/base_config.json",
        best=f"{RESULTS}/{{version}}/hyperopt/best_params.json",
    output:
        version_file(CONFIG),
    log:
        f"{LOGS}/hyperopt/{{version}}/apply.log",
    wildcard_constraints:
        version=HYPEROPT_VERSIONS,
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    shell:
        "edtrain hyperopt-apply --base {input.base} --best {input.best} --out {output}"
        " > {log} 2>&1"
