"""The card volume (clinical specification §2): at most one card per rule per order, and one per
call for the rules about the patient; a critical card deleting an order silences the order's
other cards and names them; a shown card drops the cards of the rules it subsumes; critical,
then warning, then info."""

from __future__ import annotations

from dataclasses import replace

from cds_service.content.cards import INDICATORS, CardCatalog
from cds_service.pipeline.cards import summary
from cds_service.rules import Finding, Rule


def apply_volume_policy(findings: list[Finding], catalog: CardCatalog, rules: list[Rule]) -> list[Finding]:
    """At most one card per rule per order, and one per call for rules about the patient
    (``once_per_call``); a critical card deleting an order silences the other cards for that
    order and names them ("Also flagged: ..."); a shown card drops the cards of the rules it
    subsumes; critical before warning before info."""
    patient_level = {rule.id for rule in rules if rule.once_per_call}

    def indicator(finding: Finding) -> str:
        return catalog.indicator(finding.rule_id, finding.variant)

    deleted = {f.order.reference for f in findings if _critical_delete(f, catalog)}
    seen: set[tuple[str, str]] = set()
    kept, suppressed = [], []
    for finding in findings:
        key = (finding.rule_id, "" if finding.rule_id in patient_level else finding.order.reference)
        if key in seen:
            continue
        if finding.order.reference in deleted and indicator(finding) != "critical":
            suppressed.append(finding)
            continue
        seen.add(key)
        kept.append(finding)
    shown = {f.rule_id for f in kept}  # once: a comprehension's inner set is built again for each rule
    subsumed = {rule_id for rule in rules if rule.id in shown for rule_id in rule.subsumes}
    kept = sorted((f for f in kept if f.rule_id not in subsumed), key=lambda f: INDICATORS.index(indicator(f)))
    # Not named among the suppressed: rules whose card shows anyway (about the patient, from another
    # order), and rules a shown or suppressed card subsumes (they would not have shown).
    flagged = {f.rule_id for f in [*kept, *suppressed]}
    not_named = {f.rule_id for f in kept} | {r for rule in rules if rule.id in flagged for r in rule.subsumes}
    return _also_flagged(kept, suppressed, catalog, not_named)


def _critical_delete(finding: Finding, catalog: CardCatalog) -> bool:
    """A critical card offering to remove its order: the one that speaks for that order."""
    return finding.deletes_order and catalog.indicator(finding.rule_id, finding.variant) == "critical"


def _also_flagged(
    kept: list[Finding], suppressed: list[Finding], catalog: CardCatalog, not_named: set[str]
) -> list[Finding]:
    """The first critical card deleting each order names the checks it suppressed for that order."""
    spoken_for: set[str] = set()
    result = []
    for finding in kept:
        reference = finding.order.reference
        if reference not in spoken_for and _critical_delete(finding, catalog):
            spoken_for.add(reference)
            # Each by its summary, facts and all: what the clinician who overrides keeps of them.
            said = (
                summary(catalog, f) for f in suppressed if f.order.reference == reference and f.rule_id not in not_named
            )
            if flagged := tuple(dict.fromkeys(said)):
                finding = replace(finding, also_flagged=flagged)
        result.append(finding)
    return result
