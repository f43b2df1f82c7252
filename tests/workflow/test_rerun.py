"""What a finished run redoes after a config edit: only what the edit can change.

A tiny version is trained for real (config/test/synthetic.yaml), then each edit is dry-run:
settings that cannot change a training (a description, the loader threads, the chunk count,
which gives a bitwise-identical dataset) must not plan one; a setting that can, must.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_plan import dry_run

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

LAYER = ["--configfile", "config/test/synthetic.yaml"]
TRAINING = {"version_config", "train"}


# (edit layered on the finished run's config, whether it retrains); one --configfile takes
# both files, a second one would replace the first
EDITS = [
    ("versions:\n  v7:\n    description: reworded\n", False),
    ("versions:\n  v7:\n    performance: {workers: 1}\n", False),
    ("require_gpu: true\n", False),
    ("data:\n  chunks: 3\n", False),
    ("versions:\n  v7:\n    batch_size: 16\n", True),
    ("data:\n  test_fraction: 0.3\n", True),
]


def test_only_result_changing_edits_retrain(snakemake, rundir: Path) -> None:
    built = snakemake("v7", "--cores", "2", *LAYER, timeout=900)
    assert built.returncode == 0, built.stdout
    assert not dry_run(snakemake, "v7", *LAYER)

    for edit, retrains in EDITS:
        (rundir / "edit.yaml").write_text(edit)
        planned = {job.rule for job in dry_run(snakemake, "v7", *LAYER, "edit.yaml")}
        if retrains:
            assert TRAINING <= planned, (edit, planned)
        else:
            assert not TRAINING & planned, (edit, planned)
        if "chunks" in edit:  # the new chunks and dataset are built, the training is kept
            assert {"chunk", "assemble"} <= planned, planned
