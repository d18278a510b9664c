"""What stored feedback silences: a rule snoozed for the patient, a draft its own dose-change
swap produced, and (order-sign) the cards order-select showed today for the unchanged draft."""

from __future__ import annotations

import logging
from typing import Any

from cds_service.content.cards import QUIETABLE
from cds_service.pipeline.knowledge import Knowledge
from cds_service.rules import Finding
from cds_service.storage.records import IssuedCard, Quiet

log = logging.getLogger(__name__)


def unsilenced(findings: list[Finding], silenced: Quiet, knowledge: Knowledge) -> list[Finding]:
    kept = []
    for finding in findings:
        indicator = knowledge.catalog.indicator(finding.rule_id, finding.variant)
        quietable = indicator in QUIETABLE
        if quietable and silenced.swapped_draft(finding.rule_id, finding.order.dose_key):
            log.debug("rule %s quiet: its own dose-change swap left this draft today", finding.rule_id)
        elif quietable and silenced.snoozes(finding.rule_id, finding.subject, indicator):
            # The rule alone: its subject is drug and condition codes, said of this patient.
            log.debug("rule %s snoozed for this patient: 'don't show again' was chosen", finding.rule_id)
        else:
            kept.append(finding)
    return kept


def not_repeated(
    cards: list[dict[str, Any]], issued: list[IssuedCard], silenced: Quiet
) -> tuple[list[dict[str, Any]], list[IssuedCard]]:
    """Drop the non-critical cards an earlier hook showed today for the unchanged draft. After
    the card policy, so that what they subsumed or composed stays as the clinician saw it. A
    critical card is never dropped: asked here, not left to what ``storage.quiet`` keeps."""
    repeated = [record.indicator != "critical" and silenced.shown_today(record.draft_hash) for record in issued]
    kept = [(card, record) for card, record, again in zip(cards, issued, repeated, strict=True) if not again]
    for record, again in zip(issued, repeated, strict=True):
        if again:
            log.debug("rule %s shown at order-select today for this unchanged draft: not repeated", record.rule_id)
    return [card for card, _ in kept], [record for _, record in kept]
