"""insights.md: the seed report's sections in order, with the Key Insights numbered."""

from __future__ import annotations

import datetime as dt

from edtrain.insights import closing_sections, key_insights, summary_sections
from edtrain.insights.report import Report


def render(r: Report) -> str:
    """The whole insights.md."""
    names = [run.name for run in r.runs]
    title = f"{names[0]}-{names[-1]}" if len(names) > 1 else names[0]
    header = [
        f"# Electron Direction Training Insights ({title})",
        "",
        f"**Date**: {dt.datetime.now(dt.UTC):%B %d, %Y}  ",
        f"**Analysis**: {len(names)} version{'s' if len(names) > 1 else ''}: {', '.join(names)}",
        "",
    ]
    insights = [
        key_insights.architecture_section(r),
        key_insights.scaling_section(r),
        key_insights.loss_section(r),
        key_insights.stability_section(r),
        key_insights.hyperopt_section(r),
        key_insights.pairs_section(r),
    ]
    numbered = [
        [f"### {i}. {lines[0].removeprefix('### ')}", *lines[1:]]
        for i, lines in enumerate(insights, 1)
    ]
    sections = [
        summary_sections.performance_summary(r),
        summary_sections.diagnostics_section(r),
        *(
            [summary_sections.uncertainty_section(r)]
            if any(run.uncertainty for run in r.runs)
            else []
        ),
        ["## Key Insights"],
        *numbered,
        closing_sections.pointing_section(r),
        closing_sections.recommendations(r),
        closing_sections.datasets_section(r),
        closing_sections.technical_notes(r),
    ]
    body: list[str] = []
    for section in sections:
        if section[0].startswith("## ") and body:
            body += ["---", ""]
        body += [*section, ""]
    return "\n".join(header + body).rstrip() + "\n"
