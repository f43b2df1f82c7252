"""What a dataset was made from and what was left out, as JSON (docs/dataset.md).

A chunk writes its part (``chunk.json``); assembly merges the parts into ``manifest.json``. Every
list is sorted and nothing depends on the number of chunks, so the same production gives the same
manifest however it was split.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

# a chunk directory (edtrain.dataset.chunk): named here so that ``assemble`` need not import
# the chunk job's readers
CHUNK_FORMAT = "edtrain-chunk-4"
CHUNK_IMAGES = "images.npy"
CHUNK_TABLE = "samples.npz"
CHUNK_MANIFEST = "chunk.json"  # written last: the chunk is complete
SKIP_SUMMARY_LINES = 20


@dataclass(frozen=True)
class Skip:
    """A file (or basename) left out, and why."""

    path: str
    reason: str
    basename: str


@dataclass(frozen=True)
class SkipRow:
    """One candidate sample left out, and why."""

    path: str
    basename: str
    event: int
    match_id: int
    reason: str


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write compact JSON via a temporary name, so a reader never sees a half-written file.

    ``json.dumps`` without indent runs the C encoder; ``json.dump`` and pretty-printing run the
    Python one, which takes seconds for thousands of input records (``python -m json.tool``
    shows the file indented).
    """
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(data, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_json(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def skip_records(skips: list[Skip]) -> list[dict[str, Any]]:
    return sorted((asdict(s) for s in skips), key=lambda d: (d["path"], d["reason"]))


def row_records(rows: list[SkipRow]) -> list[dict[str, Any]]:
    return sorted((asdict(r) for r in rows), key=lambda d: (d["path"], d["event"], d["match_id"]))


def add_counts(parts: list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    return dict(sorted(total.items()))


def selection_chain(counts: dict[str, int], cuts: dict[str, Any]) -> list[tuple[str, int]]:
    """(step, candidates left) from the files to the samples, in the order the selection
    applies; a cut that was off has no step."""
    steps = [
        ("basenames", "basenames"),
        ("x_rows", "X rows"),
        ("main_track", "main-track"),
        ("after_marley", "MARLEY"),
        ("after_es", "ES"),
        ("after_energy_min", f"with energy ≥ {cuts.get('energy_min')} MeV"),
        ("after_energy_max", f"with energy < {cuts.get('energy_max')} MeV"),
        ("matched", "matched in U and V"),
        ("samples", "with readable images"),
    ]
    # a step that no basename reached counts 0
    present = [(k, label) for k, label in steps if k in counts or not k.startswith("after_")]
    return [(label, int(counts.get(key, 0))) for key, label in present]


def summarize_skips(files: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """A short human summary: counts per reason, then the first few files and rows."""
    if not files and not rows:
        return "no files or rows skipped"
    lines = [f"skipped {len(files)} file(s) and {len(rows)} row(s)"]
    by_reason = Counter(reason_kind(r["reason"]) for r in [*files, *rows])
    lines += [f"  {n:6d} × {reason}" for reason, n in by_reason.most_common()]
    shown = [*files, *rows][:SKIP_SUMMARY_LINES]
    lines += [f"  {_describe(r)}" for r in shown]
    if len(files) + len(rows) > len(shown):
        lines.append(f"  … and {len(files) + len(rows) - len(shown)} more (see the manifest)")
    return "\n".join(lines)


def report_skips(files: list[dict[str, Any]], rows: list[dict[str, Any]], strict: bool) -> int:
    """Print the summary on stderr; the exit status is 1 when strict and anything was skipped."""
    print(summarize_skips(files, rows), file=sys.stderr)
    if strict and (files or rows):
        print("--strict: refusing to build a dataset with skipped inputs", file=sys.stderr)
        return 1
    return 0


def reason_kind(reason: str) -> str:
    """The reason without its file-specific details, for counting."""
    return reason.split(" (")[0].split(",")[0]


def _describe(record: dict[str, Any]) -> str:
    if "event" in record:
        where = f"{record['path']} event {record['event']} match_id {record['match_id']}"
        return f"{where}: {record['reason']}"
    return f"{record['path']}: {record['reason']}"
