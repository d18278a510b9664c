"""muscle-relaxant-chronic-pain: relaxants are for acute spasm, not chronic pain.

When a muscle relaxant is ordered for a patient with active chronic pain (chronic low back
pain: its own code, G89.29 beside a back pain code, or back pain that began at least 84 days
ago; myalgia or myofascial pain that began at least 84 days ago; fibromyalgia, except with
cyclobenzaprine, which EULAR supports and the sublingual product is approved for) and no acute
spasm (muscle spasm or back pain that began in the last 28 days), then warn and name the
alternatives for that condition. Evidence: [ACP] recommendations 2 and 3 for chronic low back
pain; [EULAR-FM] for fibromyalgia (exercise first); [FAIL] for myofascial pain (physical
therapy, trigger point injection); [BEERS] no tricyclic at 65 or older.

The card carries the nonpharmacologic alternatives itself, so the heat-and-exercise reminder
is redundant beside it (it subsumes ``nonpharmacologic-first-line``). Gabapentinoids are named
only for radicular (neuropathic) pain.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.history import Condition
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import AdviceAgeConfig, Finding, Rule, RuleConfig
from cds_service.rules.common import is_cyclobenzaprine, is_muscle_relaxant
from cds_service.rules.condition_said import condition_label, since

RULE_ID = "muscle-relaxant-chronic-pain"


class _Onsets(RuleConfig):
    # Twelve weeks: back pain, myalgia or myofascial pain this old is chronic.
    chronic_days: int = Field(default=84, ge=1, le=3650)
    # Muscle spasm or back pain this recent is an acute flare: a relaxant's indication.
    acute_onset_days: int = Field(default=28, ge=1, le=365)


class Config(AdviceAgeConfig, _Onsets):
    """The onsets, then the age from which no tricyclic antidepressant is suggested (Beers
    Criteria, 65 at most: the card fires at any age): the bases in this order keep the order the
    rule catalog has always listed them in."""


def _since_at_least(condition: Condition, context: PatientContext, days: int) -> bool:
    return condition.onset is not None and condition.onset <= context.today - timedelta(days=days)


def _chronic(
    context: PatientContext, order: Order, terminology: Terminology, config: Config
) -> tuple[str, str, Condition] | None:
    """The chronic pain condition the card speaks about: (concept, card variant, condition),
    fibromyalgia first, then myofascial pain, then chronic low back pain."""
    conditions = context.conditions
    back_pain = [c for c in conditions if "back-pain-spasm" in c.concepts]

    def first(concept: str, *, chronic_onset: bool = False) -> Condition | None:
        return next(
            (
                c
                for c in conditions
                if concept in c.concepts and (not chronic_onset or _since_at_least(c, context, config.chronic_days))
            ),
            None,
        )

    candidates = [
        ("fibromyalgia", "fibromyalgia", None if is_cyclobenzaprine(order, terminology) else first("fibromyalgia")),
        ("myofascial-pain", "myofascial-pain", first("myofascial-pain", chronic_onset=True)),
        ("chronic-low-back-pain", "chronic-low-back-pain", first("chronic-low-back-pain")),
        ("other-chronic-pain", "chronic-low-back-pain", first("other-chronic-pain") if back_pain else None),
        ("back-pain-spasm", "chronic-low-back-pain", first("back-pain-spasm", chronic_onset=True)),
    ]
    return next(((k, v, c) for k, v, c in candidates if c is not None), None)


def _acute(context: PatientContext, config: Config) -> bool:
    since_day = context.today - timedelta(days=config.acute_onset_days)
    return any(
        ("muscle-spasm" in c.concepts or "back-pain-spasm" in c.concepts)
        and c.onset is not None
        and c.onset >= since_day  # its first day: an onset only maybe recent does not silence the warning
        for c in context.conditions
    )


def _with_patient(variant: str, context: PatientContext, config: Config) -> str:
    """The card variant for this patient: a gabapentinoid only for radicular pain; at ``min_age``
    (65) or older [BEERS] no tricyclic, and the drugs for chronic low back pain with their cautions."""
    if variant == "chronic-low-back-pain" and any("radicular" in c.concepts for c in context.conditions):
        variant = "chronic-low-back-pain-radicular"
    older = config.older(context)
    return f"{variant}-older-adult" if older and variant != "myofascial-pain" else variant


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    chronic = _chronic(context, order, terminology, config)
    if chronic is None or _acute(context, config):
        return None
    concept, variant, condition = chronic
    facts = {
        "condition": condition_label(condition, terminology, concept),
        "since": since(condition),
        "acute_days": str(config.acute_onset_days),
    }
    return Finding(RULE_ID, _with_patient(variant, context, config), order, facts)


FACTS = ("acute_days", "condition", "since")

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(
        (
            "fibromyalgia",
            "fibromyalgia-older-adult",
            "myofascial-pain",
            "chronic-low-back-pain",
            "chronic-low-back-pain-older-adult",
            "chronic-low-back-pain-radicular",
            "chronic-low-back-pain-radicular-older-adult",
        ),
        FACTS,
    ),
    applies_to=is_muscle_relaxant,
    evaluate=evaluate,
    config=Config,
    once_per_call=True,
    subsumes=frozenset({"nonpharmacologic-first-line"}),
)
