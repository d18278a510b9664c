"""Alert-feedback report for informaticists' browsers (``/analytics/report``).

It counts alerts, not calls (``reporting.analytics``), and says so on the page: the first thing
a reader sees is what an alert is and how many cards the alerts took.

It takes the analytics dict as is (JSON-ready), so the page, the terminal report and the JSON
endpoint all show the same numbers. Rule titles, reason displays and codes partly come from
calling clients, so every string from the dict is escaped: a hostile override reason must not
run script in an informaticist's browser.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from html import escape
from typing import Any

# Okabe–Ito blue and orange plus a light grey: told apart with any common colour-vision deficiency
# and in greyscale (dark, medium, light). The legend and the printed counts carry the meaning anyway.
_SEGMENTS = (
    ("accepted", "Accepted", "#0072b2", "#ffffff"),
    ("overridden", "Overridden", "#e69f00", "#000000"),
    ("ignored", "Ignored", "#d4d4d4", "#000000"),
)
_BAR_WIDTH = 480
_BAR_HEIGHT = 22
PERIOD_LABELS = {"day": "Day", "week": "Week of", "month": "Month of"}
# The count columns, after the row's own heading: the same in the page and the terminal.
COLUMNS = ["Alerts", "Accepted", "Overridden", "Ignored", "Accepted %", "Overridden %", "Cards shown"]
# After their count, on the page and in the table (``storage.offered``: the items a client's bug
# sent, which the figures above leave out, said apart so that the bug is seen).
UNOFFERED = "feedback item(s) accepted only suggestions their card did not offer: not counted as accepted."
NOTICE_FEEDBACK = "feedback item(s) were about the service's own notices, not any rule's alert"
ALERT_DEFINITION = (
    "Counted per alert, not per call: an alert is one rule for one patient's draft order (the same "
    "draft id) on one day where the site is (CDS_TIMEZONE), however often the hook re-fired or the draft "
    "was edited. Accepted, overridden, ignored (no feedback: clients never report ignored cards) and the "
    "rates are of alerts; cards shown counts every card sent, re-fires included."
)

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 60rem; padding: 0 1rem; color: #111; }
form { display: flex; flex-wrap: wrap; gap: .75rem 1.25rem; align-items: end; margin-bottom: 1rem; }
label { display: flex; flex-direction: column; font-size: .85rem; }
section { border-top: 1px solid #ccc; margin-top: 1.5rem; }
h2 { font-size: 1.1rem; margin-bottom: .4rem; }
h2 code { font-weight: normal; font-size: .85rem; color: #444; margin-left: .4rem; }
svg { max-width: 100%; height: auto; display: block; }
.legend { list-style: none; padding: 0; margin: .3rem 0 .8rem; display: flex; flex-wrap: wrap; gap: 1rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -.1rem;
  border: 1px solid #555; }
table { border-collapse: collapse; margin: .3rem 0 .8rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .2rem; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #e3e3e3; text-align: left; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
""" + "".join(f".swatch.{key} {{ background: {fill}; }}\n" for key, _, fill, _ in _SEGMENTS)
# What the page may load and do, sent with it (``routes.analytics``): its one style sheet (by its
# hash: no style attribute, no other sheet), no script, no image, no frame, forms to itself only;
# no page may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()}'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def format_rate(rate: float | None) -> str:
    """One rendering for HTML and terminal, so "no cards, no rate" never reads as 0%."""
    return "—" if rate is None else f"{rate:.0%}"


def _e(value: Any) -> str:
    """Everything from the dict goes through here: titles and reasons are client-supplied."""
    # _plain first: stray control characters are harmless in HTML but render as junk glyphs.
    return escape(plain(value), quote=True)


def plain(value: Any) -> str:
    """Control characters in client text could move the cursor or recolour an informaticist's terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in ("" if value is None else str(value)))


def notice_sentence(analytics: dict[str, Any], say: Callable[[Any], str]) -> str:
    """Feedback on the service's own notices, per notice code, said apart from the unmatched
    (nothing is wrong: a clinician dismissed a notice); ``say``: ``plain`` or ``_e``."""
    counts = analytics.get("notice_feedback") or {}
    if not isinstance(counts, dict) or not counts:
        return ""
    each = ", ".join(f"{say(code)} {say(count)}" for code, count in counts.items())
    return f"{say(sum(counts.values()))} {say(NOTICE_FEEDBACK)} ({each})."


def _bar(rule: dict[str, Any]) -> str:
    """A 100 % stacked bar per rule rather than one scale shared by all rules.

    The question the bar answers is "how do clinicians respond to this rule's cards", i.e.
    shares; with a shared scale, a low-volume rule shrinks to a sliver whose split cannot be
    read. Volume is still visible: rules are ordered by issued and the counts are printed.
    """
    counts = [int(rule.get(key) or 0) for key, *_ in _SEGMENTS]
    # Scale to the segment sum as well, so inconsistent data can never overflow the bar.
    total = max(int(rule.get("issued") or 0), sum(counts))
    label = ", ".join(f"{name} {n}" for (_, name, *_), n in zip(_SEGMENTS, counts, strict=True))
    parts = [
        f'<svg role="img" aria-label="{_e(f"{label} of {total} alerts")}" width="{_BAR_WIDTH}" '
        f'height="{_BAR_HEIGHT}" viewBox="0 0 {_BAR_WIDTH} {_BAR_HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect width="{_BAR_WIDTH}" height="{_BAR_HEIGHT}" fill="#fff" stroke="#888"/>',
    ]
    x = 0.0
    for (_, name, fill, ink), n in zip(_SEGMENTS, counts, strict=True):
        if not n or not total:
            continue
        width = _BAR_WIDTH * n / total
        parts.append(
            f'<g><title>{name}: {n}</title><rect x="{x:.2f}" width="{width:.2f}" height="{_BAR_HEIGHT}" '
            f'fill="{fill}" stroke="#fff"/>'
        )
        if width >= 28:  # the count inside the segment, where it fits: a cue that needs no colour
            parts.append(
                f'<text x="{x + width / 2:.2f}" y="{_BAR_HEIGHT / 2}" fill="{ink}" font-size="12" '
                f'text-anchor="middle" dominant-baseline="central">{n}</text>'
            )
        parts.append("</g>")
        x += width
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch {key}"></span>{name}: {n}</li>'
        for (key, name, _, _), n in zip(_SEGMENTS, counts, strict=True)
    )
    return "".join(parts) + f'<ul class="legend">{legend}</ul>'


def _counts_cells(row: dict[str, Any]) -> str:
    cells = [_e(row.get(key)) for key in ("issued", "accepted", "overridden", "ignored")]
    cells += [_e(format_rate(row.get("acceptance_rate"))), _e(format_rate(row.get("override_rate")))]
    cells.append(_e(row.get("cards_shown")))
    return "".join(f'<td class="num">{cell}</td>' for cell in cells)


def _head_row(heads: list[str]) -> str:
    """The first column names the row; the others hold numbers, so their headings align right too."""
    num = ' class="num"'
    cells = "".join(f'<th scope="col"{num if i else ""}>{_e(h)}</th>' for i, h in enumerate(heads))
    return f"<tr>{cells}</tr>"


def _rule_section(rule: dict[str, Any], period: str) -> str:
    title = rule.get("title") or rule.get("rule_id")
    html = [f"<section><h2>{_e(title)} <code>{_e(rule.get('rule_id'))}</code></h2>", _bar(rule)]
    reasons = rule.get("override_reasons") or []
    if reasons:
        html.append(f"<table><caption>Override reasons</caption>{_head_row(['Reason', 'Count'])}")
        for reason in reasons:
            code = reason.get("code")
            system = reason.get("system")
            code_title = f' title="{_e(system)}"' if system else ""  # the code system, on hover
            code_html = f" <code{code_title}>{_e(code)}</code>" if code else ""
            count = _e(reason.get("count"))
            html.append(f'<tr><td>{_e(reason.get("display"))}{code_html}</td><td class="num">{count}</td></tr>')
        html.append("</table>")
    else:
        html.append("<p>No overrides.</p>")
    heads = [PERIOD_LABELS.get(period, "Period"), *COLUMNS]
    html.append(f"<table><caption>By period</caption>{_head_row(heads)}")
    for row in rule.get("periods") or []:
        html.append(f'<tr><th scope="row">{_e(row.get("start"))}</th>{_counts_cells(row)}</tr>')
    html.append("</table></section>")
    return "\n".join(html)


def html_report(analytics: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external resources, no style attributes) so it works
    behind strict proxies and under ``CONTENT_SECURITY_POLICY``."""
    period = analytics.get("period")
    totals = analytics.get("totals") or {}
    options = "".join(
        f'<option value="{p}"{" selected" if p == period else ""}>{p.capitalize()}</option>' for p in PERIOD_LABELS
    )
    summary = (
        f"{_e(totals.get('issued', 0))} alerts: {_e(totals.get('accepted', 0))} accepted, "
        f"{_e(totals.get('overridden', 0))} overridden, {_e(totals.get('ignored', 0))} ignored (no feedback). "
        f"Acceptance rate: {_e(format_rate(totals.get('acceptance_rate')))}; "
        f"override rate: {_e(format_rate(totals.get('override_rate')))}. "
        f"Cards shown for them, re-fires included: {_e(totals.get('cards_shown', 0))}."
    )
    unmatched = analytics.get("unmatched_feedback") or 0
    if unmatched:
        summary += f" {_e(unmatched)} feedback item(s) referred to cards the service has no record of."
    if unoffered := analytics.get("unoffered_suggestions") or 0:
        summary += f" {_e(unoffered)} {_e(UNOFFERED)}"
    if notices := notice_sentence(analytics, _e):
        summary += f" {notices}"
    rules = analytics.get("rules") or []
    body = "\n".join(_rule_section(r, str(period)) for r in rules) or "<p>No alerts were issued in this period.</p>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Alert feedback</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Alert feedback</h1>
<form method="get" action="">
<label for="from">From <input type="date" id="from" name="from" value="{_e(analytics.get("from"))}"></label>
<label for="to">To <input type="date" id="to" name="to" value="{_e(analytics.get("to"))}"></label>
<label for="period">Period <select id="period" name="period">{options}</select></label>
<button type="submit">Show</button>
</form>
<p>{ALERT_DEFINITION}</p>
<p>{summary}</p>
{body}
</body>
</html>
"""
