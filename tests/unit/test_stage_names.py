"""One name per stage: rule file, rule, command, module and log folder say the same thing.

A newcomer who reads ``rule predict`` in workflow/rules/predict.smk finds ``edtrain predict``,
``edtrain.predict`` and ``logs/<run>/predict/`` without a map; a rule renamed on one side only
breaks that, and this test says where.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edtrain.cli import COMMANDS

RULES = Path(__file__).resolve().parents[2] / "workflow" / "rules"


def _rules() -> list[tuple[str, str, str]]:
    """(rule file stem, rule name, rule body) of every rule of the workflow."""
    found = []
    for path in sorted(RULES.glob("*.smk")):
        _, *blocks = re.split(r"^rule (\w+):\n", path.read_text(), flags=re.M)
        pairs = zip(blocks[::2], blocks[1::2], strict=True)
        found += [(path.stem, name, body) for name, body in pairs]
    return found


def test_the_workflow_has_rules():
    assert {name for _, name, _ in _rules()} >= {"simulate", "train", "predict", "insights"}


@pytest.mark.parametrize(("stage", "rule", "body"), _rules(), ids=lambda v: str(v)[:20])
def test_rule_command_module_and_log_folder_share_the_stage_name(stage, rule, body):
    log = re.search(r"^    log:\n\s+f\"\{LOGS\}/([^/\"]+)/", body, flags=re.M)
    assert log, f"rule {rule} ({stage}.smk) has no log under {{LOGS}}/<folder>/"
    assert log.group(1) == stage, f"rule {rule} logs to {log.group(1)}/, its file is {stage}.smk"
    command = re.search(r"\"edtrain ([\w-]+)", body)
    if command is None:  # a run: block (version_config, hyperopt_base_config)
        assert "shell:" not in body, f"rule {rule} runs something other than edtrain"
        return
    assert command.group(1) == rule.replace("_", "-"), f"rule {rule} runs edtrain {command[1]}"
    module = COMMANDS[command.group(1)][0]
    name = rule.removeprefix(f"{stage}_")
    assert module in {f"edtrain.{name}", f"edtrain.{stage}.{name}"}, (
        f"rule {rule} ({stage}.smk) runs {module}"
    )
