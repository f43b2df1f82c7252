"""What the insights report is written from: every table and finding, computed elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from edtrain.insights.compare import Comparison
from edtrain.insights.datasets import DatasetSummary
from edtrain.insights.findings import SizeGroup
from edtrain.insights.pointing import Pointing
from edtrain.insights.runs import Run
from edtrain.insights.version_table import Bootstrap, StatusRules
from edtrain.stats import PowerLaw


@dataclass(frozen=True)
class Report:
    """Everything the text needs, computed elsewhere."""

    runs: list[Run]
    table: pd.DataFrame
    rules: StatusRules
    boot: Bootstrap
    architecture: list[Comparison]
    sizes: list[SizeGroup]
    fit: PowerLaw | None
    fit_versions: list[str]  # one architecture, loss and frame (findings.scaling_group)
    next_samples: int | None
    loss_groups: list[list[str]]
    pairs: list[Comparison]
    pointing: dict[str, Pointing]
    burst_size: int
    datasets: list[DatasetSummary]

    def run(self, name: str) -> Run:
        return next(r for r in self.runs if r.name == name)

    def pair(self, reference: str, version: str) -> Comparison | None:
        """The controlled comparison of ``version`` against ``reference``, if one was made."""
        return next(
            (p for p in self.pairs if (p.reference, p.version) == (reference, version)), None
        )


def falls_with_data(fit: PowerLaw) -> bool:
    """The fitted exponent is positive by more than two standard deviations."""
    return fit.exponent > 2 * fit.exponent_sigma


def searches_not_run(runs: list[Run]) -> list[str]:
    """Versions whose config asks for a hyperparameter search that did not run."""
    return [
        run.name
        for run in runs
        if (run.config.get("hyperopt") or {}).get("enabled")
        and not (run.config.get("hyperopt") or {}).get("ran")
    ]
