"""The cards that are not a rule's: what a clinician must know about the checks themselves (some
data left out, some not read in full, orders with no start date no card asks about), each in
the notices' own topic system, naming no patient's id. They come last, and keep their place
within CDS_MAX_CARDS. Recorded apart from the rules' cards (``storage.records.IssuedNotice``), so
that feedback on one is known for what it is, and never taken for a rule's alert."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cds_service.content.cards import INDICATORS, SOURCE_LABEL, SUMMARY_LIMIT
from cds_service.content.markdown import inert, named
from cds_service.facts import model
from cds_service.facts.history import Course
from cds_service.facts.model import StatusesUnread
from cds_service.pipeline.unread_drafts import not_checked_summary, unchecked_said
from cds_service.rules import Rule

log = logging.getLogger(__name__)

NOTICES = "urn:back-spasm-cds:notice"
OTHER_PATIENT_TOPIC = {"system": NOTICES, "code": "other-patient-data", "display": "Another patient's data left out"}
PARTIAL_HISTORY_TOPIC = {"system": NOTICES, "code": "partial-history", "display": "History read in part or undated"}
DRAFT_NOT_CHECKED_TOPIC = {"system": NOTICES, "code": "draft-not-checked", "display": "Draft order not checked"}
# The card that stands, last, for the cards a response has no room for (CDS_MAX_CARDS).
LIMIT_TOPIC = {"system": NOTICES, "code": "card-limit", "display": "Cards not shown"}
DRAFTS, PATIENT = "context.draftOrders", "prefetch.patient"
# What each field or prefetch key is, in a card's words. The ``imaging`` key (its name on the wire)
# holds every ServiceRequest, physical therapy as much as imaging: "service orders", as the
# heat-and-exercise card says.
_WORDS = {
    "context.draftOrders": "a draft order",
    "prefetch.patient": "the patient record",
    "prefetch.conditions": "conditions",
    "prefetch.medications": "medication history",
    "prefetch.imaging": "service orders",
}


def notices(
    left_out: tuple[str, ...],
    partial: frozenset[str],
    new_uuid: Callable[[], str],
    *,
    unchecked: tuple[str, ...] = (),
    undated: tuple[Course, ...] = (),
    statuses: StatusesUnread,
) -> list[dict[str, Any]]:
    """The notices a call's answer ends with: data of another patient left out (``left_out``, the
    fields), drafts whose drug could not be read (``unchecked``, as ``unread_drafts`` names
    them), and prefetch keys read in part (``partial``; "patient": the record not read at all;
    ``read_in_part``'s names: why the age is unknown, and what else was not read), naming the
    finished orders no check could place (``undated``: no date they began) and what was read
    without its status (``statuses``) for the clinician to look up."""
    cards = []
    if left_out:
        log.warning("resources of another patient than context.patientId left out of %s", ", ".join(left_out))
        cards.append(_other_patient(left_out, new_uuid))
    if unchecked:  # the kind of failure only: the reference may carry an id the EHR built from the patient's
        log.warning("a draft order under review names a drug that cannot be read: not checked")
    if partial or undated:  # a draft not checked is said in the same card: the notices stay two at most
        cards.append(_partial(partial, new_uuid, unchecked=unchecked, undated=undated, statuses=statuses))
    elif unchecked:
        summary = not_checked_summary(unchecked)
        detail = f"{unchecked_said(unchecked)} Review {'it' if len(unchecked) == 1 else 'them'} before signing."
        cards.append(_card(new_uuid, DRAFT_NOT_CHECKED_TOPIC, summary, detail))
    return cards


def within_limit(
    cards: list[dict[str, Any]], max_cards: int, new_uuid: Callable[[], str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """At most ``max_cards`` cards: the first ``max_cards - 1`` (cards come critical, then warning,
    then info), then one card saying how many more were found and of what, as severe as the most
    severe of them, never a shorter answer that looks whole. Returns the cards and those left out."""
    if len(cards) <= max_cards:
        return cards, []
    kept, left = cards[: max_cards - 1], cards[max_cards - 1 :]
    counts = {i: sum(1 for c in left if c["indicator"] == i) for i in INDICATORS}
    titles = named(dict.fromkeys(c["source"]["topic"]["display"] for c in left), "; ")
    summary = f"{len(left)} more cards for these orders not shown: review them in smaller groups"
    detail = (
        f"The service answers at most {max_cards} cards to one call and found {len(kept) + len(left)} for the "
        f"orders under review. Not shown: {', '.join(f'{n} {i}' for i, n in counts.items() if n)} ({titles}). "
        "Select or sign fewer orders at once to see every card."
    )
    severe = next(i for i in INDICATORS if counts[i])
    return [*kept, _card(new_uuid, LIMIT_TOPIC, summary, detail, indicator=severe)], left


def notice_count(
    left_out: tuple[str, ...], partial: frozenset[str], unchecked: tuple[str, ...], undated: tuple[Course, ...]
) -> int:
    """How many notices ``notices`` gives at most, counted before the cards (their room is what
    the notices leave): an undated order a card asks about may yet drop its notice."""
    return bool(left_out) + bool(partial or undated or unchecked)


def _partial(
    partial: frozenset[str],
    new_uuid: Callable[[], str],
    *,
    unchecked: tuple[str, ...],
    undated: tuple[Course, ...],
    statuses: StatusesUnread,
) -> dict[str, Any]:
    """Keys read in part, a condition's onset that is no date, and why the age is unknown (the
    older adults' checks did not run: the clinician must not take their silence for a clear
    check); and a draft whose drug could not be read, when there is one."""
    lines, history = [], tuple(f"prefetch.{key}" for key in sorted(partial) if key not in _NO_KEYS)
    if unchecked:
        lines.append(unchecked_said(unchecked))
    # The age unknown: why, when it is, the most telling reason alone (a fetch that failed also
    # leaves no Patient: it is said as failed).
    age = next((words for reason, words in _AGE_UNKNOWN if reason in partial), "")
    if age:
        lines.append(f"{age.capitalize()}: the age is unknown, so the checks for older adults did not run.")
    if history:
        lines.append(f"Not all of the patient's {_words(history)} could be read.")
    # Each once: a list may repeat one.
    said = dict.fromkeys(f"**{inert(c.drug.name)}** ({c.status})" for c in undated)
    if len(said) == 1:
        lines.append(
            f"An order has no start date, so the checks that depend on when it was taken could not use it: "
            f"{named(said, '; ')}. Confirm when it was last taken."
        )
    elif said:
        lines.append(
            f"Some orders have no start date, so the checks that depend on when they were taken could not use them: "
            f"{named(said, '; ')}. Confirm when each was last taken."
        )
    if model.ONSET in partial:  # the condition itself was read, and may have its own card
        lines.append(
            "A condition's onset date could not be read: a check that depends on how long it has lasted may be missing."
        )
    if model.STATUS in partial:
        lines += _status_lines(statuses)
    in_part = bool(history) or model.ONSET in partial or model.STATUS in partial
    if in_part or age or unchecked:  # orders undated alone were read: their line says what to do
        lines.append(
            "Any other card comes from what was read, and a check that needed the rest may be missing: "
            "review the record before signing."
        )
    if unchecked:
        one = len(said) == 1
        undated_said = ("an order on record has" if one else f"{len(said)} orders on record have") + " no start date"
        what = "the patient's history was not read in full" if in_part else age or (undated_said if said else "")
        summary = f"{not_checked_summary(unchecked, also=what)}: checks are incomplete"
    elif in_part:
        summary = "The patient's history was not read in full: checks may be incomplete"
    elif age:
        summary = f"{age.capitalize()}: the checks for older adults did not run"
    else:  # the history was read, and some of it cannot be placed in time
        summary = _undated_summary(undated, len(said))
    return _card(new_uuid, PARTIAL_HISTORY_TOPIC, summary, " ".join(lines))


def _status_lines(statuses: StatusesUnread) -> list[str]:
    """What was read without its status, and how: a condition taken as current (its card, if it
    has one, is shown: a red flag missing unseen is the worse error), an order used by no check
    (it may have been cancelled or entered in error); each named as the record words it."""
    lines = []
    conditions, orders = (dict.fromkeys(f"**{inert(name)}**" for name in names) for names in statuses)
    if len(conditions) == 1:
        lines.append(f"A condition's status could not be read, so it was taken as current: {named(conditions, '')}.")
    elif conditions:
        said = named(conditions, "; ")
        lines.append(f"Some conditions' statuses could not be read, so they were taken as current: {said}.")
    if len(orders) == 1:
        lines.append(f"An order's status could not be read, so no check used it: {named(orders, '')}.")
    elif orders:
        lines.append(f"Some orders' statuses could not be read, so no check used them: {named(orders, '; ')}.")
    return lines


def _undated_summary(undated: tuple[Course, ...], count: int) -> str:
    """Which drugs, so that the clinician knows what to ask before opening the card."""
    drugs = named(dict.fromkeys(course.drug.ingredient for course in undated), ", ")
    if count == 1:
        return f"{drugs[:1].upper()}{drugs[1:]} on record with no start date: confirm when it was last taken"
    summary = f"{count} orders on record with no start date ({drugs}): confirm when each was last taken"
    # Three ingredients' names and a count fit; a site's own longer names may not.
    return summary if len(summary) < SUMMARY_LIMIT else summary.replace(f" ({drugs})", "")


# Why the age is unknown, in the notice's words, the most telling first.
_AGE_UNKNOWN = (
    ("patient", "the patient record could not be read"),
    (model.NO_PATIENT, "no patient record was sent"),
    (model.BIRTH_DATE, "the patient's birth date could not be read"),
    (model.BIRTH_DATE_PAST, "the patient's birth date on record is over 122 years ago"),
    (model.NO_BIRTH_DATE, "the patient's birth date is not recorded"),
)
_AGE_REASONS = frozenset(reason for reason, _ in _AGE_UNKNOWN)


def age_said(partial: frozenset[str], rules: list[Rule], left_out: tuple[str, ...]) -> frozenset[str]:
    """``partial`` as the notices say it: without why the age is unknown unless one of ``rules``
    reads the age (``Rule.reads_age``: a ciprofloxacin or a TENS order was told "the checks for
    older adults did not run", where none would have: a code review); and without "not sent"
    for a Patient left out as another patient's, which the other-patient notice says."""
    if not any(rule.reads_age for rule in rules):
        return partial - _AGE_REASONS
    return partial - {model.NO_PATIENT} if PATIENT in left_out else partial


# What ``partial`` may hold that is no prefetch key: said in lines of their own.
_NO_KEYS = (*_AGE_REASONS, model.ONSET, model.STATUS)


def _other_patient(left_out: tuple[str, ...], new_uuid: Callable[[], str]) -> dict[str, Any]:
    """What a clinician must do first: a draft for another patient may be a wrong-patient order."""
    lines = []
    if DRAFTS in left_out:
        lines.append("A draft order names a different patient than this one: it was not checked.")
    if PATIENT in left_out:
        lines.append(
            "The patient record sent is another patient's: the age is unknown, so the checks for older "
            "adults did not run."
        )
    history = tuple(dict.fromkeys(field for field in left_out if field not in (DRAFTS, PATIENT)))
    if history:  # agreeing with what is named: "medication history were left out" read as a slip
        was = "was" if history == ("prefetch.medications",) else "were"
        own = "this patient's own may be missing, so a check may not have run"  # not the other's: needed
        lines.append(f"{_words(history).capitalize()} sent for another patient {was} left out: {own}.")
    lines.append("Confirm the patient before signing, and report the mix-up to the EHR's support.")
    summary = (
        "A draft order names another patient and was not checked: confirm the patient"
        if DRAFTS in left_out
        else "Another patient's data was left out: checks may be incomplete"
    )
    return _card(new_uuid, OTHER_PATIENT_TOPIC, summary, "\n\n".join(lines))


def _words(fields: tuple[str, ...]) -> str:
    """The fields in a card's words, "and" before the last: "conditions and service orders"."""
    words = [_WORDS.get(field, field.removeprefix("prefetch.")) for field in fields]
    return " and ".join(filter(None, (", ".join(words[:-1]), words[-1])))


def _card(
    new_uuid: Callable[[], str], topic: dict[str, str], summary: str, detail: str, *, indicator: str = "warning"
) -> dict[str, Any]:
    """A warning unless said otherwise: a check it speaks of may be missing."""
    return {
        "uuid": new_uuid(),
        "summary": summary,
        "detail": detail,
        "indicator": indicator,
        "source": {"label": SOURCE_LABEL, "topic": topic},
    }
