"""The rule catalog as `cds-service rules` prints it and the README shows it: one row per rule
(its indicators, title, evidence, hooks, switch, snooze and thresholds), read from the knowledge
in force, so the table cannot drift from the rules configured."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic.fields import FieldInfo

from cds_service.content.cards import INDICATORS, QUIETABLE
from cds_service.pipeline.knowledge import Knowledge

Format = Literal["table", "markdown", "json"]
COLUMNS = ["id", "indicator", "summary", "evidence", "hooks", "enabled", "snooze", "thresholds"]


def catalog(knowledge: Knowledge) -> list[dict[str, Any]]:
    """The rule catalog as data: one row per rule."""
    rows = []
    for rule in knowledge.all_rules:
        text = knowledge.catalog.texts[rule.id]
        config = knowledge.configs[rule.id].model_dump()
        config.pop("snooze_days")
        indicators = sorted({v.indicator for v in text.variants.values()}, key=INDICATORS.index)
        rows.append(
            {
                "id": rule.id,
                "indicators": indicators,
                "summary": text.title,
                "evidence": [e.key for e in text.evidence],
                "hooks": sorted(rule.hooks),
                "enabled": config.pop("enabled"),
                # Critical cards are never snoozed: a rule with only critical cards has no snooze.
                "snooze_days": None if QUIETABLE.isdisjoint(indicators) else knowledge.snooze_days[rule.id],
                "thresholds": config,
                # The values start-up accepts, [lowest, highest] (None: unbounded), for a site tuning them.
                "ranges": {name: _range(type(knowledge.configs[rule.id]).model_fields[name]) for name in config},
            }
        )
    return rows


def _range(field: FieldInfo) -> list[Any]:
    """A threshold's bounds as its ``Field(ge=…, le=…)`` sets them (pydantic keeps them as metadata)."""
    low = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in field.metadata if hasattr(m, "le")), None)
    return [low, high]


def rendered(rows: list[dict[str, Any]], form: Format) -> str:
    """The rows as JSON, as a Markdown table (the README's), or as a plain table for a terminal."""
    if form == "json":
        return json.dumps(rows, indent=2)
    lines = [COLUMNS, *map(_cells, rows)]
    if form == "markdown":
        return "\n".join(
            ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
            + ["| " + " | ".join(line) + " |" for line in lines[1:]]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _cells(row: dict[str, Any]) -> list[str]:
    return [
        row["id"],
        "/".join(row["indicators"]),
        row["summary"],
        ", ".join(row["evidence"]),
        ", ".join(row["hooks"]),
        "yes" if row["enabled"] else "no",
        "-" if row["snooze_days"] is None else "never" if not row["snooze_days"] else f"{row['snooze_days']} days",
        ", ".join(f"{k}={v}" for k, v in row["thresholds"].items()) or "-",
    ]
