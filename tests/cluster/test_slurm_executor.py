"""The Slurm executor plugin against the local single-node Slurm, on a two-rule workflow."""

import textwrap

SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input: "b.txt"

    rule a:
        output: "a.txt"
        resources: gpu=1, mem_mb=200, runtime=2
        shell:
            "echo gpu=${{CUDA_VISIBLE_DEVICES:-none}} > {output};"
            "scontrol show job $SLURM_JOB_ID | grep -o 'MinMemoryNode=[^ ]*' >> {output}"

    rule b:
        input: "a.txt"
        output: "b.txt"
        resources: mem_mb=100, runtime=2
        shell: "cat {input} > {output}; echo gpu=${{CUDA_VISIBLE_DEVICES:-none}} >> {output}"
    """
)


def test_two_rules_run_as_slurm_jobs(tmp_path, slurm_snakemake):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    args = [
        "--executor",
        "slurm",
        "--jobs",
        "2",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "1",
    ]
    result = slurm_snakemake(args, tmp_path)
    assert result.returncode == 0
    assert (tmp_path / "b.txt").read_text() == "gpu=0\nMinMemoryNode=200M\ngpu=none\n"
