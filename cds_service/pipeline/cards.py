"""From findings to cards: the volume policy, then the card text filled in with the facts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cds_service.content.cards import (
    INDICATORS,
    OVERRIDE_REASON_SYSTEM,
    RULE_TOPIC_SYSTEM,
    SNOOZE_REASON,
    SOURCE_LABEL,
    SUMMARY_LIMIT,
    CardCatalog,
)
from cds_service.rules import Finding


def apply_volume_policy(findings: list[Finding], catalog: CardCatalog, patient_level: set[str]) -> list[Finding]:
    """One card per rule per order; a critical card deleting an order silences the rest for it;
    critical before warning before info (clinical specification §2, card volume). Rules in
    ``patient_level`` speak about the patient, so they keep one card per call, taken from an
    order that stays."""

    def indicator(finding: Finding) -> str:
        return catalog.indicator(finding.rule_id, finding.variant)

    deleted = {f.order.reference for f in findings if f.deletes_order and indicator(f) == "critical"}
    seen: set[tuple[str, str]] = set()
    kept = []
    for finding in findings:
        key = (finding.rule_id, "" if finding.rule_id in patient_level else finding.order.reference)
        if key in seen or (finding.order.reference in deleted and indicator(finding) != "critical"):
            continue
        seen.add(key)
        kept.append(finding)
    return sorted(kept, key=lambda f: INDICATORS.index(indicator(f)))


def render(
    catalog: CardCatalog, finding: Finding, new_uuid: Callable[[], str], *, snooze_days: int = 0
) -> dict[str, Any]:
    """The CDS Hooks card: no nulls, no empty strings or arrays (spec §Use of JSON).

    Warning and info cards of a rule that snoozes also offer "don't show again for this
    patient"; critical cards never do, because they are never snoozed."""
    text = catalog.texts[finding.rule_id]
    variant = text.variants[finding.variant]
    facts = finding.facts
    cited = " · ".join(f"[{e.label}]({e.url})" if e.url else e.citation for e in text.evidence)
    card: dict[str, Any] = {
        "uuid": new_uuid(),
        "summary": variant.summary.format(**facts)[: SUMMARY_LIMIT - 1],
        "detail": f"{variant.detail.format(**facts)}\n\nEvidence: {cited}",
        "indicator": variant.indicator,
        "source": {
            "label": SOURCE_LABEL,
            "topic": {"system": RULE_TOPIC_SYSTEM, "code": finding.rule_id, "display": text.title},
        },
    }
    suggestions = []
    for proposal in finding.proposals:
        if proposal.label not in variant.suggestions:
            continue
        label = variant.suggestions[proposal.label].format(**facts)
        suggestions.append(
            {
                "label": label,
                "uuid": new_uuid(),
                **({"isRecommended": True} if proposal.recommended else {}),
                "actions": [{**action, "description": label} for action in proposal.actions],
            }
        )
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    reasons = list(text.override_reasons) if variant.indicator != "info" else []
    if snooze_days and variant.indicator != "critical":
        display = catalog.snooze_display.format(days=snooze_days)
        reasons.append({"system": OVERRIDE_REASON_SYSTEM, "code": SNOOZE_REASON, "display": display})
    if reasons:
        card["overrideReasons"] = reasons
    links = [{"label": e.label, "url": e.url, "type": "absolute"} for e in text.evidence if e.url]
    if links:
        card["links"] = links
    return card
