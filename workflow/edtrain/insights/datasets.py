"""What each version's dataset was made of, for the report: the manifest's counts and skips,
and how many test samples carry a neutrino direction (14-column files have none)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from edtrain.dataset.manifest import read_json, reason_kind, selection_chain
from edtrain.dataset.reader import MANIFEST, SAMPLES
from edtrain.insights.runs import Run


@dataclass(frozen=True)
class DatasetSummary:
    path: str
    versions: list[str]
    input_files: int
    metadata_widths: list[int]
    chain: list[tuple[str, int]]  # (selection step, candidates left), files → samples
    samples: int
    test_size: int
    test_with_nu: int | None  # None: the sample table could not be read
    skipped_files: Counter[str]  # reason → files
    skipped_rows: Counter[str]  # reason → rows


def test_with_neutrino(folder: Path) -> int | None:
    """Test samples whose metadata carry a neutrino direction (the table's nu_dir is NaN
    where they do not: ``metrics.unit`` with ``zero=nan``)."""
    path = folder / SAMPLES
    if not path.is_file():
        return None
    table = pd.read_parquet(path, columns=["split", "nu_dir_x"])
    return int((np.isfinite(table["nu_dir_x"]) & (table["split"] == "test")).sum())


def summarize(folder: Path, versions: list[str]) -> DatasetSummary | None:
    """The dataset folder's manifest, summarized; None where it has none (imported runs)."""
    if not (folder / MANIFEST).is_file():
        return None
    m = read_json(str(folder / MANIFEST))
    return DatasetSummary(
        path=str(folder),
        versions=versions,
        input_files=len(m["inputs"]),
        metadata_widths=sorted({i["metadata_width"] for i in m["inputs"]}),
        chain=selection_chain(m["counts"], m["cuts"]),
        samples=int(m["samples"]),
        test_size=int(m["test_size"]),
        test_with_nu=test_with_neutrino(folder),
        skipped_files=Counter(reason_kind(s["reason"]) for s in m["skipped_files"]),
        skipped_rows=Counter(reason_kind(s["reason"]) for s in m["skipped_rows"]),
    )


def dataset_summaries(runs: list[Run]) -> list[DatasetSummary]:
    """One summary per dataset the versions trained on, in report order."""
    users: dict[str, list[str]] = {}
    for run in runs:
        if run.config.get("dataset"):
            users.setdefault(str(run.config["dataset"]), []).append(run.name)
    found = (summarize(Path(path), names) for path, names in users.items())
    return [s for s in found if s is not None]
