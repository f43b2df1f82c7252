"""The config schema documents every key, and config/README.md names every key of the schema.

The schema is where an editor, a reviewer or a validation message looks up a key, so each one
carries a `description` (what it does, its unit or values, why one would change it); and the
README is where people read about the config, so a key added to the schema without a word
there, or a README row left behind by a renamed key, fails here instead of being found by
reading code. Plain YAML walks: no Snakemake, no jsonschema.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "workflow" / "schemas"
CONFIG_SCHEMA = "config.schema.yaml"
README = REPO / "config" / "README.md"

# Keywords whose subschemas only constrain keys defined elsewhere (a condition, the names of
# keys): nothing under them defines a key, so nothing there needs a description.
NOT_DEFINITIONS = ("if", "then", "else", "not", "propertyNames", "dependentSchemas")
# Stands for a key the user chooses (a version name, a search parameter) or an array item.
PLACEHOLDERS = ("<name>", "[]")
# README sections that document a top-level key's children, when not titled `key`: a version
# entry and the defaults share the version's keys and one table.
SECTION_OF = {"defaults": "A version", "versions": "A version"}
TOP_LEVEL = "Top level"


@cache
def schema(name: str) -> dict:
    return yaml.safe_load((SCHEMAS / name).read_text())


def _described(node) -> bool:
    text = node.get("description") if isinstance(node, dict) else None
    return isinstance(text, str) and bool(text.strip())


def undocumented(node, where: str) -> list[str]:
    """Where below ``node`` a key's schema (a property, a pattern property, the schema of
    additional keys, a definition, a oneOf/anyOf branch that defines keys) has no description."""
    if not isinstance(node, dict):
        return []
    missing = []
    for keyword in ("properties", "patternProperties", "$defs", "definitions"):
        for key, sub in node.get(keyword, {}).items():
            here = f"{where}/{keyword}/{key}"
            missing += [] if _described(sub) else [here]
            missing += undocumented(sub, here)
    if isinstance(node.get("additionalProperties"), dict):
        here = f"{where}/additionalProperties"
        missing += [] if _described(node["additionalProperties"]) else [here]
        missing += undocumented(node["additionalProperties"], here)
    if isinstance(node.get("items"), dict):
        missing += undocumented(node["items"], f"{where}/items")
    for keyword in ("allOf", "anyOf", "oneOf"):
        for i, branch in enumerate(node.get(keyword, [])):
            here = f"{where}/{keyword}/{i}"
            defines = isinstance(branch, dict) and "properties" in branch
            missing += [here] if keyword != "allOf" and defines and not _described(branch) else []
            missing += undocumented(branch, here)
    return missing


def test_every_schema_key_has_a_description():
    missing = [
        f"{name}#{where}"
        for name in (CONFIG_SCHEMA, "hyperopt.schema.yaml")
        for where in undocumented(schema(name), "")
    ]
    assert not missing, "schema keys without a description:\n  " + "\n  ".join(missing)


def _resolve(ref: str, document: str) -> tuple[dict, str]:
    """The subschema a ``$ref`` names (``#/$defs/x``, ``other.yaml`` or both), and its file."""
    target, _, pointer = ref.partition("#")
    document = target or document
    node = schema(document)
    for part in filter(None, pointer.split("/")):
        node = node[part]
    return node, document


def key_paths(node, document: str = CONFIG_SCHEMA, path: tuple[str, ...] = ()) -> set:
    """Every key path the config may hold below ``node``, following ``$ref`` (also into
    hyperopt.schema.yaml); a key the user names is ``<name>``, an array item ``[]``."""
    if not isinstance(node, dict):
        return set()
    paths = set()
    if "$ref" in node:
        target, target_document = _resolve(node["$ref"], document)
        paths |= key_paths(target, target_document, path)
    for key, sub in node.get("properties", {}).items():
        paths |= {(*path, key)} | key_paths(sub, document, (*path, key))
    for sub in [*node.get("patternProperties", {}).values(), node.get("additionalProperties")]:
        paths |= key_paths(sub, document, (*path, "<name>"))
    paths |= key_paths(node.get("items"), document, (*path, "[]"))
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in node.get(keyword, []):
            paths |= key_paths(branch, document, path)
    return paths


def readme_rows() -> dict[str, dict[str, str]]:
    """The README's table rows by section title and by each `key` of their first cell."""
    sections: dict[str, dict[str, str]] = {}
    rows: dict[str, str] = {}  # the tables above the first section hold no keys
    for line in README.read_text().splitlines():
        if line.startswith("## "):
            rows = sections.setdefault(line[3:].strip(), {})
        elif line.startswith("|"):
            first = line.split("|")[1]
            rows.update({key: line for key in re.findall(r"`([^`]+)`", first)})
    return sections


def place(path: tuple[str, ...], sections: dict[str, dict[str, str]]) -> tuple[str, str, str]:
    """Where the README documents a key path: its section, the key of its row there, and the
    key that row must name. A top-level key has its row in "Top level"; a key below it has
    its own row in the section of its top-level key, or, where that key has no section
    (run), is named in the top-level key's row; anything deeper is named in the row of its
    ancestor (model.filters in the row `model`)."""
    first, *rest = (key for key in path if key not in PLACEHOLDERS)
    section = SECTION_OF.get(first, f"`{first}`")
    if not rest or section not in sections:
        return TOP_LEVEL, first, rest[-1] if rest else first
    return section, rest[0], rest[-1]


def test_readme_mentions_every_schema_key():
    """A key counts as mentioned when its row (``place``) exists, its first cell naming the
    row's key in backticks, and the key is a whole word inside one of the row's backticked
    spans: `dropout`, `reduce_lr.patience`, `.factor`, `{choices: [...]}`."""
    sections = readme_rows()
    missing = []
    for path in sorted(key_paths(schema(CONFIG_SCHEMA))):
        section, row_key, key = place(path, sections)
        row = sections.get(section, {}).get(row_key, "")
        words = re.findall(r"\w+", " ".join(re.findall(r"`([^`]+)`", row)))
        if key not in words:
            missing.append(f"{'.'.join(path)} (no `{key}` in {section}, row `{row_key}`)")
    assert not missing, "schema keys config/README.md does not mention:\n  " + "\n  ".join(missing)


def test_readme_tables_name_only_schema_keys():
    """The other direction, for the README's tables of keys: a row for a key the schema does
    not have (renamed, removed, misspelt) is stale."""
    sections = readme_rows()
    expected: dict[str, set[str]] = {}
    for path in key_paths(schema(CONFIG_SCHEMA)):
        section, row_key, _ = place(path, sections)
        expected.setdefault(section, set()).add(row_key)
    stale = [
        f"{section}: `{key}`"
        for section, rows in sections.items()
        if section in expected
        for key in rows
        if key not in expected[section]
    ]
    assert not stale, "config/README.md rows for keys the schema lacks:\n  " + "\n  ".join(stale)


def test_the_config_names_its_schema_for_editors():
    """The YAML language server reads the first line; a moved schema must move this path."""
    config = REPO / "config" / "config.yaml"
    first = config.read_text().splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, f"{config}: first line {first!r} does not name the schema"
    assert (config.parent / match[1]).resolve() == SCHEMAS / CONFIG_SCHEMA
