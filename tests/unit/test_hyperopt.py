"""The search's pieces: space, proposals, trial records, selection and the final config."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from edtrain import cli, exit_status
from edtrain.config import apply_scaling
from edtrain.hyperopt import apply, plan, propose, record, scaling, select, space, trial

SCHEMA = Path(__file__).parents[2] / "workflow" / "schemas" / "hyperopt.schema.yaml"

# The predecessor's intended search (v11/v13), 20 trials, in this schema.
PREDECESSOR = {
    "enabled": True,
    "rounds": 4,
    "trials_per_round": 5,
    "epochs_per_trial": 20,
    "objective": "val_loss",
    "seed": 11,
    "space": {
        "model.conv_layers": {"choices": [3, 4, 5]},
        "model.filters": {"choices": [32, 64, 128]},
        "model.kernel_size": {"choices": [3, 5]},
        "model.dense_layers": {"choices": [1, 2, 3]},
        "model.dense_units": {"choices": [128, 256, 512]},
        "model.dropout": {"float": [0.2, 0.5]},
        "optimizer.learning_rate": {"float": [1.0e-4, 1.0e-2], "log": True},
    },
}


def _base_config(hopt: dict | None = None) -> dict:
    return {
        "name": "vh",
        "samples": 1000,
        "model": {
            "conv_layers": 4,
            "filters": 64,
            "kernel_size": 3,
            "dense_layers": 2,
            "dense_units": 256,
            "dropout": 0.3,
        },
        "optimizer": {"type": "adam", "learning_rate": 1.0e-3},
        "max_epochs": 100,
        "seed": 5,
        "hyperopt": dict(PREDECESSOR if hopt is None else hopt),
        "scaling": {"applied": False},
    }


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA.read_text()))


def _record(round_: int, trial_: int, params: dict, score: float | None) -> dict:
    return {
        "id": record.trial_id(round_, trial_),
        "round": round_,
        "trial": trial_,
        "params": params,
        "objective": "val_loss",
        "status": "ok" if score is not None else "failed",
        "score": score,
        "reason": None if score is not None else "training status 'failed'",
    }


# --- schema and space ---------------------------------------------------------------------------


def test_schema_accepts_predecessor_space_and_disabled_block():
    _validator().validate(PREDECESSOR)
    _validator().validate({"enabled": False})
    # the predecessor's learning rates as listed values are expressible too
    _validator().validate(
        {**PREDECESSOR, "space": {"optimizer.learning_rate": {"choices": [1e-4, 1e-3, 1e-2]}}}
    )


@pytest.mark.parametrize(
    "block",
    [
        {"enabled": True, "space": PREDECESSOR["space"]},  # no rounds/trials/epochs
        {**PREDECESSOR, "trials": 20},  # unknown key
        {**PREDECESSOR, "objective": "val_mean"},
        {**PREDECESSOR, "space": {"model.dropout": {"low": 0.2, "high": 0.5}}},
        {**PREDECESSOR, "space": {"model.dropout": {"float": [0.2]}}},
        {**PREDECESSOR, "space": {"model.filters": {"int": [16.5, 64]}}},
        {**PREDECESSOR, "space": {"Model Filters": {"choices": [1]}}},
        {**PREDECESSOR, "space": {}},
    ],
)
def test_schema_rejects(block):
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(block)


def test_distributions_of_predecessor_space():
    dists = space.distributions(PREDECESSOR["space"])
    assert list(dists) == list(PREDECESSOR["space"])
    assert dists["model.filters"] == CategoricalDistribution([32, 64, 128])
    assert dists["optimizer.learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert space.distribution("x", {"int": [1, 4], "log": True}) == IntDistribution(1, 4, log=True)


@pytest.mark.parametrize(
    "spec", [{"float": [0.5, 0.5]}, {"float": [0.0, 1.0], "log": True}, {"choices": []}, {}]
)
def test_bad_parameter_specs_raise(spec):
    with pytest.raises(ValueError, match="hyperopt space 'p'"):
        space.distribution("p", spec)


def test_from_unit_covers_the_ends_of_every_kind():
    dists = space.distributions(
        {
            "c": {"choices": ["a", "b", "c"]},
            "i": {"int": [2, 5]},
            "li": {"int": [1, 100], "log": True},
            "f": {"float": [0.2, 0.5]},
            "lf": {"float": [1e-4, 1e-2], "log": True},
        }
    )
    low = space.from_unit(dists, np.zeros(5))
    high = space.from_unit(dists, np.full(5, np.nextafter(1.0, 0.0)))
    assert low == {"c": "a", "i": 2, "li": 1, "f": 0.2, "lf": pytest.approx(1e-4)}
    assert high == {"c": "c", "i": 5, "li": 100, "f": pytest.approx(0.5), "lf": pytest.approx(1e-2)}
    middle = space.from_unit(dists, np.full(5, 0.5))
    assert middle["c"] == "b" and middle["lf"] == pytest.approx(1e-3)


def test_scrambled_halton_is_stratified_seeded_and_in_range():
    points = space.scrambled_halton(9, 3, seed=4)
    assert points.shape == (9, 3) and (points >= 0).all() and (points < 1).all()
    # the first b**k points of base b put one point in each 1/b**k stratum
    for column, n in ((0, 8), (1, 9), (2, 5)):
        strata = np.floor(points[:n, column] * n).astype(int)
        assert sorted(strata) == list(range(n))
    np.testing.assert_array_equal(points, space.scrambled_halton(9, 3, seed=4))
    assert not np.allclose(points, space.scrambled_halton(9, 3, seed=5))


def test_apply_params_replaces_dotted_leaves_only():
    config = _base_config()
    out = space.apply_params(config, {"model.filters": 128, "optimizer.learning_rate": 0.01})
    assert out["model"]["filters"] == 128 and out["optimizer"]["learning_rate"] == 0.01
    assert config["model"]["filters"] == 64  # the input is not modified
    with pytest.raises(KeyError, match=r"model\.filter'"):
        space.apply_params(config, {"model.filter": 1})
    with pytest.raises(KeyError, match="section"):
        space.apply_params(config, {"model": 1})


# --- proposals ----------------------------------------------------------------------------------


def _in_space(params: dict, space_: dict) -> bool:
    def inside(value, spec: dict) -> bool:
        if "choices" in spec:
            return value in spec["choices"]
        lo, hi = spec.get("int") or spec["float"]
        return lo <= value <= hi and (isinstance(value, int) or "float" in spec)

    return set(params) == set(space_) and all(inside(params[k], s) for k, s in space_.items())


def test_round0_is_deterministic_spread_and_seeded():
    hopt = {**PREDECESSOR, "trials_per_round": 6}
    batch = propose.propose_round(hopt, 0, [])
    assert batch == propose.propose_round(hopt, 0, [])
    assert all(_in_space(p, hopt["space"]) for p in batch)
    assert len({json.dumps(p, sort_keys=True) for p in batch}) == 6
    # Halton dimension j (base b_j) puts its first b_j points in distinct 1/b_j strata, so a
    # parameter with at most b_j choices sees every choice once b_j trials have run
    bases = space._primes(len(hopt["space"]))
    for base, (name, spec) in zip(bases, hopt["space"].items(), strict=True):
        if "choices" in spec and len(spec["choices"]) <= base <= len(batch):
            assert {p[name] for p in batch} == set(spec["choices"]), name
    assert batch != propose.propose_round({**hopt, "seed": 12}, 0, [])


def _round0_records(hopt: dict, score) -> list[dict]:
    return [_record(0, t, p, score(p)) for t, p in enumerate(propose.propose_round(hopt, 0, []))]


def test_later_round_is_a_function_of_earlier_results():
    hopt = {**PREDECESSOR, "trials_per_round": 5}
    earlier = _round0_records(hopt, lambda p: p["model.dropout"])
    batch = propose.propose_round(hopt, 1, earlier)
    assert batch == propose.propose_round(hopt, 1, earlier)
    assert all(_in_space(p, hopt["space"]) for p in batch)
    assert len({json.dumps(p, sort_keys=True) for p in batch}) == 5  # no repeats within a round
    other = [{**r, "score": 1.0 - r["score"]} for r in earlier]
    assert propose.propose_round(hopt, 1, other) != batch
    assert propose.propose_round({**hopt, "seed": 12}, 1, earlier) != batch


def test_tpe_rounds_move_towards_good_scores():
    hopt = {"enabled": True, "seed": 3, "trials_per_round": 8, "space": {"x": {"float": [0, 1]}}}
    records = _round0_records(hopt, lambda p: p["x"])
    for round_ in (1, 2):
        batch = propose.propose_round(hopt, round_, records)
        records += [_record(round_, t, p, p["x"]) for t, p in enumerate(batch)]
    last = [r["params"]["x"] for r in records if r["round"] == 2]
    first = [r["params"]["x"] for r in records if r["round"] == 0]
    assert np.median(last) < 0.25 < np.median(first)


def test_failed_trials_count_as_failures_not_scores():
    hopt = {"enabled": True, "seed": 3, "trials_per_round": 6, "space": {"x": {"float": [0, 1]}}}
    # everything below 0.5 failed; the only successes are bad, so TPE must not learn "x < 0.5"
    records = [_record(0, t, {"x": t / 6}, None if t < 3 else t / 6) for t in range(6)]
    batch = propose.propose_round(hopt, 1, records)
    assert all(0 <= p["x"] <= 1 for p in batch) and len({p["x"] for p in batch}) == 6
    all_failed = [{**r, "score": None} for r in records]
    assert len(propose.propose_round(hopt, 1, all_failed)) == 6


def test_records_from_the_same_or_later_round_are_rejected():
    hopt = {**PREDECESSOR, "trials_per_round": 2}
    same_round = _record(1, 0, propose.propose_round(hopt, 0, [])[0], 1.0)
    with pytest.raises(ValueError, match="round1/trial0 is not from a round before 1"):
        propose.propose_round(hopt, 1, [same_round])


def test_propose_command_writes_trial_config(tmp_path):
    base = tmp_path / "base_config.json"
    base.write_text(json.dumps(_base_config({**PREDECESSOR, "samples": 200})))
    earlier = []
    for t in range(5):
        path = tmp_path / f"r0t{t}.json"
        path.write_text(json.dumps(_record(0, t, propose.propose_round(PREDECESSOR, 0, [])[t], t)))
        earlier.append(str(path))
    out = tmp_path / "round1" / "trial3"
    argv = [
        "hyperopt-propose",
        "--base",
        str(base),
        "--round",
        "1",
        "--trial",
        "3",
        "--out-config",
        str(out / "config.json"),
        "--out-params",
        str(out / "params.json"),
        "--earlier",
        *earlier,
    ]
    assert cli.main(argv) == 0
    params = json.loads((out / "params.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert params["id"] == "round1/trial3" and params["n_earlier"] == 5
    records = record.load([Path(p) for p in earlier])
    assert params["params"] == propose.propose_round({**PREDECESSOR, "samples": 200}, 1, records)[3]
    assert config["model"]["filters"] == params["params"]["model.filters"]
    assert config["optimizer"]["learning_rate"] == params["params"]["optimizer.learning_rate"]
    assert config["max_epochs"] == PREDECESSOR["epochs_per_trial"] and config["samples"] == 200
    assert config["hyperopt"]["trial"] == "round1/trial3"
    with pytest.raises(ValueError, match=r"outside 0\.\.4"):
        cli.main([*argv[:6], "5", *argv[7:]])


SCALING = {"name": "demo", "samples_factor": 0.01, "max_epochs": 8, "width_factor": 0.25}


def test_unscale_inverts_the_workflows_scaling():
    unscaled = {k: v for k, v in _base_config().items() if k != "scaling"}
    scaled = apply_scaling(unscaled, SCALING)
    back, block = scaling.unscale(scaled)
    assert block == SCALING
    assert apply_scaling(back, block) == scaled
    assert (back["samples"], back["model"]["filters"], back["max_epochs"]) == (1000, 64, 100)
    plain = apply_scaling(unscaled, {})
    assert scaling.unscale(plain) == (plain, {})


def test_trial_values_are_production_values_scaled_like_the_version():
    scaled = apply_scaling(_base_config({**PREDECESSOR, "samples": 5000}), SCALING)
    params = {"model.filters": 128, "model.dense_units": 512, "model.dropout": 0.25}
    trial_ = propose.trial_config(scaled, scaled["hyperopt"], 0, 0, params)
    assert (trial_["model"]["filters"], trial_["model"]["dense_units"]) == (32, 128)
    assert trial_["model"]["dropout"] == 0.25
    assert trial_["max_epochs"] == 8  # epochs_per_trial 20, capped like the version's epochs
    assert trial_["samples"] == 50  # the search's 5000 samples × 0.01
    assert trial_["scaling"]["unscaled"]["filters"] == 128
    final = apply.final_config(scaled, {**select.summary(_search_records()), "best_params": params})
    assert (final["model"]["filters"], final["max_epochs"], final["samples"]) == (32, 8, 10)
    assert final["scaling"]["unscaled"] == {
        "samples": 1000,
        "max_epochs": 100,
        "filters": 128,
        "dense_units": 512,
    }


def test_search_seed_defaults_to_version_seed():
    hopt = {k: v for k, v in PREDECESSOR.items() if k not in ("seed", "objective")}
    settings = propose.search_settings(_base_config(hopt))
    assert settings["seed"] == 5 and settings["objective"] == "val_loss"
    with pytest.raises(ValueError, match="no enabled hyperopt"):
        propose.search_settings(_base_config({"enabled": False}))


# --- trial records and scores -------------------------------------------------------------------


def test_score_takes_best_finite_epoch_of_the_objective():
    history = pd.DataFrame(
        {"epoch": [0, 1, 2], "val_loss": [1.0, 0.7, float("nan")], "val_q68_deg": [50, 45, 47]}
    )
    ok = {"status": "ok"}
    assert record.score("val_loss", ok, history) == (0.7, None)
    assert record.score("val_q68", ok, history) == (45.0, None)
    assert record.score("val_loss", {"status": "nan"}, history) == (None, "training status 'nan'")
    assert record.score("val_loss", None, history)[0] is None
    assert record.score("val_q68", ok, history[["val_loss"]])[1] == (
        "history.csv has no 'val_q68_deg' column"
    )
    assert record.score("val_loss", ok, history.assign(val_loss=float("nan")))[0] is None


def _fake_training(status: str | None, returncode: int, history: dict | None = None):
    """A stand-in for `edtrain train` that writes what a run with that outcome writes."""

    def run_training(argv: list[str]) -> int:
        out_dir = Path(argv[argv.index("--out-dir") + 1])
        if history is not None:
            pd.DataFrame(history).to_csv(out_dir / "history.csv", index=False)
        if status is not None:
            (out_dir / "training.json").write_text(
                json.dumps({"status": status, "epochs_run": 2, "best_epoch": 1})
            )
        return returncode

    return run_training


def _trial_files(tmp_path: Path, objective: str = "val_loss") -> tuple[Path, Path]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_base_config({**PREDECESSOR, "objective": objective})))
    params = tmp_path / "params.json"
    params.write_text(
        json.dumps({"id": "round0/trial1", "round": 0, "trial": 1, "params": {"model.filters": 32}})
    )
    return config, params


@pytest.mark.parametrize(
    ("status", "returncode", "history", "expected"),
    [
        ("ok", 0, {"val_loss": [0.9, 0.4], "val_q68_deg": [60.0, 40.0]}, ("ok", 0.4)),
        ("nan", 0, {"val_loss": [0.9, float("nan")], "val_q68_deg": [60.0, 180]}, ("nan", None)),
        ("failed", 1, {"val_loss": [float("nan")]}, ("failed", None)),
        (None, 1, None, ("failed", None)),  # crashed before writing anything
        (None, -9, None, ("failed", None)),  # killed
        ("ok", 0, {"loss": [0.5]}, ("failed", None)),  # no val_loss column
    ],
)
def test_trial_records_every_outcome(tmp_path, monkeypatch, status, returncode, history, expected):
    monkeypatch.setattr(trial, "run_training", _fake_training(status, returncode, history))
    config, params = _trial_files(tmp_path)
    result_path = tmp_path / "result.json"
    argv = [
        "hyperopt-trial",
        "--dataset",
        "d",
        "--config",
        str(config),
        "--params",
        str(params),
        "--out-dir",
        str(tmp_path / "out"),
        "--state-dir",
        "s",
        "--result",
        str(result_path),
    ]
    assert cli.main(argv) == 0
    result = json.loads(result_path.read_text())
    assert (result["status"], result["score"]) == expected
    assert result["id"] == "round0/trial1" and result["params"] == {"model.filters": 32}
    assert (result["reason"] is None) == (expected[1] is not None)
    if history is not None:
        assert set(result["history"]) == set(history)
        assert all(v is None or math.isfinite(v) for col in result["history"].values() for v in col)


def test_trial_scores_the_configured_objective(tmp_path, monkeypatch):
    history = {"val_loss": [0.9, 0.4], "val_q68_deg": [40.0, 41.0]}
    monkeypatch.setattr(trial, "run_training", _fake_training("ok", 0, history))
    config, params = _trial_files(tmp_path, objective="val_q68")
    result = trial.run(Path("d"), config, params, tmp_path / "out", tmp_path / "state")
    assert result["objective"] == "val_q68" and result["score"] == 40.0


def test_trial_does_not_score_a_previous_attempt(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "training.json").write_text(json.dumps({"status": "ok"}))
    pd.DataFrame({"val_loss": [0.1]}).to_csv(out / "history.csv", index=False)
    monkeypatch.setattr(trial, "run_training", _fake_training(None, 1))
    config, params = _trial_files(tmp_path)
    result = trial.run(Path("d"), config, params, out, tmp_path / "state")
    assert result["score"] is None and result["training"] is None and result["history"] is None


@pytest.mark.parametrize("status", [exit_status.NO_GPU, exit_status.STATE_BUSY])
def test_not_here_fails_the_job_instead_of_recording_a_trial(tmp_path, monkeypatch, status):
    # no GPU, or the trial's state held by a training still running: a later try may work
    monkeypatch.setattr(trial, "run_training", _fake_training(None, status))
    config, params = _trial_files(tmp_path)
    result_path = tmp_path / "result.json"
    argv = [
        "hyperopt-trial",
        "--dataset",
        "d",
        "--config",
        str(config),
        "--params",
        str(params),
        "--out-dir",
        str(tmp_path / "out"),
        "--state-dir",
        str(tmp_path / "state"),
        "--result",
        str(result_path),
    ]
    assert cli.main(argv) == status
    assert not result_path.exists()


# --- selection and the final config -------------------------------------------------------------


def _search_records() -> list[dict]:
    rows = [
        _record(0, 0, {"model.filters": 32, "model.dropout": 0.2}, 0.8),
        {**_record(0, 1, {"model.filters": 64, "model.dropout": 0.3}, None), "status": "nan"},
        _record(0, 2, {"model.filters": 128, "model.dropout": 0.4}, None),
        _record(1, 0, {"model.filters": 64, "model.dropout": 0.25}, 0.5),
        _record(1, 1, {"model.filters": 32, "model.dropout": 0.45}, 0.5),
    ]
    return rows


def test_best_skips_failed_and_nan_and_breaks_ties_by_order():
    assert select.best(_search_records())["id"] == "round1/trial0"
    with pytest.raises(RuntimeError, match=r"no hyperopt trial produced a score \(round0/trial0"):
        select.best([{**r, "score": None} for r in _search_records()])


def test_select_command_writes_summary_table_and_plots(tmp_path):
    paths = []
    for r in reversed(_search_records()):  # file order does not matter
        paths.append(tmp_path / f"{r['round']}_{r['trial']}.json")
        paths[-1].write_text(json.dumps({**r, "training": {"epochs_run": 1, "best_epoch": 1}}))
    out = tmp_path / "hyperopt"
    base = tmp_path / "base_config.json"
    space_ = {"model.filters": {"choices": [32, 64, 128]}, "model.dropout": {"float": [0.2, 0.5]}}
    base.write_text(json.dumps(_base_config({**PREDECESSOR, "space": space_})))
    argv = [
        "hyperopt-select",
        "--base",
        str(base),
        "--results",
        *map(str, paths),
        "--best",
        str(out / "best.json"),
        "--table",
        str(out / "trials.csv"),
        "--plot-trials",
        str(out / "plots" / "trials.png"),
        "--plot-params",
        str(out / "plots" / "params.png"),
    ]
    assert cli.main(argv) == 0
    best = json.loads((out / "best.json").read_text())
    assert best["best_trial"] == "round1/trial0" and best["best_score"] == 0.5
    assert best["best_params"] == {"model.filters": 64, "model.dropout": 0.25}
    assert (best["n_trials"], best["n_failed"]) == (5, 2)
    assert [t["id"] for t in best["trials"]][:2] == ["round0/trial0", "round0/trial1"]
    table = pd.read_csv(out / "trials.csv", na_filter=False)  # keep the status "nan" a string
    assert list(table["status"]) == ["ok", "nan", "failed", "ok", "ok"]
    assert {"model.filters", "model.dropout", "score", "reason"} <= set(table.columns)
    for name in ("trials.png", "params.png"):
        assert (out / "plots" / name).read_bytes()[:4] == b"\x89PNG"


def test_apply_merges_best_params_and_records_the_search(tmp_path):
    base = _base_config()
    best = select.summary(_search_records())
    final = apply.final_config(base, best)
    assert final["model"]["filters"] == 64 and final["model"]["dropout"] == 0.25
    assert final["max_epochs"] == base["max_epochs"]  # the version's epochs, not the trials'
    assert final["hyperopt"]["ran"] is True
    assert final["hyperopt"]["best_trial"] == "round1/trial0"
    assert final["hyperopt"]["best_params"] == best["best_params"]
    assert final["hyperopt"]["space"] == PREDECESSOR["space"]


# --- the static plan ----------------------------------------------------------------------------


def _workflow_config(hopt: dict) -> dict:
    base = _base_config({"enabled": False})
    defaults = {k: v for k, v in base.items() if k != "name"}
    return {
        "run": {"name": ""},
        "data": {"source": "synthetic"},
        "require_gpu": False,
        "scaling": {},
        "defaults": defaults,
        "versions": {"v1": {}, "vh": {"hyperopt": hopt}},
    }


def test_plan_lists_searching_versions_and_trial_files():
    config = _workflow_config(PREDECESSOR)
    assert plan.versions(config) == ["vh"]
    assert plan.results(config, "vh", before=0) == []
    assert plan.results(config, "vh", before=1) == [
        f"results/vh/hyperopt/round0/trial{t}/result.json" for t in range(5)
    ]
    assert len(plan.results(config, "vh")) == 20
    assert re.fullmatch(plan.version_pattern(config), "vh")
    assert not re.fullmatch(plan.version_pattern(config), "v1")
    assert not re.fullmatch(plan.version_pattern(_workflow_config({"enabled": False})), "vh")


def test_plan_rejects_a_parameter_that_is_not_in_the_config():
    config = _workflow_config({**PREDECESSOR, "space": {"model.filter": {"choices": [1]}}})
    with pytest.raises(KeyError, match=r"model\.filter"):
        plan.versions(config)
