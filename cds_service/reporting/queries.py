"""The analytics queries: alerts per day and rule, with what became of them, and the cards shown.

An *alert* is one rule for one patient's draft order on one day at the site (``CDS_TIMEZONE``,
as the rules count days), at one client (issuer and
tenant: patient ids are an EHR's own): every card of that rule for the same draft id
(``issued_cards.draft``) that day, however often the client re-fired the hook (the sandbox
re-fires on every edit), whichever hook showed it, and however the clinician edited the draft.
Cards from before schema version 5 have their draft filled in from their order key; a card
with none is an alert of its own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, distinct, func, select, true
from sqlalchemy.engine import Engine

from cds_service.content.cards import OVERRIDE_REASON_SYSTEM, SNOOZE_REASON
from cds_service.storage.records import Owner
from cds_service.storage.schema import feedback, issued_cards
from cds_service.storage.site_day import site_day


@dataclass(frozen=True)
class AlertOutcomes:
    """Alerts of one rule on one day, by what became of them, and the cards they took."""

    day: date
    rule_id: str
    alerts: int
    accepted: int
    overridden: int
    cards: int


@dataclass(frozen=True)
class ReasonCount:
    """Alerts of a rule overridden with one reason (or none: system and code are None)."""

    rule_id: str
    system: str | None
    code: str | None
    alerts: int
    # False: "don't show again" given for a critical card, which never offers it (a client's
    # bug): named as what it is, not as the snooze the rule's other cards offer.
    offered: bool = True


def _day(value: Any) -> date:
    """SQLite gives the day as text, PostgreSQL as a date."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def owned_by(table: Table, scope: Owner | None) -> ColumnElement[bool]:
    """Rows of ``scope``'s client (its issuer and tenant); every row when ``scope`` is None (an
    operator, or a service without authentication). Rows of no client (issuer null: before
    schema version 6, or stored with authentication off) are never a client's own."""
    if scope is None:
        return true()
    return and_(table.c.issuer == scope.issuer, table.c.tenant.is_not_distinct_from(scope.tenant))


def _per_alert(start: datetime, end: datetime, scope: Owner | None, zone: tzinfo) -> Any:
    """Per alert with a card issued in [start, end): its cards, and whether any was accepted or
    (none accepted) overridden. Accepted wins: two clinicians, or a change of mind."""
    day = site_day(issued_cards.c.issued_at, zone, start, end)
    draft = func.coalesce(issued_cards.c.draft, issued_cards.c.uuid)
    accepted = func.coalesce(func.max(case((feedback.c.outcome == "accepted", 1), else_=0)), 0)
    overridden = func.coalesce(func.max(case((feedback.c.outcome == "overridden", 1), else_=0)), 0)
    return (
        select(
            day.label("day"),
            issued_cards.c.rule_id,
            func.count(distinct(issued_cards.c.uuid)).label("cards"),
            accepted.label("accepted"),
            case((accepted == 1, 0), else_=overridden).label("overridden"),
        )
        .outerjoin(feedback, feedback.c.card_uuid == issued_cards.c.uuid)
        .where(issued_cards.c.issued_at >= start, issued_cards.c.issued_at < end, owned_by(issued_cards, scope))
        # The client too: two EHRs' patients with the same id are two patients.
        .group_by(
            day, issued_cards.c.rule_id, issued_cards.c.issuer, issued_cards.c.tenant, issued_cards.c.patient_key, draft
        )
        .subquery()
    )


def outcomes(engine: Engine, start: datetime, end: datetime, scope: Owner | None, zone: tzinfo) -> list[AlertOutcomes]:
    """Alerts with cards issued in [start, end) to ``scope`` per day in ``zone`` and rule, with their outcomes."""
    alerts = _per_alert(start, end, scope, zone)
    query = (
        select(
            alerts.c.day,
            alerts.c.rule_id,
            func.count().label("alerts"),
            func.sum(alerts.c.accepted).label("accepted"),
            func.sum(alerts.c.overridden).label("overridden"),
            func.sum(alerts.c.cards).label("cards"),
        )
        .group_by(alerts.c.day, alerts.c.rule_id)
        .order_by(alerts.c.day, alerts.c.rule_id)
    )
    with engine.connect() as connection:
        return [
            AlertOutcomes(
                day=_day(row.day),
                rule_id=row.rule_id,
                alerts=row.alerts,
                accepted=int(row.accepted or 0),
                overridden=int(row.overridden or 0),
                cards=int(row.cards or 0),
            )
            for row in connection.execute(query)
        ]


def override_reasons(
    engine: Engine, start: datetime, end: datetime, scope: Owner | None, zone: tzinfo
) -> list[ReasonCount]:
    """Overridden alerts (none of their cards accepted) with cards issued in [start, end), per
    rule and reason: an alert overridden twice with one reason counts once for it."""
    query = (
        select(
            site_day(issued_cards.c.issued_at, zone, start, end).label("day"),
            issued_cards.c.rule_id,
            issued_cards.c.issuer,
            issued_cards.c.tenant,
            issued_cards.c.patient_key,
            func.coalesce(issued_cards.c.draft, issued_cards.c.uuid).label("draft"),
            feedback.c.outcome,
            feedback.c.override_system,
            feedback.c.override_code,
            issued_cards.c.indicator,
        )
        .join(feedback, feedback.c.card_uuid == issued_cards.c.uuid)
        .where(issued_cards.c.issued_at >= start, issued_cards.c.issued_at < end, owned_by(issued_cards, scope))
    )
    accepted: set[tuple[Any, ...]] = set()
    reasons: dict[tuple[str, str | None, str | None, bool], set[tuple[Any, ...]]] = defaultdict(set)
    with engine.connect() as connection:
        for row in connection.execute(query):
            alert = (_day(row.day), row.rule_id, row.issuer, row.tenant, row.patient_key, row.draft)
            if row.outcome == "accepted":
                accepted.add(alert)
                continue
            ours = row.override_system in (OVERRIDE_REASON_SYSTEM, None)
            offered = not (ours and row.override_code == SNOOZE_REASON and row.indicator == "critical")
            reasons[(row.rule_id, row.override_system, row.override_code, offered)].add(alert)
    return [
        ReasonCount(rule, system, code, len(alerts - accepted), offered)
        for (rule, system, code, offered), alerts in reasons.items()
        if alerts - accepted
    ]


def unmatched_feedback(engine: Engine, start: datetime, end: datetime, scope: Owner | None) -> int:
    """Feedback ``scope`` sent in [start, end) about cards this service has no record of."""
    query = (
        select(func.count())
        .select_from(feedback.outerjoin(issued_cards, issued_cards.c.uuid == feedback.c.card_uuid))
        .where(
            issued_cards.c.uuid.is_(None),
            feedback.c.received_at >= start,
            feedback.c.received_at < end,
            owned_by(feedback, scope),
        )
    )
    with engine.connect() as connection:
        return connection.execute(query).scalar() or 0
