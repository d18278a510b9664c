"""From findings to cards: suggestions composed and made safe, then the card text filled in with
the facts (clinical specification §2: suggestions compose). The card volume is ``volume``'s."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from cds_service.content.cards import (
    OVERRIDE_REASON_SYSTEM,
    QUIETABLE,
    RULE_TOPIC_SYSTEM,
    SNOOZE_REASON,
    SOURCE_LABEL,
    SUMMARY_LIMIT,
    CardCatalog,
)
from cds_service.content.markdown import inert, may_be_active
from cds_service.content.terminology import Terminology
from cds_service.facts.medications import MedicationIndex
from cds_service.facts.orders import UNWRITTEN_LIMIT_REASON, no_change_reason, sublingual_left_out, words_left_out
from cds_service.facts.sig import medication_order
from cds_service.fhir.json import copy_json
from cds_service.fhir.models import ModelBudget
from cds_service.fhir.versions import to_r4
from cds_service.rules import NO_CHANGE, Finding, NoChange, Proposal
from cds_service.rules.safe_update import safe_update
from cds_service.storage.records import IssuedCard

log = logging.getLogger(__name__)


def compose_suggestions(findings: list[Finding]) -> list[Finding]:
    """Each dose change carries the limits the other findings for its order set (the 5 mg swap
    also limited to 21 days), its label saying so; and every update is made safe to accept
    (``rules.safe_update``): accepting any one suggestion leaves a safe order."""
    composed = []
    reasons: dict[tuple[str, frozenset[str], bool], str | None] = {}  # the draft is checked once per call
    budget = ModelBudget()  # what the R4 model may still check of this call's drafts
    for finding in findings:
        limits = [
            other
            for other in findings
            if other is not finding and other.limit is not None and other.order.reference == finding.order.reference
        ]
        proposals, unwritten = [], []
        for proposal in finding.proposals:
            try:
                proposals.append(_composed(finding, proposal, limits))
            except NoChange:  # a limit the dose change cannot carry: not offered without it
                unwritten.append(UNWRITTEN_LIMIT_REASON)
        composed.append(_offerable(replace(finding, proposals=tuple(proposals)), reasons, budget, unwritten))
    return composed


def _offerable(
    finding: Finding,
    known: dict[tuple[str, frozenset[str], bool], str | None],
    budget: ModelBudget,
    unwritten: list[str],
) -> Finding:
    """The finding without the suggestions its draft cannot take (no id: no update or delete;
    rejected by the R4 model: no update), the reason kept for the card to say, with those of the
    dose changes whose composed limit could not be written (``unwritten``)."""
    kept, reasons = [], list(dict.fromkeys(unwritten))
    for proposal in finding.proposals:
        key = (finding.order.reference, frozenset(action["type"] for action in proposal.actions), proposal.dose_change)
        if key not in known:
            known[key] = no_change_reason(finding.order, key[1], dose_change=key[2], budget=budget)
        reason = known[key]
        if reason is None:
            kept.append(proposal)
        elif reason not in reasons:
            reasons.append(reason)
    if not reasons:
        return finding
    return replace(finding, proposals=tuple(kept), facts={**finding.facts, NO_CHANGE: " ".join(reasons)})


def _composed(finding: Finding, proposal: Proposal, limits: list[Finding]) -> Proposal:
    applied = limits if proposal.dose_change else []
    actions = []
    for action in proposal.actions:
        if action["type"] == "update":
            resource = copy_json(action["resource"])
            for other in applied:
                assert other.limit is not None
                resource = other.limit(resource, proposal.product)
            action = {**action, "resource": safe_update(finding.order, resource, proposal.product)}
        actions.append(action)
    notes = proposal.notes + tuple(other.limit_note for other in applied if other.limit_note)
    return replace(proposal, actions=tuple(actions), notes=notes)


def render(
    catalog: CardCatalog, finding: Finding, new_uuid: Callable[[], str], *, snooze_days: int = 0
) -> dict[str, Any]:
    """The CDS Hooks card: no nulls, no empty strings or arrays (spec §Use of JSON).

    Evidence with a URL becomes a link button, cited nowhere else; evidence without one is cited
    at the end of the detail. Warning and info cards of a rule that snoozes also offer "don't
    show again for this patient"; critical cards never do, because they are never snoozed."""
    text = catalog.texts[finding.rule_id]
    variant = text.variants[finding.variant]
    facts = finding.facts
    evidence = catalog.evidence(finding.rule_id, finding.variant, finding.evidence)
    detail = variant.detail.format(**facts)
    if may_be_active(detail):  # a link or a tag, maybe the record's: made inert
        detail = variant.detail.format(**{name: inert(value) for name, value in facts.items()})
    if facts.get(NO_CHANGE):
        detail += f"\n\n{facts[NO_CHANGE]}"
    if updates := [a["resource"] for p in finding.proposals for a in p.actions if a["type"] == "update"]:
        for note in filter(None, (sublingual_left_out(finding.order, updates), words_left_out(finding.order))):
            detail += f"\n\n{catalog.note(note)}"
    if finding.also_flagged:
        detail += "\n\nAlso flagged: " + " ".join(
            inert(said) + ("" if said.endswith("?") else ".") for said in finding.also_flagged
        )  # a summary may hold "; "
    unlinked = [e.citation for e in evidence if not e.url]
    if unlinked:
        detail += f"\n\nEvidence: {' '.join(unlinked)}"
    card: dict[str, Any] = {
        "uuid": new_uuid(),
        "summary": summary(catalog, finding),
        "detail": detail,
        "indicator": variant.indicator,
        "source": {
            "label": SOURCE_LABEL,
            "topic": {"system": RULE_TOPIC_SYSTEM, "code": finding.rule_id, "display": text.title},
        },
    }
    suggestions = _suggestions(finding, catalog, new_uuid)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    reasons = list(text.override_reasons) if variant.indicator != "info" else []
    if snooze_days and variant.indicator in QUIETABLE:
        display = catalog.snooze_reason(snooze_days)
        reasons.append({"system": OVERRIDE_REASON_SYSTEM, "code": SNOOZE_REASON, "display": display})
    if reasons:
        card["overrideReasons"] = reasons
    links = [{"label": e.label, "url": e.url, "type": "absolute"} for e in evidence if e.url]
    if links:
        card["links"] = links
    return card


def summary(catalog: CardCatalog, finding: Finding) -> str:
    """The card's summary, facts filled in, under the limit."""
    return _short(catalog.texts[finding.rule_id].variants[finding.variant].summary.format(**finding.facts), finding)


def _short(summary: str, finding: Finding) -> str:
    """The summary under the limit (clinical specification §2). Start-up counts each fact as a
    date's ten characters; a long drug name can pass that: cut at a word, with an ellipsis, and
    logged for the site to reword (the rule and variant, never the facts: they may name the
    patient's)."""
    if len(summary) < SUMMARY_LIMIT:
        return summary
    log.warning(
        "card summary over %d characters, cut: reword %s, variant %s",
        SUMMARY_LIMIT - 1,
        finding.rule_id,
        finding.variant,
    )
    cut = summary[: SUMMARY_LIMIT - 2]
    word = cut.rfind(" ") if summary[SUMMARY_LIMIT - 2] != " " else len(cut)  # a word ending there is whole
    return (cut[:word] if word > SUMMARY_LIMIT // 2 else cut).rstrip(" ,;:") + "…"


def labelled(finding: Finding, catalog: CardCatalog) -> list[Proposal]:
    """The proposals that become suggestions: those the card variant has a label for, in order."""
    labels = catalog.texts[finding.rule_id].variants[finding.variant].suggestions
    return [proposal for proposal in finding.proposals if proposal.label in labels]


def _suggestions(finding: Finding, catalog: CardCatalog, new_uuid: Callable[[], str]) -> list[dict[str, Any]]:
    """The card's suggestions, one for each proposal ``labelled`` keeps (``keys_after_dose_change``
    pairs the two by place: one filter, so they cannot drift apart)."""
    labels = catalog.texts[finding.rule_id].variants[finding.variant].suggestions
    suggestions = []
    for proposal in labelled(finding, catalog):
        label = labels[proposal.label].format(**finding.facts) + "".join(f" ({note})" for note in proposal.notes)
        suggestions.append(
            {
                "label": label,
                "uuid": new_uuid(),
                **({"isRecommended": True} if proposal.recommended else {}),
                "actions": [{**action, "description": label} for action in proposal.actions],
            }
        )
    return suggestions


def draft_hash(finding: Finding, card: dict[str, Any], user: str | None) -> str:
    """What makes a card "the same card for the unchanged draft": the rule, the draft's id and
    every fact of it a rule reads (drug, dose, frequency, duration, codes, reasons), and what the
    card says (indicator, summary, detail). An edit any rule could read, or new patient data
    that changes the card's words, makes a new hash; a re-fire or a change no rule reads does not.
    And who it went to (``context.userId``): an order one clinician pended and another signs was
    not seen by the one signing (a clinical safety review)."""
    order = finding.order
    relevant = {
        "rule": finding.rule_id,
        "user": user,
        "draft": order.reference,
        "drug": order.drug,
        "codes": sorted(code.key for code in order.codes),
        "reasons": [sorted(code.key for code in order.reason.codes), order.reason.given, order.reason.references],
        "dose": [order.dose_mg, order.units_per_dose, order.per_day, order.planned_days, order.duration_basis],
        "card": [card["indicator"], card["summary"], card.get("detail")],
    }
    return hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def issued_card(
    finding: Finding, card: dict[str, Any], catalog: CardCatalog, terminology: Terminology, user: str | None
) -> IssuedCard:
    """What the service remembers of the card it renders of ``finding``: what feedback is
    checked against and counted for, and what keeps it quiet (its draft, its subject)."""
    return IssuedCard(
        card["uuid"],
        finding.rule_id,
        finding.order.key,
        card["indicator"],
        keys_after_dose_change(finding, card, catalog, terminology),
        finding.order.reference,
        draft_hash(finding, card, user),
        suggestions=tuple(suggestion["uuid"] for suggestion in card.get("suggestions", ())),
        subject=finding.subject,
    )


def keys_after_dose_change(
    finding: Finding, card: dict[str, Any], catalog: CardCatalog, terminology: Terminology
) -> tuple[tuple[str, str], ...]:
    """For each dose-change suggestion, the order and dose the draft has once it is accepted
    (``Order.dose_key``): its rule stays quiet for that draft although the drug changed (the 5 mg
    tablet that came from accepting the older-adult swap does not bring the rule's info card back)."""
    keys = []
    proposals = labelled(finding, catalog)
    for proposal, suggestion in zip(proposals, card.get("suggestions", ()), strict=True):
        updates = [a["resource"] for a in proposal.actions if a["type"] == "update"]
        if proposal.dose_change and updates:
            update = updates[0]
            drug = MedicationIndex().identify(update, terminology)
            after = medication_order(to_r4(update) or update, finding.order.reference, update, drug, terminology)
            keys.append((suggestion["uuid"], after.dose_key))
    return tuple(keys)
