"""The workflow config: the predecessor's versions, the schema's rejections, resolution."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.utils import update_config

from edtrain import config as edconfig
from edtrain import config_schema

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def load(*layers: str) -> dict[str, Any]:
    """config/config.yaml with the given files layered on top, as `--configfile` does."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for layer in layers:
        update_config(config, yaml.safe_load((REPO / "config" / layer).read_text()))
    return config


def validate(config: dict[str, Any]) -> dict[str, Any]:
    config_schema.validate_config(config, SCHEMA)
    return config


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return validate(load())


# ver: samples, val_fraction, conv layers, filters, loss, epochs, ES patience, RLR patience,
# hyperopt requested (the predecessor's configs; docs/insights.md, "Legacy imports").
PREDECESSOR = {
    "v7": (10_000, 0.2, 3, 32, "cosine", 100, 15, 5, False),
    "v8": (10_000, 0.2, 3, 32, "angular", 100, 15, 5, False),
    "v9": (10_000, 0.2, 3, 32, "focal_angular", 100, 15, 5, False),
    "v10": (50_000, 0.3, 4, 64, "angular", 200, 20, 10, False),
    "v11": (50_000, 0.3, 4, 64, "angular", 100, 20, 10, True),
    "v12": (100_000, 0.3, 4, 64, "angular", 200, 20, 10, False),
    "v13": (100_000, 0.3, 4, 64, "angular", 100, 20, 10, True),
}


@pytest.mark.parametrize("name", PREDECESSOR)
def test_versions_are_the_predecessors(config: dict[str, Any], name: str) -> None:
    samples, val, layers, filters, loss, epochs, es, rlr, hyperopt = PREDECESSOR[name]
    v = edconfig.resolve_version(config, name)
    assert (v["samples"], v["val_fraction"], v["loss"], v["max_epochs"]) == (
        samples,
        val,
        loss,
        epochs,
    )
    assert (v["model"]["conv_layers"], v["model"]["filters"]) == (layers, filters)
    assert v["callbacks"]["early_stopping"]["patience"] == es
    assert v["callbacks"]["reduce_lr"] == {"patience": rlr, "factor": 0.5, "min_lr": 1e-6}
    assert v["optimizer"] == {
        "type": "adam",
        "learning_rate": 1e-3,
        "clipnorm": None,
        "weight_decay": 0.0,
        "schedule": "plateau",
    }
    assert v["batch_size"] == 32
    # every predecessor network: kernel 3, filters doubling per layer, batch norm after each
    # pooling, 2 dense layers of 256 with dropout 0.3, raw ADC in
    assert v["model"] | {"conv_layers": 0, "filters": 0} == {
        "type": "three_branch",
        "fusion": "late",
        "conv_layers": 0,
        "filters": 0,
        "crop": None,
        "pools": None,
        "kernel_size": 3,
        "filter_growth": 2.0,
        "batch_norm": True,
        "dense_layers": 2,
        "dense_units": 256,
        "dropout": 0.3,
        "plane_supervision": 0.0,
        "shared_induction": False,
    }
    assert v["input"]["normalization"] == "none" and v["input"]["augment"] == "none"
    assert v["hyperopt"]["enabled"] is hyperopt
    assert v["hyperopt"]["ran"] is False


def test_v14_is_the_seeds_200k_recommendation(config: dict[str, Any]) -> None:
    v = edconfig.resolve_version(config, "v14")
    assert v["samples"] == 200_000
    assert (v["model"]["conv_layers"], v["model"]["filters"], v["model"]["batch_norm"]) == (
        4,
        64,
        True,
    )
    assert v["loss"] == "angular"
    assert v["optimizer"] | {"weight_decay": 0.0} == {
        "type": "adam",
        "learning_rate": 1e-3,
        "clipnorm": 1.0,
        "weight_decay": 0.0,
        "schedule": "plateau",
    }
    assert v["callbacks"] == {
        "early_stopping": {"patience": 50},
        "reduce_lr": {"patience": 10, "factor": 0.5, "min_lr": 1e-6},
    }
    assert v["max_epochs"] == 300
    assert v["hyperopt"]["enabled"] is False
    assert v["input"]["frame"] == "detector"


def test_v15_is_v14_in_the_face_frame(config: dict[str, Any]) -> None:
    """Only the label frame (and the seed every version has of its own) tells them apart."""
    v14, v15 = (edconfig.resolve_version(config, v) for v in ("v14", "v15"))
    assert v15["input"]["frame"] == "face"
    differs = {k for k in v14 if v14[k] != v15[k]}
    assert differs == {"name", "description", "seed", "input"}
    assert {**v15["input"], "frame": "detector"} == v14["input"]


def test_v17_to_v19_add_one_thing_each(config: dict[str, Any]) -> None:
    """v17: v15's recipe on the fused family; v18: v17's network with augmentation and AdamW
    on a cosine; v19: v18 with a search that includes the family's own parameters."""
    v15, v17, v18, v19 = (edconfig.resolve_version(config, v) for v in ("v15", "v17", "v18", "v19"))
    assert {k for k in v15 if v15[k] != v17[k]} == {"name", "description", "seed", "model"}
    assert v17["model"]["type"] == "resnet" and v17["input"] == v15["input"]
    assert {k for k in v17 if v17[k] != v18[k]} == {
        "name", "description", "seed", "input", "optimizer", "max_epochs"
    }  # fmt: skip
    assert v18["input"] == {**v17["input"], "augment": "x_rotation"}
    assert (v18["optimizer"]["type"], v18["optimizer"]["schedule"]) == ("adamw", "cosine")
    assert {k for k in v18 if v18[k] != v19[k]} == {"name", "description", "seed", "hyperopt"}
    space = v19["hyperopt"]["space"]
    assert v19["hyperopt"]["enabled"] and {"input.augment", "optimizer.weight_decay"} <= set(space)


def test_v21_is_v20_with_a_wider_dense_head(config: dict[str, Any]) -> None:
    v20, v21 = (edconfig.resolve_version(config, v) for v in ("v20", "v21"))
    differ = {k for k in v21 if v21[k] != v20[k]}
    assert differ == {"name", "description", "seed", "model"}
    assert {k for k in v21["model"] if v21["model"][k] != v20["model"][k]} == {"dense_units"}
    assert v21["model"]["dense_units"] == 8 * v20["model"]["dense_units"]


def test_v22_to_v30_each_add_one_change(
    config: dict[str, Any],
) -> None:
    v21, v22, v23 = (edconfig.resolve_version(config, v) for v in ("v21", "v22", "v23"))
    assert {k for k in v22 if v22[k] != v21[k]} == {"name", "description", "seed", "model"}
    changed = {k: v22["model"][k] for k in v22["model"] if v22["model"][k] != v21["model"][k]}
    assert changed == {"crop": [64, 16], "pools": [[2, 1], [2, 1], [2, 2], [2, 2]]}
    assert {k for k in v23 if v23[k] != v22[k]} == {"name", "description", "seed", "loss"}
    assert v23["loss"] == "angular_vmf"
    v24 = edconfig.resolve_version(config, "v24")
    assert {k for k in v24 if v24[k] != v22[k]} == {"name", "description", "seed", "model"}
    assert v24["model"] == {**v22["model"], "plane_supervision": 0.3}
    v25 = edconfig.resolve_version(config, "v25")
    assert {k for k in v25 if v25[k] != v24[k]} == {
        "name",
        "description",
        "seed",
        "loss",
        "optimizer",
    }
    assert v25["loss"] == "angular_axial"
    assert v25["optimizer"] == {
        **v24["optimizer"],
        "learning_rate": v24["optimizer"]["learning_rate"] / 2,
    }
    v26 = edconfig.resolve_version(config, "v26")
    assert {k for k in v26 if v26[k] != v25[k]} == {"name", "description", "seed", "loss"}
    assert v26["loss"] == "axial_direction"
    v27 = edconfig.resolve_version(config, "v27")
    assert {k for k in v27 if v27[k] != v26[k]} == {"name", "description", "seed", "input"}
    assert v27["input"] == {**v26["input"], "test_augment": "x_rotation"}
    v28 = edconfig.resolve_version(config, "v28")
    assert {k for k in v28 if v28[k] != v27[k]} == {"name", "description", "seed", "model"}
    assert v28["model"] == {**v27["model"], "shared_induction": True}
    v29 = edconfig.resolve_version(config, "v29")
    assert {k for k in v29 if v29[k] != v28[k]} == {"name", "description", "seed", "loss"}
    assert v29["loss"] == "axial_bins"
    v30 = edconfig.resolve_version(config, "v30")
    assert {k for k in v30 if v30[k] != v29[k]} == {"name", "description", "seed", "model"}
    assert v30["model"] == {**v29["model"], "dropout": 0.1}
    edconfig.check_models(config)


def test_v20_is_v15s_network_with_v18s_recipe(config: dict[str, Any]) -> None:
    """The best measured at the CPU accuracy size (benchmarks/results/accuracy.md)."""
    v15, v18, v20 = (edconfig.resolve_version(config, v) for v in ("v15", "v18", "v20"))
    same = {"name", "description", "seed"}
    assert {k for k in v20 if v20[k] != v18[k]} == same | {"model"}
    assert v20["model"] == v15["model"]
    assert {k for k in v20 if v20[k] != v15[k]} == same | {"input", "optimizer", "max_epochs"}


@pytest.mark.parametrize("name", ["v11", "v13"])
def test_hyperopt_blocks_keep_the_intended_search(config: dict[str, Any], name: str) -> None:
    hyperopt = edconfig.resolve_version(config, name)["hyperopt"]
    assert hyperopt["rounds"] * hyperopt["trials_per_round"] == 20
    assert hyperopt["space"] == {
        "model.conv_layers": {"choices": [3, 4, 5]},
        "model.filters": {"choices": [32, 64, 128]},
        "model.kernel_size": {"choices": [3, 5]},
        "model.dense_layers": {"choices": [1, 2, 3]},
        "model.dense_units": {"choices": [128, 256, 512]},
        "model.dropout": {"float": [0.2, 0.5]},
        "optimizer.learning_rate": {"choices": [1e-4, 1e-3, 1e-2]},
    }


def test_resolved_config_has_the_documented_keys(config: dict[str, Any]) -> None:
    resolved = edconfig.resolve_version(config, "v12")
    assert set(resolved) == {
        "name", "description", "samples", "val_fraction", "model", "input", "loss",
        "optimizer", "callbacks", "max_epochs", "batch_size", "seed", "require_gpu",
        "performance", "hyperopt", "scaling", "dataset",
    }  # fmt: skip
    assert resolved["name"] == "v12"
    assert resolved["seed"] == 12
    assert resolved["dataset"] == "results/datasets/synthetic"
    assert resolved["scaling"] == {"applied": False}
    json.dumps(resolved, allow_nan=False)  # config.json must be plain JSON


def test_every_version_gets_its_own_seed(config: dict[str, Any]) -> None:
    seeds = [edconfig.resolve_version(config, v)["seed"] for v in config["versions"]]
    assert len(set(seeds)) == len(seeds)


def test_resolution_leaves_the_config_untouched(config: dict[str, Any]) -> None:
    before = copy.deepcopy(config)
    edconfig.resolve_version(load("demo.yaml"), "v11")
    edconfig.resolve_version(config, "v11")["model"]["filters"] = 1
    assert config == before


def test_demo_scaling_is_applied_and_recorded() -> None:
    config = validate(load("demo.yaml"))
    v7, v14 = (edconfig.resolve_version(config, v) for v in ("v7", "v14"))
    assert (v7["samples"], v14["samples"]) == (100, 2000)
    assert (v7["max_epochs"], v14["max_epochs"]) == (10, 10)
    assert (v7["model"]["filters"], v14["model"]["filters"]) == (8, 16)
    assert v14["model"]["dense_units"] == 64
    assert v14["model"]["conv_layers"] == 4  # depth is what distinguishes versions
    assert v14["scaling"] == {
        "applied": True,
        "name": "demo",
        "samples_factor": 0.01,
        "max_epochs": 10,
        "width_factor": 0.25,
        "unscaled": {"samples": 200_000, "max_epochs": 300, "filters": 64, "dense_units": 256},
    }
    assert v14["require_gpu"] is False


def test_scaling_never_shrinks_below_a_trainable_size(config: dict[str, Any]) -> None:
    tiny = edconfig.apply_scaling(
        edconfig.resolve_version(config, "v7"), {"samples_factor": 1e-9, "width_factor": 1e-9}
    )
    assert tiny["samples"] >= 10
    assert tiny["model"]["filters"] >= 4 and tiny["model"]["dense_units"] >= 4


def test_run_versions_selects_and_checks(config: dict[str, Any]) -> None:
    assert edconfig.run_versions(config) == [f"v{i}" for i in range(7, 31)]
    assert edconfig.run_versions({**config, "run_versions": ["v12", "v7"]}) == ["v12", "v7"]
    with pytest.raises(edconfig.ConfigError, match="v99"):
        edconfig.run_versions({**config, "run_versions": ["v99"]})


@pytest.mark.parametrize(
    "layer",
    [
        "demo.yaml",
        "eos.yaml",
        *(f"test/{p.name}" for p in sorted((REPO / "config" / "test").glob("*.yaml"))),
    ],
)
def test_shipped_configs_are_valid(layer: str) -> None:
    config = validate(load(layer))
    for name in edconfig.run_versions(config):
        edconfig.resolve_version(config, name)


def _set(config: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    node = config
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return config


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("epochs", 100, ["epochs: unknown key", "valid keys: run, run_versions"]),
        ("versions.v8.learning_rate", 1e-3, ["did you mean 'optimizer.learning_rate'?"]),
        ("versions.v12.model.n_filters", 64, ["unknown key; did you mean 'filters'?"]),
        ("versions.v10.model.dropuot", 0.5, ["unknown key; did you mean 'dropout'?"]),
        ("data.eos_dirs", [], ["unknown key; valid keys: source, directories"]),
        ("versions.v8.loss", "angular_loss", ["'angular_loss' is not one of"]),
        ("versions.v7.loss", "cosine_similarity", ["'cosine_similarity' is not one of"]),
        ("defaults.loss", "Angular", ["'Angular' is not one of"]),
        ("versions.v12.samples", "100k", ["'100k' is not of type 'integer'"]),
        ("versions.v14.optimizer.clipnorm", "1.0", ["'1.0' is not of type"]),
        ("data.chunks", 0, ["0 is less than the minimum"]),
        ("data.source", "root://eosuser.cern.ch", ["is not one of"]),
        ("require_gpu", "yes", ["'yes' is not of type 'boolean'"]),
        ("defaults.performance.data_parallel", "yes", ["'yes' is not one of"]),
        ("versions.v11.hyperopt.trials", 20, ["unknown key; did you mean 'trials_per_round'?"]),
    ],
)
def test_schema_rejects_naming_the_key(
    config: dict[str, Any], key: str, value: Any, named: list[str]
) -> None:
    bad = _set(copy.deepcopy(config), key, value)
    with pytest.raises(edconfig.ConfigError) as error:
        validate(bad)
    message = str(error.value)
    assert f"  {key}: " in message
    assert f"value: {value!r}" in message
    for fragment in named:
        assert fragment in message
    assert len(message.splitlines()) <= 5  # v11 and v13 share one hyperopt block


def test_schema_error_names_the_file_that_sets_the_key(
    config: dict[str, Any], tmp_path: Path
) -> None:
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text("versions:\n  v10:\n    model: {dropuot: 0.5}\n")
    second.write_text("versions:\n  v10:\n    model: {dropuot: 0.4}\n")
    bad = _set(copy.deepcopy(config), "versions.v10.model.dropuot", 0.4)
    with pytest.raises(edconfig.ConfigError, match=r"value: 0\.4, set in .*second\.yaml"):
        config_schema.validate_config(bad, SCHEMA, [first, second])
    with pytest.raises(edconfig.ConfigError, match=r"value: 0\.4, set in --config"):
        config_schema.validate_config(bad, SCHEMA, [first, second], {"versions": bad["versions"]})


def test_many_schema_errors_make_a_short_message(config: dict[str, Any]) -> None:
    bad = copy.deepcopy(config)
    for version in bad["versions"].values():
        version["loss"] = "angular_loss"
    with pytest.raises(edconfig.ConfigError) as error:
        validate(bad)
    lines = str(error.value).splitlines()
    assert lines[0] == f"Invalid config ({len(bad['versions'])} problems):"
    assert len(lines) <= 10 and "more; fix these first" in lines[-1]


@pytest.mark.parametrize("value", ["auto", True, False])
def test_data_parallel_accepts_auto_true_false(config: dict[str, Any], value: Any) -> None:
    validate(_set(copy.deepcopy(config), "defaults.performance.data_parallel", value))


def test_schema_requires_directories_for_eos(config: dict[str, Any]) -> None:
    bad = _set(copy.deepcopy(config), "data.source", "eos")
    with pytest.raises(edconfig.ConfigError, match=r"data\.directories: \[\] should be non-empty"):
        validate(bad)


def test_missing_data_directory_is_named(config: dict[str, Any], tmp_path: Path) -> None:
    eos = copy.deepcopy(config)
    eos["data"] |= {"source": "eos", "directories": [str(tmp_path), str(tmp_path / "gone")]}
    validate(eos)
    with pytest.raises(edconfig.ConfigError, match=r"data\.directories\[1\].*gone"):
        edconfig.check_data_folders(eos)
    eos["data"]["directories"] = [str(tmp_path)]
    edconfig.check_data_folders(eos)
    # an XRootD URL is for the chunk jobs to open; no mount is needed where Snakemake runs
    eos["data"]["directories"] = ["root://eosuser.cern.ch//eos/user/e/evilla/cluster_images"]
    edconfig.check_data_folders(eos)


def test_chunk_inputs_follow_the_source(config: dict[str, Any]) -> None:
    assert edconfig.chunk_inputs(config) == [
        "results/production/eos/user/e/evilla/dune/sn-tps/production_es/cluster_images_nov11"
    ]
    per_plane = copy.deepcopy(config)
    per_plane["data"]["synthetic"]["layout"] = "per_plane"
    assert edconfig.chunk_inputs(per_plane)[0].endswith(
        "es_cluster_images_tick3_ch2_min2_tot3_e2p0"
    )
    eos = validate(load("eos.yaml"))
    assert edconfig.chunk_inputs(eos) == eos["data"]["directories"]
    assert edconfig.dataset_dir(eos) == "results/eos/datasets/eos"  # the eos run's folder
    demo = validate(load("demo.yaml"))
    assert edconfig.chunk_inputs(demo)[0].startswith("results/demo/production/eos/user/")


def test_chunk_flags_spell_the_selection(config: dict[str, Any]) -> None:
    assert edconfig.chunk_flags(config) == "--es-only --marley-only"
    assert edconfig.strict_flag(config) == ""
    changed = copy.deepcopy(config)
    changed["data"]["selection"] |= {"es_only": False, "energy_min_mev": 5, "energy_max_mev": 70}
    changed["data"]["strict"] = True
    assert edconfig.chunk_flags(changed) == (
        "--no-es-only --marley-only --energy-min 5 --energy-max 70"
    )
    assert edconfig.strict_flag(changed) == "--strict"


def test_write_resolved_round_trips(config: dict[str, Any], tmp_path: Path) -> None:
    resolved = edconfig.resolve_version(load("demo.yaml"), "v13")
    edconfig.write_resolved(resolved, tmp_path / "config.json", tmp_path / "log")
    assert json.loads((tmp_path / "config.json").read_text()) == resolved
    assert "scaled (demo)" in (tmp_path / "log").read_text()
    assert "hyperopt ran: False" in (tmp_path / "log").read_text()


def test_all_versions_come_in_natural_order_whatever_the_layering(config: dict[str, Any]) -> None:
    layered = {**config, "versions": {"v13": {}, "v11": {}, **config["versions"]}}
    assert edconfig.run_versions(layered) == [f"v{i}" for i in range(7, 31)]


@pytest.mark.parametrize("window", [(30, 10), (10, 10)])
def test_energy_window_that_keeps_nothing_is_named(
    config: dict[str, Any], window: tuple[float, float]
) -> None:
    bad = copy.deepcopy(config)
    bad["data"]["selection"] |= {"energy_min_mev": window[0], "energy_max_mev": window[1]}
    validate(bad)
    with pytest.raises(
        edconfig.ConfigError,
        match=rf"energy_min_mev \({window[0]}\) ≥ data\.selection\.energy_max_mev \({window[1]}\)",
    ):
        edconfig.check_selection(bad)
    for low, high in [(10, 30), (None, 10), (30, None)]:  # windows that keep something
        bad["data"]["selection"] |= {"energy_min_mev": low, "energy_max_mev": high}
        edconfig.check_selection(bad)


def test_a_configured_folder_may_start_with_the_home_directory(
    config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "eos" / "images").mkdir(parents=True)
    eos = copy.deepcopy(config)
    eos["data"] |= {"source": "eos", "directories": ["~/eos/images"]}
    edconfig.check_data_folders(eos)
    assert edconfig.chunk_inputs(eos) == [str(tmp_path / "eos" / "images")]


def test_conv_layers_are_limited_by_the_image_width(config: dict[str, Any]) -> None:
    from edtrain.model import build_model

    model = copy.deepcopy(config["defaults"]["model"]) | {"filters": 4, "dense_units": 4}
    build_model(model | {"conv_layers": edconfig.MAX_CONV_LAYERS}, {})
    with pytest.raises(ValueError, match="negative"):
        build_model(model | {"conv_layers": edconfig.MAX_CONV_LAYERS + 1}, {})

    edconfig.check_models(config)
    for key, value in [
        ("versions.v9.model", {"conv_layers": 9}),
        ("defaults.model.conv_layers", 6),
        ("versions.v11.hyperopt.space", {"model.conv_layers": {"int": [3, 6]}}),
    ]:
        bad = _set(copy.deepcopy(config), key, value)
        with pytest.raises(edconfig.ConfigError, match=r"conv_layers: (9|6) .* at most 5"):
            edconfig.check_models(bad)


@pytest.mark.parametrize(
    ("model", "hyperopt", "message"),
    [
        ({"pools": [[2, 1]] * 3}, {}, r"v9\.model\.pools: 3 poolings for 4 conv layers"),
        ({"pools": [[2, 4]] * 4}, {}, r"the wire pools \[4, 4, 4, 4\] leave nothing of .* 32"),
        (
            {"crop": [8, 16], "pools": [[2, 1]] * 4, "conv_layers": 4},
            {},
            r"time pools \[2, 2, 2, 2\] leave nothing of the image's 8 time",
        ),
        (
            {"pools": [[2, 2]] * 4},
            {"space": {"model.conv_layers": {"int": [3, 4]}}},
            "fixes the number of conv layers",
        ),
        ({"type": "resnet", "pools": [[2, 2]] * 4}, {}, "only the three_branch family"),
    ],
)
def test_pools_must_fit_the_layers_and_the_image(config, model, hyperopt, message) -> None:
    good = _set(copy.deepcopy(config), "versions.v9.model", {"crop": [64, 16], "conv_layers": 4})
    good["versions"]["v9"]["model"]["pools"] = [[2, 1], [2, 1], [2, 2], [2, 2]]
    edconfig.check_models(good)
    bad = _set(copy.deepcopy(config), "versions.v9.model", {"conv_layers": 4, **model})
    bad["versions"]["v9"]["hyperopt"] = hyperopt
    with pytest.raises(edconfig.ConfigError, match=message):
        edconfig.check_models(bad)


PLANES_SUPERVISED = {"plane_supervision": 0.5}
SHARED = {"shared_induction": True}


@pytest.mark.parametrize(
    ("setting", "model", "frame", "message"),
    [
        (PLANES_SUPERVISED, {"type": "resnet"}, "face", r"v15\.model\.plane_supervision: needs a"),
        (PLANES_SUPERVISED, {"fusion": "stack"}, "face", "not type three_branch with fusion stack"),
        (PLANES_SUPERVISED, {}, "detector", r"in the face frame; set versions\.v15\.input\.frame"),
        (SHARED, {"type": "resnet"}, "face", r"v15\.model\.shared_induction: needs a branch per"),
    ],
)
def test_plane_branches_need_a_branch_per_plane_and_the_face_frame(
    config, setting, model, frame, message
) -> None:
    good = _set(copy.deepcopy(config), "versions.v15.model", setting)
    edconfig.check_models(good)
    bad = _set(good, "versions.v15.model", {**setting, **model})
    bad["versions"]["v15"]["input"] = {**bad["versions"]["v15"].get("input", {}), "frame": frame}
    with pytest.raises(edconfig.ConfigError, match=message):
        edconfig.check_models(bad)


def test_test_augment_needs_an_axis_head(config) -> None:
    rotated = {**config["versions"]["v26"]["input"], "test_augment": "x_rotation"}
    good = _set(copy.deepcopy(config), "versions.v26.input", rotated)
    edconfig.check_models(good)
    bad = _set(copy.deepcopy(good), "versions.v26.loss", "angular")
    with pytest.raises(edconfig.ConfigError, match=r"v26\.input\.test_augment: .* loss angular"):
        edconfig.check_models(bad)


def test_a_new_setting_at_its_neutral_value_retrains_nothing(config: dict[str, Any]) -> None:
    """A config.json written before a setting existed (model.crop, ...) has the identity of
    one resolved now with the setting at its neutral value (and reads as it); any other value
    changes it."""
    identity = edconfig.training_identity
    resolved = edconfig.resolve_version(config, "v14")
    other_values = {
        "model.crop": [64, 16],
        "model.pools": [[2, 2]] * 4,
        "model.plane_supervision": 0.5,
        "model.shared_induction": True,
        "input.test_augment": "x_rotation",
    }
    assert set(other_values) == set(edconfig.NEUTRAL_DEFAULTS)
    older = copy.deepcopy(resolved)
    for key, value in other_values.items():
        section, name = key.split(".")
        assert resolved[section][name] == edconfig.NEUTRAL_DEFAULTS[key]
        del older[section][name]
        changed = copy.deepcopy(resolved)
        changed[section][name] = value
        assert identity(changed) != identity(resolved), key
    assert identity(older) == identity(resolved)
    assert edconfig.with_neutral_defaults(older) == resolved  # how the insights read it


def test_a_version_may_not_be_named_like_a_rule(config: dict[str, Any]) -> None:
    edconfig.check_version_names(config, ["all", "train"])
    bad = copy.deepcopy(config)
    bad["versions"]["train"] = {}
    with pytest.raises(edconfig.ConfigError, match=r"versions\.train: .* rules: all, train$"):
        edconfig.check_version_names(bad, ["train", "all"])


def test_results_dir_moves_the_results_not_logs_or_state(config: dict[str, Any]) -> None:
    moved = copy.deepcopy(config) | {"run": {"name": "eos", "results_dir": "/eos/x/edtrain/"}}
    assert edconfig.run_dir(moved) == "/eos/x/edtrain/eos"
    assert edconfig.dataset_dir(moved) == "/eos/x/edtrain/eos/datasets/synthetic"
    assert edconfig.run_dir(moved, "logs") == "logs/eos"
    assert edconfig.run_dir(moved, ".state") == ".state/eos"
    assert edconfig.run_dir(config) == "results"


def test_without_drops_dotted_keys_and_leaves_the_original(config: dict[str, Any]) -> None:
    resolved = edconfig.resolve_version(config, "v14")
    kept = edconfig.without(resolved, ["description", "performance.workers", "no.such.key"])
    assert "description" not in kept and "workers" not in kept["performance"]
    assert kept["performance"]["precision"] == resolved["performance"]["precision"]
    assert "description" in resolved and "workers" in resolved["performance"]


def test_dataset_definition_ignores_the_chunk_count(config: dict[str, Any]) -> None:
    """Neither the chunk count nor whether the chunks are kept changes the dataset."""
    definition = edconfig.dataset_definition(config)
    assert "chunks" not in definition and definition["synthetic"] == config["data"]["synthetic"]
    rechunked = copy.deepcopy(config)
    rechunked["data"]["chunks"] += 3
    rechunked["data"]["keep_chunks"] = not config["data"]["keep_chunks"]
    assert edconfig.dataset_definition(rechunked) == definition
    rechunked["data"]["test_fraction"] /= 2
    assert edconfig.dataset_definition(rechunked) != definition


def test_a_new_generator_redefines_a_synthetic_dataset(config: dict[str, Any], monkeypatch) -> None:
    """Files the code no longer makes are not reused: the generator's version is part of a
    synthetic dataset's definition (so of every version's config.json params), not of a real
    one's."""
    definition = edconfig.dataset_definition(config)
    assert definition["generator_version"] == edconfig.GENERATOR_VERSION
    monkeypatch.setattr(edconfig, "GENERATOR_VERSION", edconfig.GENERATOR_VERSION + 1)
    assert edconfig.dataset_definition(config) != definition
    real = copy.deepcopy(config)
    real["data"]["source"] = "eos"
    assert "generator_version" not in edconfig.dataset_definition(real)
