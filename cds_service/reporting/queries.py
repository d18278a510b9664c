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

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, distinct, func, select, true
from sqlalchemy.engine import Engine

from cds_service.content.cards import OVERRIDE_REASON_SYSTEM, SNOOZE_REASON
from cds_service.storage.offered import unoffered
from cds_service.storage.records import Owner
from cds_service.storage.schema import feedback, from_its_client, issued_cards, issued_notices
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


# One alert (the module's docstring): its site day, rule, client (issuer, tenant), patient and draft.
Alert = tuple[Any, ...]
# An override reason: the rule, system and code, and whether the card offered it (``ReasonCount``).
Reason = tuple[str, str | None, str | None, bool]


@dataclass
class AlertFeedback:
    """What feedback said of the alerts with a card issued in a range, read once for the
    outcomes and the reasons: the alerts accepted, the alerts overridden by each reason (some
    accepted too: accepted wins, two clinicians or a change of mind), and the items accepting
    only suggestions their card did not offer (``storage.offered``), counted as no outcome."""

    accepted: set[Alert] = field(default_factory=set)
    reasons: dict[Reason, set[Alert]] = field(default_factory=lambda: defaultdict(set))
    unoffered: int = 0

    @property
    def overridden(self) -> set[Alert]:
        """The alerts overridden and none of their cards accepted."""
        return set().union(*self.reasons.values()) - self.accepted


def alert_feedback(
    engine: Engine,
    start: datetime,
    end: datetime,
    scope: Owner | None,
    zone: tzinfo,
    offers: Callable[[str, str], bool],
) -> AlertFeedback:
    """The feedback about cards issued in [start, end) to ``scope``, per alert. Read here, not
    summed in SQL: whether an acceptance names a suggestion its card offered is one rule in
    Python (``storage.offered``), applied as at arrival to what was stored unchecked (feedback
    that reached the database before its card's record). Only the card's client's feedback is
    about it (``from_its_client``): another's is that client's ``unmatched_feedback``. The
    reasons were read row by row already: one pass now serves the outcomes too. A code sent
    without its system that its rule's cards offer (``offers``) is the service's reason, counted in one
    row with the same reason sent with its system; any other stays as sent."""
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
            feedback.c.accepted_suggestions,
            issued_cards.c.indicator,
            issued_cards.c.suggestions,
        )
        .join(feedback, and_(feedback.c.card_uuid == issued_cards.c.uuid, from_its_client(issued_cards)))
        .where(issued_cards.c.issued_at >= start, issued_cards.c.issued_at < end, owned_by(issued_cards, scope))
    )
    said = AlertFeedback()
    with engine.connect() as connection:
        for row in connection.execute(query):
            alert = (_day(row.day), row.rule_id, row.issuer, row.tenant, row.patient_key, row.draft)
            if row.outcome == "accepted":
                if unoffered(row.accepted_suggestions, row.suggestions):
                    said.unoffered += 1
                else:
                    said.accepted.add(alert)
                continue
            ours = row.override_system in (OVERRIDE_REASON_SYSTEM, None)
            offered = not (ours and row.override_code == SNOOZE_REASON and row.indicator == "critical")
            folded = (
                row.override_system is None and row.override_code is not None and offers(row.rule_id, row.override_code)
            )
            system = OVERRIDE_REASON_SYSTEM if folded else row.override_system
            said.reasons[(row.rule_id, system, row.override_code, offered)].add(alert)
    return said


def _per_alert(start: datetime, end: datetime, scope: Owner | None, zone: tzinfo) -> Any:
    """Per alert with a card issued in [start, end): its day, rule and cards."""
    day = site_day(issued_cards.c.issued_at, zone, start, end)
    draft = func.coalesce(issued_cards.c.draft, issued_cards.c.uuid)
    return (
        select(day.label("day"), issued_cards.c.rule_id, func.count(distinct(issued_cards.c.uuid)).label("cards"))
        .where(issued_cards.c.issued_at >= start, issued_cards.c.issued_at < end, owned_by(issued_cards, scope))
        # The client too: two EHRs' patients with the same id are two patients.
        .group_by(
            day, issued_cards.c.rule_id, issued_cards.c.issuer, issued_cards.c.tenant, issued_cards.c.patient_key, draft
        )
        .subquery()
    )


def outcomes(
    engine: Engine, start: datetime, end: datetime, scope: Owner | None, zone: tzinfo, said: AlertFeedback
) -> list[AlertOutcomes]:
    """Alerts with cards issued in [start, end) to ``scope`` per day in ``zone`` and rule, with
    their outcomes (``said``: ``alert_feedback`` of the same range and scope)."""
    alerts = _per_alert(start, end, scope, zone)
    query = (
        select(alerts.c.day, alerts.c.rule_id, func.count().label("alerts"), func.sum(alerts.c.cards).label("cards"))
        .group_by(alerts.c.day, alerts.c.rule_id)
        .order_by(alerts.c.day, alerts.c.rule_id)
    )
    accepted = Counter(alert[:2] for alert in said.accepted)
    overridden = Counter(alert[:2] for alert in said.overridden)
    with engine.connect() as connection:
        return [
            AlertOutcomes(
                day=_day(row.day),
                rule_id=row.rule_id,
                alerts=row.alerts,
                accepted=accepted[(_day(row.day), row.rule_id)],
                overridden=overridden[(_day(row.day), row.rule_id)],
                cards=int(row.cards or 0),
            )
            for row in connection.execute(query)
        ]


def override_reasons(said: AlertFeedback) -> list[ReasonCount]:
    """Overridden alerts (none of their cards accepted) per rule and reason: an alert overridden
    twice with one reason counts once for it."""
    return [
        ReasonCount(rule, system, code, len(alerts - said.accepted), offered)
        for (rule, system, code, offered), alerts in said.reasons.items()
        if alerts - said.accepted
    ]


def unmatched_feedback(engine: Engine, start: datetime, end: datetime, scope: Owner | None) -> int:
    """Feedback ``scope`` sent in [start, end) about cards this service has no record of: neither
    a rule's card nor one of its own notices (``notice_feedback``) issued to the item's sender.
    Another client's card is none of the sender's (``from_its_client``): its item counts here."""
    cards = and_(issued_cards.c.uuid == feedback.c.card_uuid, from_its_client(issued_cards))
    notices = and_(issued_notices.c.uuid == feedback.c.card_uuid, from_its_client(issued_notices))
    query = (
        select(func.count())
        .select_from(feedback.outerjoin(issued_cards, cards).outerjoin(issued_notices, notices))
        .where(
            issued_cards.c.uuid.is_(None),
            issued_notices.c.uuid.is_(None),
            feedback.c.received_at >= start,
            feedback.c.received_at < end,
            owned_by(feedback, scope),
        )
    )
    with engine.connect() as connection:
        return connection.execute(query).scalar() or 0


def notice_feedback(engine: Engine, start: datetime, end: datetime, scope: Owner | None) -> dict[str, int]:
    """Feedback ``scope`` sent in [start, end) about the service's own notices, per notice code:
    a clinician dismissing a notice, no rule's outcome, and no sign of a card record lost."""
    query = (
        select(issued_notices.c.code, func.count().label("items"))
        .select_from(
            feedback.join(
                issued_notices, and_(issued_notices.c.uuid == feedback.c.card_uuid, from_its_client(issued_notices))
            )
        )
        .where(feedback.c.received_at >= start, feedback.c.received_at < end, owned_by(feedback, scope))
        .group_by(issued_notices.c.code)
        .order_by(issued_notices.c.code)
    )
    with engine.connect() as connection:
        return {row.code: row.items for row in connection.execute(query)}
