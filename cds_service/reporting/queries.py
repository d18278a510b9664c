"""The analytics queries: cards issued per day and rule, with what became of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, distinct, func, select
from sqlalchemy.engine import Engine

from cds_service.storage.schema import feedback, issued_cards


@dataclass(frozen=True)
class CardOutcomes:
    """Cards of one rule issued on one day, by what became of them."""

    day: date
    rule_id: str
    issued: int
    accepted: int
    overridden: int


@dataclass(frozen=True)
class ReasonCount:
    """Cards of a rule overridden with one reason (or none: system and code are None)."""

    rule_id: str
    system: str | None
    code: str | None
    display: str | None
    cards: int


def _card_outcomes(start: datetime, end: datetime) -> Any:
    """Per card issued in [start, end): did it get an accepted, an overridden feedback?"""
    accepted = func.max(case((feedback.c.outcome == "accepted", 1), else_=0))
    overridden = func.max(case((feedback.c.outcome == "overridden", 1), else_=0))
    return (
        select(
            issued_cards.c.uuid,
            issued_cards.c.rule_id,
            issued_cards.c.issued_at,
            func.coalesce(accepted, 0).label("accepted"),
            # A card both accepted and overridden (two clinicians, or a change of mind) counts as accepted.
            case((func.coalesce(accepted, 0) == 1, 0), else_=func.coalesce(overridden, 0)).label("overridden"),
        )
        .outerjoin(feedback, feedback.c.card_uuid == issued_cards.c.uuid)
        .where(issued_cards.c.issued_at >= start, issued_cards.c.issued_at < end)
        .group_by(issued_cards.c.uuid, issued_cards.c.rule_id, issued_cards.c.issued_at)
        .subquery()
    )


def outcomes(engine: Engine, start: datetime, end: datetime) -> list[CardOutcomes]:
    """Cards issued in [start, end) per UTC day and rule, with their outcomes."""
    cards = _card_outcomes(start, end)
    day = func.date(cards.c.issued_at)
    query = (
        select(
            day.label("day"),
            cards.c.rule_id,
            func.count().label("issued"),
            func.sum(cards.c.accepted).label("accepted"),
            func.sum(cards.c.overridden).label("overridden"),
        )
        .group_by(day, cards.c.rule_id)
        .order_by(day, cards.c.rule_id)
    )
    with engine.connect() as connection:
        return [
            CardOutcomes(
                day=row.day if isinstance(row.day, date) else date.fromisoformat(row.day),
                rule_id=row.rule_id,
                issued=row.issued,
                accepted=int(row.accepted or 0),
                overridden=int(row.overridden or 0),
            )
            for row in connection.execute(query)
        ]


def override_reasons(engine: Engine, start: datetime, end: datetime) -> list[ReasonCount]:
    """Overridden cards issued in [start, end) per rule and reason (cards, not resent items)."""
    cards = _card_outcomes(start, end)
    query = (
        select(
            cards.c.rule_id,
            feedback.c.override_system,
            feedback.c.override_code,
            func.max(feedback.c.override_display).label("display"),
            func.count(distinct(cards.c.uuid)).label("cards"),
        )
        .join(feedback, and_(feedback.c.card_uuid == cards.c.uuid, feedback.c.outcome == "overridden"))
        .where(cards.c.overridden == 1)
        .group_by(cards.c.rule_id, feedback.c.override_system, feedback.c.override_code)
    )
    with engine.connect() as connection:
        return [
            ReasonCount(row.rule_id, row.override_system, row.override_code, row.display, row.cards)
            for row in connection.execute(query)
        ]


def unmatched_feedback(engine: Engine, start: datetime, end: datetime) -> int:
    """Feedback received in [start, end) about cards this service has no record of."""
    query = (
        select(func.count())
        .select_from(feedback.outerjoin(issued_cards, issued_cards.c.uuid == feedback.c.card_uuid))
        .where(issued_cards.c.uuid.is_(None), feedback.c.received_at >= start, feedback.c.received_at < end)
    )
    with engine.connect() as connection:
        return connection.execute(query).scalar() or 0
