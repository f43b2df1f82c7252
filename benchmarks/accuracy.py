"""Accuracy benchmark: versions trained side by side on one production, against the oracle.

One synthetic production (supernova spectrum, the 18-column per-plane layout), one dataset,
and each version's recipe trained on the same training samples with the same epoch budget,
then scored on the common test set beside the oracle's figures on exactly those test events
(``edtrain.predict``). Everything the workflow's rules would run, run in-process:

    python benchmarks/accuracy.py --size cpu --workdir /tmp/edacc      # ≤ 1 h on 2 cores
    KERAS_BACKEND=jax python benchmarks/accuracy.py --size gpu --workdir /tmp/edacc  # one GPU

Sizes (``SIZES``): ``cpu`` is 160 files × 500 events, the predecessor's widths × 0.25 (4L×16F,
64 dense units), 12 epochs, v12 and v15; ``gpu`` is 640 files × 500 events (320k events,
simulated on every core), full widths, bfloat16 with 8 steps per call (speed switches only:
docs/training.md), 100k training samples, 6 epochs, v12 and v15 (``benchmarks/gpu/accuracy.sh``
runs it where only JAX is installed). Stages already done in ``--workdir`` (production,
dataset, a version's training) are reused, so an interrupted run goes on where it stopped.
Prints the Markdown table after each version and writes it to ``WORKDIR/accuracy.md``;
benchmarks/results/accuracy.md keeps the measured ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from edtrain import cli, metrics, predict  # noqa: E402
from edtrain.config import apply_scaling, resolve_version, training_identity  # noqa: E402
from edtrain.insights.pointing import burst_pointing  # noqa: E402
from edtrain.simulation import GENERATOR_VERSION, simulate  # noqa: E402


@dataclass(frozen=True)
class Size:
    files: int
    events_per_file: int
    width_factor: float
    epochs: int
    performance: dict[str, Any]
    versions: tuple[str, ...]
    pool: int | None = None  # samples cap (train + validation); None: the whole pool


SIZES = {
    # the predecessor's recipe and v15 (v14 in the face frame): twice the scale for
    # half the epochs, the same compute (~45 min on 2 cores)
    "cpu": Size(160, 500, 0.25, 12, {}, ("v12", "v15")),
    # 4L×64F at batch 32 ran 39 s per epoch of 137k samples on one H200 (JAX, bf16): 100k
    # training samples and 6 epochs keep both versions inside 10 minutes
    "gpu": Size(
        640,
        500,
        1.0,
        6,
        {"precision": "mixed_bfloat16", "steps_per_execution": 8, "workers": 4},
        ("v12", "v15"),
        pool=145_000,
    ),
    "smoke": Size(4, 100, 0.125, 1, {}, ("v12", "v15")),  # checks the script in a minute
}
SEED = 20261204
# the benchmark's energy table: fewer, wider bins than metrics.json's, for a few thousand events
COARSE_ENERGY_BINS_MEV = np.array([2, 5, 10, 15, 20, 30, 70], dtype=float)
TEST_FRACTION = 0.15
# toy bursts as in the insights' defaults (edtrain insights --burst-size, --toys, --seed)
BURST_SIZE, TOYS, BURST_SEED = 239, 2000, 0


def make_production(workdir: Path, size: Size, jobs: int) -> Path:
    """The production (simulated once: production.json marks it complete). One made by
    another generator version is refused: its runs would not be what this code measures."""
    out = workdir / "production"
    summary = out / simulate.SUMMARY
    if summary.exists():
        made_by = json.loads(summary.read_text()).get("generator_version", 0)
        if made_by != GENERATOR_VERSION:
            raise SystemExit(
                f"{out} was made by generator version {made_by}, this code is version "
                f"{GENERATOR_VERSION}: use another --workdir (its runs were trained on it too)"
            )
    else:
        args = ["simulate", "--out", str(out), "--files", str(size.files)]
        args += ["--events-per-file", str(size.events_per_file), "--seed", str(SEED)]
        if cli.main([*args, "--spectrum", "supernova", "--jobs", str(jobs)]) != 0:
            raise SystemExit("simulation failed")
    return out


def make_dataset(workdir: Path, prod: Path, jobs: int) -> Path:
    """The dataset of the per-plane (18-column) folders, in ``jobs`` chunks."""
    out = workdir / "dataset"
    if (out / "manifest.json").exists():
        return out
    inputs = str(prod / simulate.PRODUCTION_DIR / simulate.PLANE_IMAGES_DIR)
    chunks = [workdir / "chunks" / str(i) for i in range(jobs)]
    for i, chunk in enumerate(chunks):
        args = ["chunk", "--inputs", inputs, "--chunk", str(i), "--chunks", str(jobs)]
        if cli.main([*args, "--out", str(chunk)]) != 0:
            raise SystemExit(f"chunk {i} failed")
    args = ["assemble", "--chunks", *map(str, chunks), "--out", str(out)]
    if cli.main([*args, "--test-fraction", str(TEST_FRACTION)]) != 0:
        raise SystemExit("assembly failed")
    return out


def version_config(
    name: str, size: Size, samples: int, gpu: bool, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The version's resolved config at this benchmark's size: every version the same
    training samples (``samples`` caps the pool) and the same epoch budget. ``overrides``
    (dotted key → value, after the size's scaling) make a variant, named ``name`` + tag."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    resolved = resolve_version(config, name)
    scaling = {"name": "accuracy benchmark", "max_epochs": size.epochs}
    if size.width_factor != 1.0:
        scaling["width_factor"] = size.width_factor
    resolved = apply_scaling({k: v for k, v in resolved.items() if k != "scaling"}, scaling)
    resolved["max_epochs"] = size.epochs  # a budget, not a cap: every version runs it all
    resolved["callbacks"]["early_stopping"]["patience"] = size.epochs
    resolved["samples"] = samples
    resolved["require_gpu"] = gpu
    resolved["performance"] = {**resolved["performance"], **size.performance}
    for key, value in (overrides or {}).items():
        *parents, leaf = key.split(".")
        block = resolved
        for part in parents:
            block = block[part]
        if leaf not in block:
            raise SystemExit(f"--set {key}: {name} has no such setting")
        block[leaf] = value
    return resolved


def train(workdir: Path, dataset: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Train one version, or reuse its training if it was made with this config."""
    from edtrain import train  # imports Keras: after the production's worker processes

    out = workdir / "runs" / config["name"]
    record_path, config_path = out / "training.json", out / "config.json"
    if not (
        record_path.exists() and config_path.exists()
        and training_identity(json.loads(config_path.read_text())) == training_identity(config)
    ):  # fmt: skip
        record_path.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
        train.train(dataset, config, out, workdir / "state" / config["name"])
    return json.loads(record_path.read_text())


def score(workdir: Path, dataset: Path, truth: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The version's metrics.json, oracle included (what the workflow's ``predict`` writes);
    its predictions.npz is kept beside the model."""
    out = workdir / "runs" / config["name"]
    predictions = predict.predict_test_set(
        dataset,
        config["samples"],
        config["val_fraction"],
        out / "model.keras",
        frame=config["input"]["frame"],
        loss=config["loss"],
        test_augment=config["input"]["test_augment"],
    )
    predictions["oracle_dir"] = predict.oracle_directions(
        truth, predictions["basename"], predictions["event"], predictions["match_id"]
    )
    np.savez(out / "predictions.npz", **predictions)
    manifest = json.loads((dataset / "manifest.json").read_text())
    scores = predict.score(predictions, config["name"], manifest["test_set_hash"])
    (out / "metrics.json").write_text(json.dumps(scores, indent=2) + "\n")
    scores["coarse_energy"] = {
        name: metrics.by_energy(
            metrics.angular_error_deg(predictions[key], predictions["test_true"]),
            predictions["energy_mev"],
            COARSE_ENERGY_BINS_MEV,
        )
        for name, key in ((config["name"], "test_predictions"), ("oracle", "oracle_dir"))
    }
    scores["pointing"] = dataclasses.asdict(
        burst_pointing(predictions, BURST_SIZE, TOYS, BURST_SEED)
    )
    return scores


def _deg(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}°"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table: each version, then the oracle on the same test events."""
    lines = [
        "| version | frame | parameters | train samples | epochs | train s | samples/s | mean "
        "| median | 68 % "
        "| sign-folded 68 % | head–tail flips | sign x / y / z | 68 % on oracle events "
        "| ÷ oracle |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m, rec, cfg = row["metrics"], row["record"], row["config"]
        rate = rec["n_train"] * rec["epochs_run"] / rec["wall_s"]
        signs = " / ".join(_pct(m[f"sign_agree_{k}"]) for k in "xyz")
        oracle = m["oracle"]
        lines.append(
            f"| {cfg['name']} | {cfg['input']['frame']} | {_count(rec.get('parameters'))} "
            f"| {rec['n_train']:,} "
            f"| {rec['epochs_run']} | {rec['wall_s']:.0f} | {rate:.0f} | {_deg(m['mean_deg'])} "
            f"| {_deg(m['median_deg'])} | {_deg(m['q68_deg'])} | {_deg(m['folded_q68_deg'])} "
            f"| {_pct(m['flip_frac'])} | {signs} | {_deg(oracle['version']['q68_deg'])} "
            f"| {oracle['q68_ratio']:.2f} |"
        )
    oracle = rows[0]["metrics"]["oracle"]
    o = oracle["oracle"]
    signs = " / ".join(_pct(o[f"sign_agree_{k}"]) for k in "xyz")
    lines.append(
        f"| oracle | — | — | — | — | — | — | {_deg(o['mean_deg'])} | {_deg(o['median_deg'])} "
        f"| — | {_deg(o['folded_q68_deg'])} | {_pct(o['flip_frac'])} | {signs} "
        f"| {_deg(o['q68_deg'])} | 1 |"
    )
    n = rows[0]["metrics"]["n"]
    return (
        "\n".join(lines)
        + f"\n\n{n:,} test samples; {oracle['n']:,} of them main electrons with an oracle "
        "direction (the last two columns are on those).\n\n"
        + energy_table(rows)
        + uncertainty_lines(rows)
    )


def uncertainty_lines(rows: list[dict[str, Any]]) -> str:
    """Burst pointing of every version (mean vector, and for versions with a per-event κ the
    maximum likelihood); for those also cone coverage, per energy bin with ≥ 300 events, and
    the 68 % containment of the most confident shares."""
    lines = []
    for row in rows:
        p, u, name = (
            row["metrics"]["pointing"],
            row["metrics"].get("uncertainty"),
            row["config"]["name"],
        )
        ml = p["weighted_q68_deg"]
        lines.append(
            f"- {name}: toy bursts of {p['burst_size']} electrons ({p['toys']} toys, against the "
            f"{p['reference']} direction): 68 % burst error {p['q68_deg']:.2f}° ± "
            f"{p['q68_sigma_deg']:.2f}° (mean vector)"
            + (f", {ml:.2f}° ± {p['weighted_sigma_deg']:.2f}° (likelihood)" if ml else "")
            + f"; perfect electrons {p['floor_q68_deg']:.2f}°"
        )
        if u:
            bins = ", ".join(
                f"{b['e_lo_mev']:g}–{b['e_hi_mev']:g} MeV {_pct(b['cover_68'])}"
                for b in u["by_energy"]
                if b["n"] >= 300
            )
            lines.append(
                f"- {name}: median κ {u['median_kappa']:.1f}; inside the predicted 68 % / 90 % "
                f"cones {_pct(u['cover_68'])} / {_pct(u['cover_90'])} (68 % cone per energy bin "
                f"with ≥ 300 events: {bins}); 68 % of the 80 % / 50 % with the largest κ "
                f"{_deg(u['q68_deg_top80'])} / {_deg(u['q68_deg_top50'])}"
            )
    return "\n" + "\n".join(lines) + "\n"


def energy_table(rows: list[dict[str, Any]]) -> str:
    """68 % containment per cluster-energy bin (metadata column 10, ADC-based) and count."""
    columns = {
        r["config"]["name"]: r["metrics"]["coarse_energy"][r["config"]["name"]] for r in rows
    }
    columns["oracle"] = rows[0]["metrics"]["coarse_energy"]["oracle"]
    lines = [
        "| cluster energy | test events | " + " | ".join(f"{name} 68 %" for name in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for k, first in enumerate(columns["oracle"]):
        cells = [_deg(bins[k]["q68_deg"] if bins[k]["n"] else None) for bins in columns.values()]
        label = f"{first['e_lo_mev']:g}–{first['e_hi_mev']:g} MeV"
        lines.append(f"| {label} | {first['n']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="cpu")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--versions", nargs="+", help="default: the size's (SIZES)")
    parser.add_argument("--samples", type=int, help="pool cap (default: the whole pool)")
    parser.add_argument("--epochs", type=int, help="epoch budget (default: the size's)")
    parser.add_argument("--files", type=int, help="production files (default: the size's)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="simulation processes")
    parser.add_argument("--train-only", action="store_true", help="stop before scoring")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a setting of every version (dotted key, YAML value, after the scaling), "
        "e.g. model.type=resnet; needs --tag",
    )
    parser.add_argument("--tag", help="suffix of the versions' run names, for --set variants")
    args = parser.parse_args()
    size = SIZES[args.size]
    if args.epochs:
        size = dataclasses.replace(size, epochs=args.epochs)
    if args.files:
        size = dataclasses.replace(size, files=args.files)
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    prod = make_production(args.workdir, size, args.jobs)
    dataset = make_dataset(args.workdir, prod, min(args.jobs, 16))
    manifest = json.loads((dataset / "manifest.json").read_text())
    prepared = time.monotonic() - start
    print(f"production and dataset: {manifest['samples']} samples, {prepared:.0f} s", flush=True)
    samples = args.samples or size.pool or manifest["pool_size"]
    truth = prod / simulate.PRODUCTION_DIR / simulate.TRUTH_DIR
    names = args.versions or size.versions
    if bool(args.set) != bool(args.tag):
        parser.error("--set and --tag go together: a variant needs its own run name")
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    configs = [version_config(name, size, samples, args.size == "gpu", overrides) for name in names]
    for config in configs:
        if args.tag:
            config["name"] = f"{config['name']}-{args.tag}"
    rows = []
    for config in configs:  # each version scored as soon as it is trained: a cut run keeps it
        record = train(args.workdir, dataset, config)
        print(f"{config['name']}: {record['wall_s']:.0f} s", flush=True)
        if not args.train_only:
            rows.append(
                {
                    "config": config,
                    "record": record,
                    "metrics": score(args.workdir, dataset, truth, config),
                }
            )
            print(table(rows), flush=True)
    if args.train_only:
        return 0
    took = f"This invocation: {time.monotonic() - start:.0f} s."
    (args.workdir / "accuracy.md").write_text(f"{table(rows)}\n{took}\n")
    print(took)
    return 0


if __name__ == "__main__":
    sys.exit(main())
