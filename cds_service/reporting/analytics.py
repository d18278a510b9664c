"""What clinicians did with the alerts: per rule and per period, from the stored cards and feedback.

Counted per *alert*, not per call: an alert is one rule for one patient's draft order (the same
draft id) on one day at the site (``CDS_TIMEZONE``: the rules' days, and the range's), however
often the client re-fired the hook or the clinician edited the draft (``reporting.queries``). An
alert is *accepted* when any feedback accepted one of its cards, *overridden* when feedback
overrode one and none accepted it, and *ignored* otherwise (CDS Hooks clients never report
ignored cards). The acceptance and override rates are of alerts issued. *Cards shown* is the
second figure: every card sent, re-fires included. Alerts are counted on the day they were
issued, so a period's figures settle as late feedback arrives.

An item accepting only suggestions its card did not offer accepted nothing (``storage.offered``):
refused at arrival, it is stored unchecked when it reaches the database before its card's record,
and counted as it would have been refused, as no outcome of its alert; ``unoffered_suggestions``
says how many there were, as ``unmatched_feedback`` says how many items named no card on record
for their sender (none, or another client's: feedback is about a card only from the client it
was issued to, ``schema.from_its_client``), so that a client's bug is seen rather than hidden.
Feedback on the service's own notices (``pipeline.notices``: a clinician dismissing "history read in
part") is neither: ``notice_feedback`` counts it per notice code, apart from every rule's figures.

The HTTP routes (``/analytics``, ``/analytics/report``) and ``cds-service report`` all call
``analytics``; ``cds_service.reporting.html`` renders the result for people.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from cds_service.clock import EARLIEST, LATEST, calendar_day
from cds_service.content.cards import OVERRIDE_REASON_SYSTEM, SNOOZE_REASON
from cds_service.errors import InvalidRequest, shown
from cds_service.pipeline.knowledge import Knowledge
from cds_service.reporting import queries
from cds_service.security.clients import TrustedClient
from cds_service.storage.records import Owner
from cds_service.storage.store import Store

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
DEFAULT_DAYS = 30
# A year and a bit: the retention default, so every stored card can be reported on.
MAX_DAYS = 400
NO_REASON = "No reason given"


@dataclass(frozen=True)
class Query:
    start: date
    end: date  # inclusive
    period: Period
    # Whose cards: a client's own (issue 16 #7), or every client's (None: an operator, the CLI,
    # or a service without authentication, which knows no client).
    scope: Owner | None = None


def scope_of(caller: TrustedClient | None) -> Owner | None:
    """What a caller may read: its own issuer's and tenant's cards, unless it is an operator."""
    return None if caller is None or caller.operator else Owner.of(caller)


def parse_query(
    from_: str | None, to: str | None, period: str | None, today: date, scope: Owner | None = None
) -> Query:
    """The date range and period of a request; a 400 naming the parameter when one is unusable."""

    def day(name: str, value: str | None, default: date) -> date:
        if value is None or value == "":
            return default
        try:
            found = calendar_day(value)
        except ValueError:
            raise InvalidRequest(f"{name}: {shown(value)} is not a date (YYYY-MM-DD)", fields=[name]) from None
        if not EARLIEST <= found <= LATEST:
            raise InvalidRequest(f"{name}: {found} is out of range ({EARLIEST} to {LATEST})", fields=[name])
        return found

    end = day("to", to, today)
    start = day("from", from_, max(EARLIEST, end - timedelta(days=DEFAULT_DAYS - 1)))
    if start > end:
        raise InvalidRequest(f"from: {start} is after to ({end})", fields=["from"])
    if (end - start).days >= MAX_DAYS:
        raise InvalidRequest(f"from: the range is {(end - start).days + 1} days; at most {MAX_DAYS}", fields=["from"])
    chosen = period or "week"
    if chosen not in PERIODS:
        raise InvalidRequest(f"period: {shown(chosen)} is not one of {', '.join(PERIODS)}", fields=["period"])
    return Query(start, end, chosen, scope)


def period_start(day: date, period: Period) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if period == "month":
        return day.replace(day=1)
    return day


# What the figures count, stated in every answer so that no reader takes alerts for calls.
COUNTS = (
    "alerts: one rule for one patient's draft order (same draft id) on one day at the site, however often "
    "the hook re-fired or the draft was edited; issued, accepted, overridden, ignored and the rates "
    "are per alert; cards_shown counts every card sent"
)


def _counts(issued: int, accepted: int, overridden: int, cards: int) -> dict[str, Any]:
    return {
        "issued": issued,
        "accepted": accepted,
        "overridden": overridden,
        "ignored": issued - accepted - overridden,
        "acceptance_rate": round(accepted / issued, 4) if issued else None,
        "override_rate": round(overridden / issued, 4) if issued else None,
        "cards_shown": cards,
    }


def analytics(store: Store, knowledge: Knowledge, query: Query) -> dict[str, Any]:
    # An alert is one draft: what an older release stored as sent is keyed first (``storage.keyed``;
    # nothing to do once an upgrade is done), or its cards and this release's would count as two.
    store.key_old_records()
    catalog = knowledge.catalog
    start = datetime.combine(query.start, time.min, store.zone).astimezone(UTC)
    end = datetime.combine(query.end + timedelta(days=1), time.min, store.zone).astimezone(UTC)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    periods: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))
    said = queries.alert_feedback(
        store.engine,
        start,
        end,
        query.scope,
        store.zone,
        lambda rule_id, code: bool(_offered_display(knowledge, rule_id, code)),
    )
    for row in queries.outcomes(store.engine, start, end, query.scope, store.zone, said):
        for bucket in (totals[row.rule_id], periods[row.rule_id][period_start(row.day, query.period)]):
            bucket[0] += row.alerts
            bucket[1] += row.accepted
            bucket[2] += row.overridden
            bucket[3] += row.cards
    reasons: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for reason in queries.override_reasons(said):
        reasons[reason.rule_id].append(
            {
                "system": reason.system,
                "code": reason.code,
                "display": _reason_display(knowledge, reason),
                "count": reason.alerts,
            }
        )
    rules = [
        {
            "rule_id": rule_id,
            "title": catalog.texts[rule_id].title if rule_id in catalog.texts else rule_id,
            **_counts(*counts),
            "override_reasons": sorted(reasons[rule_id], key=lambda r: (-r["count"], r["display"])),
            "periods": [
                {"start": begins.isoformat(), **_counts(*figures)}
                for begins, figures in sorted(periods[rule_id].items())
            ],
        }
        for rule_id, counts in totals.items()
    ]
    rules.sort(key=lambda r: (-r["issued"], r["rule_id"]))
    return {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "period": query.period,
        "counts": COUNTS,
        "scope": _scope(query.scope),
        "totals": _counts(*(sum(c[i] for c in totals.values()) for i in range(4))),
        "unmatched_feedback": queries.unmatched_feedback(store.engine, start, end, query.scope),
        "notice_feedback": queries.notice_feedback(store.engine, start, end, query.scope),
        "unoffered_suggestions": said.unoffered,
        "rules": rules,
    }


def _scope(scope: Owner | None) -> dict[str, Any]:
    """Whose cards the figures count, stated in the answer: all clients', or one client's."""
    if scope is None:
        return {"clients": "all"}
    return {"clients": "one", "issuer": scope.issuer, **({"tenant": scope.tenant} if scope.tenant else {})}


def _reason_display(knowledge: Knowledge, reason: queries.ReasonCount) -> str:
    """The card text's name for the service's own reasons; any other reason by its code. Never the
    display a client sent: free text, which may name the patient, and the one kept stood for
    every client's."""
    if not reason.offered:
        return f"{reason.code} (not offered: critical cards are never snoozed)"
    if reason.system in (OVERRIDE_REASON_SYSTEM, None) and reason.code:
        offered = _offered_display(knowledge, reason.rule_id, reason.code)
        if offered:
            return offered
    return reason.code or NO_REASON


def _offered_display(knowledge: Knowledge, rule_id: str, code: str | None) -> str | None:
    """Clients send a reason's code without its display (the sandbox does): name it as the card did.
    A snooze of a rule that no longer snoozes is named by its code: no period is offered now."""
    if code == SNOOZE_REASON:
        days = knowledge.snooze_days.get(rule_id)
        return knowledge.catalog.snooze_reason(days) if days else None
    text = knowledge.catalog.texts.get(rule_id)
    return next((r["display"] for r in text.override_reasons if r["code"] == code), None) if text else None
