"""The workflow config checked against its JSON schema, with errors a user can act on.

jsonschema's own message (what Snakemake's ``validate`` prints) dumps the whole schema and
config; here each problem is two lines: the key and what is wrong, then its value and the
config file (or ``--config``) that sets it, with a suggestion for a misspelt key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import jsonschema
import yaml
from referencing import Registry, Resource

from edtrain.config import ConfigError

_SHOWN_ERRORS = 4


def validate_config(
    config: dict[str, Any],
    schema: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]] = (),
    overrides: Mapping[str, Any] | None = None,
) -> None:
    """Check ``config`` against the schema, raising a ConfigError of a few lines instead of
    jsonschema's dump of the whole schema and config (which Snakemake's ``validate`` prints).

    ``sources`` are the config files in the order they were layered, ``overrides`` the
    ``--config`` values: the message names the last of them that sets the offending key.
    """
    path = Path(schema).resolve()
    contents = {**_load_yaml(path), "$id": path.as_uri()}
    registry = Registry(retrieve=_retrieve_schema).with_resource(
        path.as_uri(), Resource.from_contents(contents)
    )
    errors = list(jsonschema.Draft202012Validator(contents, registry=registry).iter_errors(config))
    if not errors:
        return
    best = jsonschema.exceptions.best_match(errors)
    rest = sorted((e for e in errors if e is not best), key=jsonschema.exceptions.relevance)
    layers = [(_shown(Path(s)), _load_yaml(Path(s))) for s in sources]
    if overrides:
        layers.append(("--config", overrides))
    lines = [f"Invalid config ({len(errors)} problem{'s' if len(errors) > 1 else ''}):"]
    for error in [best, *rest][:_SHOWN_ERRORS]:
        lines += _explain(error, config, layers)
    if len(errors) > _SHOWN_ERRORS:
        lines.append(f"... and {len(errors) - _SHOWN_ERRORS} more; fix these first")
    raise ConfigError("\n".join(lines))


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _shown(path: Path) -> str:
    """A config file as the user named it: relative to the working directory when inside."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _retrieve_schema(uri: str) -> Resource:
    """A schema that another one refers to by a relative ``$ref`` (hyperopt.schema.yaml)."""
    return Resource.from_contents(_load_yaml(Path(url2pathname(urlparse(uri).path))))


def _explain(error: Any, config: Any, layers: list[tuple[str, Any]]) -> list[str]:
    """Two lines per problem: the key and what is wrong, then its value and where it is set."""
    where = list(error.absolute_path)
    if error.validator == "additionalProperties":
        properties = error.schema.get("properties", {})
        known = list(properties)
        lines = []
        for key in [k for k in error.instance if k not in known]:
            # a key one level too high (learning_rate for optimizer.learning_rate) is common
            nested = [
                f"{p}.{key}" for p, sub in properties.items() if key in sub.get("properties", {})
            ]
            close = difflib.get_close_matches(str(key), known, n=1)
            close += [k for k in known if k.startswith(str(key))] + nested
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(known)}"
            lines.append(f"  {_key([*where, key])}: unknown key; {hint}")
            lines.append(_value_line([*where, key], config, layers))
        return lines
    if error.validator == "required":
        return [f"  {_key(where)}: {_short(error.message)}"]
    return [f"  {_key(where)}: {_short(error.message)}", _value_line(where, config, layers)]


def _value_line(where: list[Any], config: Any, layers: list[tuple[str, Any]]) -> str:
    found, value = _lookup(config, where)
    setters = [name for name, layer in layers if _lookup(layer, where)[0]]
    origin = f", set in {setters[-1]}" if setters else ""
    return f"    value: {_short(repr(value)) if found else '(none)'}{origin}"


def _lookup(tree: Any, where: list[Any]) -> tuple[bool, Any]:
    """Whether the key path exists in ``tree``, and its value there."""
    for key in where:
        if isinstance(tree, Mapping) and key in tree:
            tree = tree[key]
        elif isinstance(tree, list) and isinstance(key, int) and key < len(tree):
            tree = tree[key]
        else:
            return False, None
    return True, tree


def _key(where: list[Any]) -> str:
    """``versions.v10.model.dropout``, ``data.directories[0]``; ``(top level)`` for the root."""
    text = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in where).lstrip(".")
    return text or "(top level)"


def _short(text: str, limit: int = 100) -> str:
    """One line of at most ``limit`` characters: a message may repeat a whole block."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
