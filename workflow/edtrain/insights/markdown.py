"""Markdown for the insights report: one table helper and the cell formats of its numbers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from edtrain.insights.compare import Comparison
from edtrain.insights.runs import samples_label


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines; a ``|`` inside a cell is escaped."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)]


def deg(value: float | None, decimals: int = 2) -> str:
    return f"{value:.{decimals}f}°" if value is not None and np.isfinite(value) else "—"


def with_interval(value: float, lo: float, hi: float) -> str:
    if not np.isfinite(value):
        return "—"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return deg(value)
    return f"{deg(value)} [{lo:.2f}, {hi:.2f}]"


def percent(value: float | None, decimals: int = 1) -> str:
    return f"{100 * value:.{decimals}f} %" if value is not None and np.isfinite(value) else "—"


def number(value: object, fmt: str = "{:.0f}") -> str:
    """A number in ``fmt``; "NaN" for a non-finite one, "—" for a missing one."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    return fmt.format(value) if np.isfinite(value) else "NaN"


def change_text(gain: float, positive: str) -> str:
    """A relative error reduction as the seed words it ("24% improvement"), or "9% worse"."""
    return f"{100 * gain:.0f}% {positive}" if gain >= 0 else f"{-100 * gain:.0f}% worse"


def verdict(c: Comparison) -> str:
    if c.significant is None:
        return "untested (no predictions)"
    return "significant" if c.significant else "not significant"


def delta_text(c: Comparison) -> str:
    interval = "" if c.interval is None else f" [{c.interval.lo:+.2f}, {c.interval.hi:+.2f}]"
    return f"{c.delta:+.2f}°{interval}"


def version_cell(name: str, row: pd.Series) -> str:
    """The version's name, bold for the best, † for an imported legacy run."""
    label = f"**{name}**" if row["best"] else name
    return f"{label}†" if row["imported"] else label


def samples_cell(row: pd.Series) -> str:
    """Samples used; for a scaled run also the size it stands for, with the scaling's name
    (``scaling.name``: "2k (demo of 200k)", "1k (test of 100k)")."""
    label = samples_label(row["samples"])
    unscaled = row.get("samples_unscaled")
    if unscaled is not None and np.isfinite(unscaled) and unscaled != row["samples"]:
        return f"{label} ({row.get('scaling', 'scaled')} of {samples_label(unscaled)})"
    return label


def reasons_cell(reasons: Counter[str]) -> str:
    return "; ".join(f"{n} × {reason}" for reason, n in reasons.most_common()) or "none"


def short(identity: str | None) -> str:
    """Hashes cut to 12 hex digits (enough to tell sets apart); other labels unchanged."""
    if not identity:
        return "—"
    is_hash = len(identity) > 12 and all(c in "0123456789abcdef" for c in identity)
    return identity[:12] if is_hash else identity
