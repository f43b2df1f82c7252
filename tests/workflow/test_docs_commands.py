"""Every `snakemake` command that README.md and docs/*.md show plans what their text says.

Commands are read from fenced code blocks (lines that start with `snakemake `) and from inline
code, and each is dry-run in a scratch directory (tests/conftest.py). A target written after an
option that takes several values (`--configfile`, `--forcerun`) is taken as one of its values:
`--configfile config/eos.yaml v12` fails, `--forcerun train v12` retrains every version. Only a
run shows that, so each command runs as written, with `-n` in front.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from test_plan import planned_jobs

from edtrain.config import run_versions

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
EOS_CONFIG = "config/eos.yaml"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`(snakemake [^`]+)`")
# Templates, not commands: `<version>`-style and elided (`...`) placeholders, and a version that
# is not declared (docs/hyperopt.md writes `snakemake v` and `results/v/...` for "a version").
PLACEHOLDER = re.compile(r"<[^>]*>|\.\.\.|…")
# Not a plan: `--report` bundles the outputs of a finished run, which a dry run never has.
NOT_PLANS = {"--report"}


def _version_named(token: str) -> str | None:
    """The version a target names (`v12`, `results/v12/metrics.json`, a run's
    `results/eos/v12/metrics.json`), if it names one."""
    parts = token.split("/")
    names = parts[1:-1] if parts[0] == "results" else [token]
    return next((name for name in names if re.fullmatch(r"v\d*", name)), None)


def _is_template(argv: list[str]) -> bool:
    named = [_version_named(token) for token in argv]
    return any(PLACEHOLDER.search(token) for token in argv) or any(
        name is not None and name not in CONFIG["versions"] for name in named
    )


def documented_commands() -> dict[str, list[str]]:
    """Each distinct command (its words after `snakemake`) → the pages that show it."""
    commands: dict[str, list[str]] = {}
    for page in PAGES:
        text = page.read_text()
        lines = [line for block in FENCE.findall(text) for line in block.splitlines()]
        found = [line for line in lines if line.strip().startswith("snakemake ")]
        found += INLINE.findall(FENCE.sub("", text))
        for line in found:
            argv = shlex.split(line, comments=True)[1:]
            if not _is_template(argv) and not NOT_PLANS & set(argv):
                commands.setdefault(shlex.join(argv), []).append(page.name)
    return commands


COMMANDS = documented_commands()


def test_commands_are_found() -> None:
    # an extraction that found nothing would leave nothing to fail below
    words = [shlex.split(command) for command in COMMANDS]
    assert any("v12" in argv and "--forcerun" in argv for argv in words)
    assert any("v12" in argv and EOS_CONFIG in argv for argv in words)


@pytest.fixture
def eos_rundir(rundir: Path) -> Path:
    """The scratch directory with config/eos.yaml's EOS folders under it.

    EOS is not mounted here, so the scratch copy of config/eos.yaml reads the same paths
    below the scratch directory: empty folders, enough for a plan (only real files are
    listed). The other config files are copied unchanged.
    """
    (rundir / "config").unlink()
    shutil.copytree(REPO / "config", rundir / "config")
    eos = yaml.safe_load((rundir / EOS_CONFIG).read_text())
    folders = [rundir / d.lstrip("/") for d in eos["data"]["directories"]]
    for folder in folders:
        folder.mkdir(parents=True)
    eos["data"]["directories"] = [str(folder) for folder in folders]
    (rundir / EOS_CONFIG).write_text(yaml.safe_dump(eos))
    return rundir


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=lambda c: c or "(no arguments)")
def test_documented_command_plans_its_targets(snakemake, eos_rundir: Path, command: str) -> None:
    argv = shlex.split(command)
    result = snakemake(*([] if {"-n", "--dry-run"} & set(argv) else ["-n"]), *argv)
    assert result.returncode == 0, f"{command} ({COMMANDS[command]}):\n{result.stdout}"
    if "--lint" in argv:
        return
    jobs = planned_jobs(result.stdout)
    rules = {job.rule for job in jobs}
    # what the text means to build: versions and results/ files; no target means `rule all`
    targets = [token for token in argv if _version_named(token) or token.startswith("results/")]
    expected: set[str] = set()
    for target in targets or ["all"]:
        version = _version_named(target)
        expected |= {version} if version else set(run_versions(CONFIG))
        if target in CONFIG["versions"] or target == "all":
            assert target in rules, f"{command}: no rule {target} planned"
        else:
            assert any(target in job.outputs for job in jobs), f"{command}: {target} not planned"
    planned = {job.wildcards["version"] for job in jobs if "version" in job.wildcards}
    assert planned == expected, f"{command} ({COMMANDS[command]}) plans versions {planned}"
    # the data: the EOS folders with config/eos.yaml, else a synthetic production
    eos = EOS_CONFIG in argv
    assert ("simulate" in rules) != eos and "chunk" in rules, f"{command}: {sorted(rules)}"
