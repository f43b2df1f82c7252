"""Which versions can be compared, and by how much they differ.

A version is described by four primary factors (architecture, training samples, loss, label
frame) and its remaining training settings. A pair that differs in one primary factor isolates that
factor's effect; any other setting that also differs is listed with the comparison so a
confounded difference is never presented as a clean one.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edtrain.config import flatten
from edtrain.insights.runs import Run, samples_label
from edtrain.stats import Interval, bootstrap_difference, mean_stat

PRIMARY = ("architecture", "samples", "loss", "frame")
# Keys that identify or place a run rather than change what it learns.
_NOT_SETTINGS = {"name", "description", "seed", "dataset", "scaling", "require_gpu", "imported"}


def primary_factors(run: Run) -> dict[str, Any]:
    model = run.config.get("model") or {}
    return {
        "architecture": json.dumps(model, sort_keys=True),
        "samples": run.samples,
        "loss": run.loss,
        "frame": run.frame or "detector",  # configs from before label frames: detector
    }


def other_settings(run: Run) -> dict[str, Any]:
    """Training settings besides the primary factors.

    A search that ran already shows in the settings it chose; only the fact is added here.
    """
    config = {
        k: v
        for k, v in run.config.items()
        if k not in _NOT_SETTINGS and k not in {"model", "samples", "loss", "hyperopt"}
    }
    hyperopt = run.config.get("hyperopt") or {}
    if hyperopt.get("ran"):
        config["hyperopt"] = "searched"
    settings = flatten(config)
    settings.pop("input.frame", None)  # a primary factor
    return settings


def describe_factor(factor: str, run: Run) -> str:
    return {
        "architecture": run.architecture,
        "samples": samples_label(run.samples),
        "loss": run.loss,
        "frame": f"{run.frame or 'detector'} frame",
    }[factor]


def describe_change(factor: str, reference: Run, version: Run, arrow: str = " → ") -> str:
    """reference's factor → version's; a network change its architecture label does not name
    (its dropout, a kernel) as the model settings that differ."""
    before, after = describe_factor(factor, reference), describe_factor(factor, version)
    if before == after and factor == "architecture":
        models = [flatten({"model": run.config.get("model") or {}}) for run in (reference, version)]
        return ", ".join(_differences(*models))
    return f"{before}{arrow}{after}"


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [
        f"{k} {before.get(k)}→{after.get(k)}"
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    ]


def aligned_errors(a: Run, b: Run) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """Both versions' errors, row-aligned and flagged paired when scored on the same samples."""
    ea, eb = a.errors, b.errors
    if ea is None or eb is None:
        return None
    if (
        a.test_set != b.test_set
        or "key_hash" not in a.predictions
        or "key_hash" not in b.predictions
    ):
        return ea, eb, False
    ka, kb = a.predictions["key_hash"], b.predictions["key_hash"]
    ia, ib = np.argsort(ka, kind="stable"), np.argsort(kb, kind="stable")
    if ka.shape != kb.shape or not np.array_equal(ka[ia], kb[ib]):
        return ea, eb, False
    return ea[ia], eb[ib], True


def mean_difference(a: Run, b: Run, n_boot: int, seed: int) -> Interval | None:
    """95 % interval of mean(a) − mean(b); paired on a common test set; None without predictions."""
    aligned = aligned_errors(a, b)
    if aligned is None:
        return None
    ea, eb, paired = aligned
    return bootstrap_difference(ea, eb, mean_stat, paired=paired, n_boot=n_boot, seed=seed)


@dataclass(frozen=True)
class Comparison:
    """version − reference in mean error; factor None: no primary factor differs (a repeat, or
    a change of training settings only, listed in ``also``)."""

    version: str
    reference: str
    factor: str | None
    change: str
    delta: float
    interval: Interval | None
    also: list[str] = field(default_factory=list)
    confounded_by: list[str] = field(default_factory=list)

    @property
    def significant(self) -> bool | None:
        return None if self.interval is None else self.interval.excludes_zero


def compare(
    version: Run, reference: Run, means: dict[str, float], n_boot: int, seed: int
) -> Comparison:
    """The difference version − reference with everything else that differs between them."""
    fv, fr = primary_factors(version), primary_factors(reference)
    differing = [f for f in PRIMARY if fv[f] != fr[f]]
    sv, sr = other_settings(version), other_settings(reference)
    also = _differences(sr, sv)
    factor = differing[0] if differing else None
    if factor:
        change = describe_change(factor, reference, version)
    else:  # only the training settings can differ: listed in `also`, none for a true repeat
        change = "training settings" if also else "repeat"
    return Comparison(
        version=version.name,
        reference=reference.name,
        factor=factor,
        change=change,
        delta=means[version.name] - means[reference.name],
        interval=mean_difference(version, reference, n_boot, seed),
        also=also,
        confounded_by=[f"{f} {describe_change(f, reference, version, '→')}" for f in differing[1:]],
    )


def controlled_pairs(
    runs: list[Run], means: dict[str, float], n_boot: int, seed: int
) -> list[Comparison]:
    """Every scored pair differing in at most one primary factor (later version vs earlier)."""
    scored = [r for r in runs if np.isfinite(means.get(r.name, np.nan))]
    out = []
    for ref, ver in itertools.combinations(scored, 2):
        fr, fv = primary_factors(ref), primary_factors(ver)
        if sum(fr[f] != fv[f] for f in PRIMARY) <= 1:
            out.append(compare(ver, ref, means, n_boot, seed))
    return out
