"""Alert-feedback report for the terminal (``cds-service report``): the analytics dict as a table,
under the sentence saying what an alert is (alerts, not calls, are counted).

Client-supplied strings (override reason displays and codes) are stripped of control
characters, so a hostile reason cannot send escape sequences to an informaticist's terminal.
"""

from __future__ import annotations

import textwrap
from typing import Any

from cds_service.reporting.html import (
    ALERT_DEFINITION,
    COLUMNS,
    PERIOD_LABELS,
    UNOFFERED,
    format_rate,
    notice_sentence,
    plain,
)


def _table(rows: list[list[str]], indent: str = "") -> list[str]:
    """Columns sized to content; first column left-aligned, the numbers right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(indent + "  ".join(cells).rstrip())
        if n == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return lines


def _count_row(label: str, row: dict[str, Any]) -> list[str]:
    counts = [plain(row.get(key, 0)) for key in ("issued", "accepted", "overridden", "ignored")]
    rates = [format_rate(row.get("acceptance_rate")), format_rate(row.get("override_rate"))]
    return [label, *counts, *rates, plain(row.get("cards_shown", 0))]


def text_report(analytics: dict[str, Any]) -> str:
    """For ``cds-service report``: readable over SSH and pasteable into a ticket, hence plain text."""
    period = plain(analytics.get("period"))
    lines = [f"Alert feedback {plain(analytics.get('from'))} to {plain(analytics.get('to'))}, by {period}", ""]
    lines += [*textwrap.wrap(ALERT_DEFINITION, 96), ""]
    rules = analytics.get("rules") or []
    if not rules:
        lines.append("No alerts were issued in this period.")
    else:
        heads = ["Rule", *COLUMNS]
        rows = [heads] + [_count_row(plain(r.get("rule_id")), r) for r in rules]
        table = _table([*rows, _count_row("Total", analytics.get("totals") or {})])
        lines += [*table[:-1], "-" * len(table[1]), table[-1]]
    unmatched = analytics.get("unmatched_feedback") or 0
    if unmatched:
        lines += ["", f"{plain(unmatched)} feedback item(s) referred to cards the service has no record of."]
    if unoffered := analytics.get("unoffered_suggestions") or 0:
        lines += ["", f"{plain(unoffered)} {UNOFFERED}"]
    if notices := notice_sentence(analytics, plain):
        lines += ["", notices]
    with_reasons = [r for r in rules if r.get("override_reasons")]
    if with_reasons:
        lines += ["", "Override reasons"]
    for rule in with_reasons:
        reasons = rule["override_reasons"]
        width = max(len(plain(reason.get("count"))) for reason in reasons)
        lines.append(plain(rule.get("rule_id")))
        for reason in reasons:
            code = f" ({plain(reason['code'])})" if reason.get("code") else ""
            lines.append(f"    {plain(reason.get('count')).rjust(width)}  {plain(reason.get('display'))}{code}")
    # Per-period blocks only when the range spans several periods; with one they repeat the table above.
    starts = {p.get("start") for r in rules for p in r.get("periods") or []}
    if len(starts) > 1:
        first = PERIOD_LABELS.get(period, "Period")
        lines += ["", f"By {period}"]
        for rule in rules:
            rows = [[first, *COLUMNS]]
            rows += [_count_row(plain(p.get("start")), p) for p in rule.get("periods") or []]
            lines += ["", plain(rule.get("rule_id")), *_table(rows, indent="  ")]
    return "\n".join(lines) + "\n"
