"""docs/architecture.md's module table names every module of the package, and only those.

A newcomer reads the package through that table; a module added without a row is invisible
there, a row left behind by a removed module sends them looking for nothing."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "workflow" / "edtrain"


def _modules() -> set[str]:
    """Top-level modules and subpackages of edtrain (``__init__`` and private ones aside)."""
    names = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    return names | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def _documented() -> set[str]:
    text = (REPO / "docs" / "architecture.md").read_text()
    table = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`edtrain\.(\w+)`", row)}


def test_every_module_has_a_row_and_every_row_a_module():
    modules, documented = _modules(), _documented()
    assert sorted(modules - documented) == [], "modules missing from docs/architecture.md"
    assert sorted(documented - modules) == [], "rows of docs/architecture.md without a module"
