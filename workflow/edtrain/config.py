"""Version resolution: defaults ⊕ version entry ⊕ scaling → one resolved config per version.

The workflow config (config/config.yaml, validated by workflow/schemas/config.schema.yaml)
declares a complete ``defaults`` block and, per version, only what differs. Resolution is a
pure function of that config so the resolved dict can be a rule's ``params``: any edit that
changes a version's resolved config re-runs that version, and only that version.

Everything else the rules need to know about the config (which versions run, where the data
comes from, which chunk flags to pass) is computed here too, so the rules stay declarative.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from edtrain.dataset.discover import chunk_listings
from edtrain.dataset.storage import is_url
from edtrain.formats.columns import IMAGE_SHAPE
from edtrain.simulation import GENERATOR_VERSION

# The EOS-style tree `edtrain simulate --out <production>` writes under <production>/eos (next
# to production.json), and which folder of it each synthetic layout reads (EOS's names).
PRODUCTION_TREE = "eos"
SYNTHETIC_PREFIX = f"{PRODUCTION_TREE}/user/e/evilla/dune/sn-tps/production_es"
SYNTHETIC_LAYOUTS = {
    "flat": "cluster_images_nov11",
    "per_plane": "es_cluster_images_tick3_ch2_min2_tot3_e2p0",
}
# Smallest filter/unit count and sample count a scaled version may shrink to.
_MIN_WIDTH = 4
_MIN_SAMPLES = 10
# Each conv layer is followed by a 2×2 max-pool without padding, which halves both image axes
# (rounding down); the narrower (32) reaches 1 after 5 pools and a 6th fails to build.
MAX_CONV_LAYERS = int(math.log2(min(IMAGE_SHAPE)))
# How many schema errors a message lists: the first few say what to fix, the rest is noise.


# Config keys (dotted; a key covers everything below it) that cannot change the trained
# weights: changing them keeps a training's state (edtrain.state) and reruns no job (the
# rules' params leave them out). Every other key is part of a training's identity.
IGNORED_KEYS = (
    "description",  # text for people
    "require_gpu",  # where the job may run, checked before training
    "performance.workers",  # loader threads: the batches are a function of (seed, epoch)
    "dataset",  # the dataset's path; its content is identified by dataset_hash
    "scaling",  # how the version was scaled; the scaled values themselves are compared
    "hyperopt",  # the search's settings and outcome; the chosen values are in the other keys
)

# Settings added after trainings were made, each with the value that trains exactly as before
# it existed: at that value a setting is no part of a training's identity, so a release that
# adds one re-runs no finished version (docs/training.md, "Callbacks, statuses and resume").
NEUTRAL_DEFAULTS = {
    "model.crop": None,
    "model.pools": None,
    "model.plane_supervision": 0.0,
    "model.shared_induction": False,
    "input.test_augment": "none",
}
# Losses whose network ends with an axis head (losses.HEADS), the outputs test-time
# augmentation can combine (edtrain.symmetrize): named here, as config stays free of Keras.
AXIS_HEAD_LOSSES = ("axial_direction", "axial_sense", "axial_bins")


class ConfigError(ValueError):
    """A config problem found before any job runs; the message names the offending key."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` on top of ``base``, merging nested mappings key by key."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"optimizer.learning_rate": 0.001, ...}``: how keys are named in
    comparisons, search spaces and messages. An empty mapping stays a value, so no key is lost."""
    if not isinstance(tree, Mapping) or not tree:
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        out |= flatten(sub, f"{prefix}.{key}" if prefix else str(key))
    return out


def version_order(name: str) -> tuple[Any, ...]:
    """Natural order (v7 before v10): layered config files do not keep declaration order."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def run_versions(config: Mapping[str, Any]) -> list[str]:
    """The versions `rule all` builds: ``run_versions`` if given, else every declared one."""
    declared = sorted(config["versions"], key=version_order)
    chosen = config.get("run_versions", "all")
    if chosen == "all":
        return declared
    unknown = [v for v in chosen if v not in config["versions"]]
    if unknown:
        raise ConfigError(f"run_versions: {unknown} not declared under versions {declared}")
    return list(chosen)


def dataset_name(config: Mapping[str, Any]) -> str:
    """One pool per data source, so every version of a source shares one test set."""
    return str(config["data"]["source"])


def run_dir(config: Mapping[str, Any], root: str | None = None) -> str:
    """This run's folder under ``root`` (logs, .state; by default the results folder,
    ``run.results_dir``): ``root/<run.name>``, or ``root`` itself for the unnamed run. Runs of
    different configs never share a file."""
    name = config["run"]["name"]
    root = root or str(config["run"].get("results_dir") or "results").rstrip("/")
    return f"{root}/{name}" if name else root


def production_dir(config: Mapping[str, Any]) -> str:
    """Where the workflow writes the synthetic production (production.json, the EOS tree)."""
    return f"{run_dir(config)}/production"


def synthetic_prefix(config: Mapping[str, Any]) -> str:
    """The synthetic production's folder that holds its layouts and its truth."""
    return f"{production_dir(config)}/{SYNTHETIC_PREFIX}"


def dataset_dir(config: Mapping[str, Any]) -> str:
    return f"{run_dir(config)}/datasets/{dataset_name(config)}"


def _scale_width(value: int, factor: float) -> int:
    return max(_MIN_WIDTH, round(value * factor))


def apply_scaling(resolved: Mapping[str, Any], scaling: Mapping[str, Any]) -> dict[str, Any]:
    """Shrink a version for demos and tests, recording what was changed and from what.

    Samples and widths scale by a factor; epochs are capped. The unscaled values stay in
    ``scaling.unscaled`` so the insights can say which production version a demo row stands for.
    """
    out = copy.deepcopy(dict(resolved))
    record: dict[str, Any] = {"applied": bool(scaling), **copy.deepcopy(dict(scaling))}
    if not scaling:
        out["scaling"] = record
        return out
    model = out["model"]
    record["unscaled"] = {
        "samples": out["samples"],
        "max_epochs": out["max_epochs"],
        "filters": model["filters"],
        "dense_units": model["dense_units"],
    }
    if "samples_factor" in scaling:
        out["samples"] = max(_MIN_SAMPLES, math.ceil(out["samples"] * scaling["samples_factor"]))
    if "max_epochs" in scaling:
        out["max_epochs"] = min(out["max_epochs"], scaling["max_epochs"])
    if "width_factor" in scaling:
        model["filters"] = _scale_width(model["filters"], scaling["width_factor"])
        model["dense_units"] = _scale_width(model["dense_units"], scaling["width_factor"])
    out["scaling"] = record
    return out


def resolve_version(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The fully resolved config.json of one version (docs/architecture.md)."""
    if name not in config["versions"]:
        raise ConfigError(f"versions: no version {name!r} (declared: {list(config['versions'])})")
    resolved = deep_merge(config["defaults"], config["versions"][name] or {})
    # Before the search (rules/hyperopt.smk) a version's config says ran: false;
    # hyperopt-apply sets ran: true.
    resolved["hyperopt"] = {**resolved["hyperopt"], "ran": False}
    resolved = apply_scaling(resolved, config.get("scaling") or {})
    resolved["require_gpu"] = bool(config["require_gpu"])
    resolved["dataset"] = dataset_dir(config)
    return {"name": name, **resolved}


def write_config_json(config: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """A version's config.json, keys sorted (every writer: resolved and imported versions)."""
    Path(path).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_resolved(
    resolved: Mapping[str, Any], path: str | os.PathLike[str], log: str | os.PathLike[str]
) -> None:
    """Write a version's config.json, and a log line saying what shaped it."""
    write_config_json(resolved, path)
    scaling = resolved["scaling"]
    how = f"scaled ({scaling.get('name', 'unnamed')})" if scaling["applied"] else "unscaled"
    Path(log).write_text(
        f"{resolved['name']}: defaults + versions.{resolved['name']}, {how}, "
        f"hyperopt ran: {resolved['hyperopt']['ran']} -> {path}\n"
    )


def chunk_inputs(config: Mapping[str, Any]) -> list[str]:
    """The folders the chunk jobs index: the synthetic production's or the configured ones."""
    data = config["data"]
    if data["source"] == "synthetic":
        layout = SYNTHETIC_LAYOUTS[data["synthetic"]["layout"]]
        return [f"{synthetic_prefix(config)}/{layout}"]
    return [_expand(d) for d in data["directories"]]


def _expand(directory: str) -> str:
    """A configured folder as the jobs see it: ``~/eos/...`` under the user's home."""
    return str(directory) if is_url(directory) else os.path.expanduser(directory)


def chunk_listing(config: Mapping[str, Any], chunk: int) -> str:
    """A digest of the files chunk ``chunk`` reads (``discover.chunk_listings``), so that adding
    files to a production redoes only the chunks they fall in.

    Empty for the synthetic production (its production.json stands for its files); root://
    folders are listed by the jobs only, so their new files need ``--forcerun chunk``.
    """
    data = config["data"]
    folders = tuple(d for d in chunk_inputs(config) if not is_url(d))
    if data["source"] == "synthetic" or not folders:
        return ""
    return _chunk_listings(folders, data["chunks"])[chunk]


@cache
def _chunk_listings(folders: tuple[str, ...], chunks: int) -> list[str]:
    return chunk_listings(list(folders), chunks)


def check_data_folders(config: Mapping[str, Any]) -> None:
    """Fail before any job runs if a configured data folder is missing."""
    data = config["data"]
    if data["source"] == "synthetic":
        return
    for i, directory in enumerate(data["directories"]):
        # a root:// URL is checked by the chunk jobs, which name the file that fails
        if not is_url(directory) and not Path(_expand(directory)).is_dir():
            raise ConfigError(f"data.directories[{i}]: no such directory: {_expand(directory)}")


def check_selection(config: Mapping[str, Any]) -> None:
    """Fail before any job runs on an energy window that keeps nothing: every chunk would
    succeed with no samples, and the dataset would fail only at ``assemble``."""
    sel = config["data"]["selection"]
    low, high = sel.get("energy_min_mev"), sel.get("energy_max_mev")
    if low is not None and high is not None and low >= high:
        raise ConfigError(
            f"data.selection.energy_min_mev ({low}) ≥ data.selection.energy_max_mev ({high}): "
            "no cluster energy E satisfies min ≤ E < max"
        )


def without(tree: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """A copy of ``tree`` less the dotted ``keys`` (a key drops everything below it): the
    settings that may decide whether a job reruns, less those that cannot change its result."""
    out = copy.deepcopy(dict(tree))
    for dotted in keys:
        *parents, last = dotted.split(".")
        node: Any = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def training_identity(
    resolved: Mapping[str, Any], ignored: Iterable[str] = IGNORED_KEYS
) -> dict[str, Any]:
    """The resolved config less the ``ignored`` keys and the ``NEUTRAL_DEFAULTS`` at their
    neutral value: what decides whether a version's training reruns."""
    neutral = [key for key in NEUTRAL_DEFAULTS if is_neutral(key, _lookup(resolved, key))]
    return without(resolved, [*ignored, *neutral])


def is_neutral(key: str, value: Any) -> bool:
    """Whether a flattened setting is one of ``NEUTRAL_DEFAULTS`` at its neutral value."""
    return key in NEUTRAL_DEFAULTS and value == NEUTRAL_DEFAULTS[key]


def with_neutral_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a config.json with the settings added after it was written at their neutral
    value (where their section exists), so it compares with newer ones setting by setting."""
    filled = copy.deepcopy(dict(config))
    for key, value in NEUTRAL_DEFAULTS.items():
        section, name = key.rsplit(".", 1)
        node = _lookup(filled, section)
        if isinstance(node, dict):
            node.setdefault(name, value)
    return filled


def _lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key, or ``...`` where the path does not exist."""
    node: Any = tree
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return ...
        node = node[key]
    return node


def dataset_definition(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the dataset's content follows, as known before it is built: the ``data`` settings
    less ``chunks`` (any chunk count gives a bitwise-identical dataset) and ``keep_chunks``
    (whether the chunks outlive it), and the names of the local files it reads. A root://
    folder's files are listed by the jobs only. A synthetic production's files follow the
    generator too: a new ``GENERATOR_VERSION`` makes them, and so the dataset, anew."""
    data = without(config["data"], ["chunks", "keep_chunks"])
    if data["source"] == "synthetic":
        data["directories"] = []
        data["generator_version"] = GENERATOR_VERSION
    else:
        del data["synthetic"]
        data["directories"] = chunk_inputs(config)
    folders = tuple(d for d in data["directories"] if not is_url(d))
    data["files"] = _chunk_listings(folders, 1)[0] if folders else ""
    return data


def chunk_flags(config: Mapping[str, Any]) -> str:
    """The selection options of `edtrain chunk`, from ``data.selection``."""
    sel = config["data"]["selection"]
    flags = [
        "--es-only" if sel["es_only"] else "--no-es-only",
        "--marley-only" if sel["marley_only"] else "--no-marley-only",
    ]
    if sel.get("energy_min_mev") is not None:
        flags.append(f"--energy-min {sel['energy_min_mev']}")
    if sel.get("energy_max_mev") is not None:
        flags.append(f"--energy-max {sel['energy_max_mev']}")
    return " ".join(flags)


def strict_flag(config: Mapping[str, Any]) -> str:
    """``--strict`` (fail on any unreadable input instead of skipping it) if ``data.strict``."""
    return "--strict" if config["data"]["strict"] else ""


def check_version_names(config: Mapping[str, Any], rules: Iterable[str]) -> None:
    """Every version is also a target rule (`snakemake v12`), so its name must not be one of
    the workflow's rules, which Snakemake would report only as a clash of rule names."""
    reserved = sorted(set(rules))
    clashes = [name for name in config["versions"] if name in reserved]
    if clashes:
        raise ConfigError(
            f"versions.{clashes[0]}: a version's name is also a rule name, so it cannot be one "
            f"of the workflow's rules: {', '.join(reserved)}"
        )


def check_models(config: Mapping[str, Any]) -> None:
    """Fail before any job on a network the images cannot hold: a conv layer too many only
    fails when the training job builds the model, on a GPU node, after the data is made."""
    default = config["defaults"]["model"]["conv_layers"]
    if default > MAX_CONV_LAYERS:
        raise ConfigError(_too_deep("defaults.model.conv_layers", default))
    for name in config["versions"]:
        resolved = resolve_version(config, name)
        layers = resolved["model"]["conv_layers"]
        if layers > MAX_CONV_LAYERS:
            raise ConfigError(_too_deep(f"versions.{name}.model.conv_layers", layers))
        _check_pools(f"versions.{name}.model", resolved["model"], resolved["hyperopt"])
        _check_branches(f"versions.{name}", resolved)
        _check_test_augment(f"versions.{name}", resolved)
        space = resolved["hyperopt"].get("space", {}).get("model.conv_layers", {})
        searched = [*space.get("choices", []), *space.get("int", [])]
        deepest = max((v for v in searched if isinstance(v, int | float)), default=0)
        if deepest > MAX_CONV_LAYERS:
            key = f"versions.{name}.hyperopt.space.model.conv_layers"
            raise ConfigError(_too_deep(key, deepest))


def _check_pools(key: str, model: Mapping[str, Any], hyperopt: Mapping[str, Any]) -> None:
    """``pools`` gives one pooling per conv layer, and together with ``crop`` they leave at
    least one cell on both axes of the last feature map."""
    pools = model["pools"]
    if pools is None:
        return
    if len(pools) != model["conv_layers"]:
        raise ConfigError(
            f"{key}.pools: {len(pools)} poolings for {model['conv_layers']} conv layers;"
            " give one [time, wire] pair per layer"
        )
    if "model.conv_layers" in hyperopt.get("space", {}):
        raise ConfigError(
            f"{key}.pools: fixes the number of conv layers, which the version's hyperopt space"
            " searches (model.conv_layers); set pools to null or drop it from the space"
        )
    if model["type"] != "three_branch":
        raise ConfigError(f"{key}.pools: only the three_branch family takes pools")
    image = model["crop"] or IMAGE_SHAPE
    for axis, name in enumerate(("time", "wire")):
        along = [pool[axis] for pool in pools]
        if image[axis] // math.prod(along) < 1:
            raise ConfigError(
                f"{key}.pools: the {name} pools {along} leave nothing of the image's"
                f" {image[axis]} {name} pixels"
            )


def _check_branches(key: str, resolved: Mapping[str, Any]) -> None:
    """The planes' own directions and a shared induction branch need a branch per plane;
    the planes' directions also labels in the face frame, the frame their projections are
    written in (``losses.PLANE_COLUMN_AXES``)."""
    model = resolved["model"]
    for setting in ("plane_supervision", "shared_induction"):
        if model.get(setting) and (model["type"] != "three_branch" or model["fusion"] != "late"):
            raise ConfigError(
                f"{key}.model.{setting}: needs a branch per plane (type three_branch,"
                f" fusion late), not type {model['type']} with fusion {model['fusion']}"
            )
    if model["plane_supervision"] and resolved["input"]["frame"] != "face":
        raise ConfigError(
            f"{key}.model.plane_supervision: the planes' directions are defined in the face"
            f" frame; set {key}.input.frame to face"
        )


def _check_test_augment(key: str, resolved: Mapping[str, Any]) -> None:
    """Two readings of a cluster combine only where the output has an axis: two directions
    a head–tail flip apart average to one pointing sideways."""
    if resolved["input"]["test_augment"] != "none" and resolved["loss"] not in AXIS_HEAD_LOSSES:
        raise ConfigError(
            f"{key}.input.test_augment: combines the readings of an axis head, which loss"
            f" {resolved['loss']} has not; use a loss among {', '.join(AXIS_HEAD_LOSSES)}"
            " or test_augment none"
        )


def _too_deep(key: str, layers: int) -> str:
    height, width = IMAGE_SHAPE
    return (
        f"{key}: {layers} conv layers, but each halves the {height}×{width} image (2×2 max-pool)"
        f" and the {min(IMAGE_SHAPE)}-pixel axis allows at most {MAX_CONV_LAYERS}"
    )
