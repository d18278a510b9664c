"""cyclobenzaprine-contraindicated-condition: hyperthyroidism, heart failure, arrhythmia, heart
block or conduction disturbance, or a recent myocardial infarction; a caution for the milder
conduction findings.

The label contraindicates cyclobenzaprine (a tricyclic-like drug that can cause arrhythmias,
tachycardia and conduction slowing) in all of these [FDA-IR]. Clinical specification v2 splits
the cardiac findings in two (§4): the contraindicated set (2nd/3rd-degree AV block, left
bundle-branch, bi- and trifascicular block, long QT, pre-excitation, ventricular and
supraventricular tachycardias, AF/flutter, ...) gives a critical card that offers to delete the
order; the caution set (first-degree AV block, isolated right bundle-branch or fascicular block,
nonspecific intraventricular block, inappropriate sinus tachycardia, premature beats) gives a
warning with no suggestion, and only when nothing of the contraindicated set is active, so a
patient never gets both. A myocardial infarction counts in its acute recovery phase only: onset
in the last ``recent_mi_days``; the recordedDate stands in for a missing onset only because the
MI set holds acute MI codes alone (old MI I25.2 and past-MI concepts are not in it). An MI whose
onset was recorded by its year alone, which may fall in that window, gives a warning asking for
its date (a pharmacist's review: an NSTEMI "2026" read from 1 January had no card; a critical card
on an MI "0–324 days ago" would assert what the record does not say).
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.history import Condition
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import is_cyclobenzaprine, remove
from cds_service.rules.condition_said import RECENT_MI, condition_facts

RULE_ID = "cyclobenzaprine-contraindicated-condition"
CONTRAINDICATIONS = ("hyperthyroidism", "heart-failure", "arrhythmia", "heart-block")
CAUTION = "cardiac-caution"
_ANY_CONTRAINDICATION = frozenset((*CONTRAINDICATIONS, RECENT_MI))


class Config(RuleConfig):
    recent_mi_days: int = Field(default=90, ge=1, le=3650)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    recent = context.today - timedelta(days=config.recent_mi_days)
    contraindicated = [
        (condition, concept)
        for condition in context.conditions
        if not condition.concepts.isdisjoint(_ANY_CONTRAINDICATION)  # most conditions: none, asked in C
        and (concept := _contraindication(condition, recent)) is not None
    ]
    if contraindicated:
        facts = condition_facts(contraindicated, context.today, terminology, config.recent_mi_days)
        return Finding(RULE_ID, "contraindicated", order, facts, remove(order))
    caution = [(c, CAUTION) for c in context.conditions if CAUTION in c.concepts]
    undated = [(c, RECENT_MI) for c in context.conditions if RECENT_MI in c.concepts and _year_may_be_recent(c, recent)]
    if undated:  # the caution's findings named too: one card per rule and order
        facts = condition_facts(undated + caution, context.today, terminology, config.recent_mi_days)
        year = str(undated[0][0].onset.year) if undated[0][0].onset else ""
        return Finding(
            RULE_ID, "mi-year-only", order, {**facts, "year": year, "recent_mi_days": str(config.recent_mi_days)}
        )
    if caution:
        return Finding(RULE_ID, "caution", order, condition_facts(caution, context.today, terminology))
    return None


def _contraindication(condition: Condition, recent: date) -> str | None:
    """The contraindicated set the condition is in, if any; an MI only in its recovery window."""
    concept = next((c for c in CONTRAINDICATIONS if c in condition.concepts), None)
    if concept is not None:
        return concept
    if RECENT_MI in condition.concepts and condition.onset_since(recent):
        return RECENT_MI
    return None


def _year_may_be_recent(condition: Condition, recent: date) -> bool:
    """An onset of a year alone whose later days (up to the day it was recorded) reach the window."""
    latest = condition.onset_latest or condition.onset
    return condition.onset_parts == 1 and latest is not None and latest >= recent


FACTS = ("condition", "conditions")

RULE = Rule(
    id=RULE_ID,
    variants={
        **dict.fromkeys(("contraindicated", "caution"), FACTS),
        "mi-year-only": (*FACTS, "recent_mi_days", "year"),
    },
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=Config,
)
