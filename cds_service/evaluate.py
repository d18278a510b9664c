"""The pipeline both adapters call: hook request in, CDS Hooks response out.

    body → HookRequest → draft orders → (nothing relevant? no cards, no fetch)
         → completed prefetch → PatientContext → rules → findings → volume policy → cards

The HTTP route and ``cds-service evaluate`` differ only in what they pass in: a FHIR client
(``OFFLINE`` for the CLI), a clock, a uuid source and the quiet check backed by stored feedback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from cds_service.cards import INDICATORS, CardCatalog, load_catalog
from cds_service.context import (
    MedicationIndex,
    PatientData,
    build_context,
    build_orders,
    bundle_resources,
    draft_orders,
    under_review,
)
from cds_service.errors import DataUnavailable, InvalidRequest
from cds_service.hook_request import HookRequest, OrderContext, parse_hook_request
from cds_service.prefetch import FhirClient, Unfetchable, complete_prefetch
from cds_service.rules import Finding, Rule, RuleConfig, all_rules
from cds_service.services import ServiceDefinition
from cds_service.settings import Settings
from cds_service.terminology import Terminology, load_terminology

log = logging.getLogger(__name__)

OFFLINE = Unfetchable("this evaluation is offline: it does not call fhirServer")


@dataclass(frozen=True)
class Quiet:
    """What stored feedback silences for one patient."""

    # (rule id, order key): cards accepted for this draft order and drug, a short while ago.
    accepted: frozenset[tuple[str, str]] = frozenset()
    # Rules whose warning or info card was overridden for this patient within its snooze period.
    snoozed: frozenset[str] = frozenset()


QuietFor = Callable[[str], Awaitable[Quiet]]


@dataclass(frozen=True)
class Knowledge:
    """Everything loaded once at start-up that evaluation reads."""

    terminology: Terminology
    catalog: CardCatalog
    # Every rule with its configuration; only the enabled ones are evaluated.
    all_rules: tuple[Rule, ...]
    configs: dict[str, RuleConfig]
    # Days a rule stays quiet for a patient after its warning or info card is overridden (0: never).
    snooze_days: dict[str, int]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.all_rules if self.configs[rule.id].enabled)

    def rules_for(self, hook: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if hook in rule.hooks)


def load_knowledge(settings: Settings) -> Knowledge:
    """Terminology, card text, rules and their configuration, cross-checked: any gap stops start-up."""
    catalog = load_catalog(settings.cards_dir)
    rules = all_rules()
    for rule in rules:
        catalog.require(rule.id, rule.variants)
    return Knowledge(
        terminology=load_terminology(settings.cards_dir / "terminology", settings.local_codes_file),
        catalog=catalog,
        all_rules=rules,
        configs={rule.id: settings.rule_config(rule.id) for rule in rules},
        snooze_days={rule.id: settings.snooze_days_for(rule.id) for rule in rules},
    )


@dataclass(frozen=True)
class IssuedCard:
    """What the service remembers of a card it sent, to attribute feedback to its rule."""

    uuid: str
    rule_id: str
    order_key: str
    indicator: str


@dataclass(frozen=True)
class Evaluation:
    request: HookRequest
    context: OrderContext
    cards: list[dict[str, Any]]
    issued: list[IssuedCard]

    def response(self) -> dict[str, Any]:
        return {"cards": self.cards}


def apply_volume_policy(
    findings: list[Finding], indicator: Callable[[Finding], str], patient_level: set[str]
) -> list[Finding]:
    """One card per rule per order; a critical card deleting an order silences the rest for it;
    critical before warning before info (clinical-rules.md §2, card volume). Rules in
    ``patient_level`` speak about the patient, so they keep one card per call, taken from an
    order that stays."""
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


async def evaluate(
    service: ServiceDefinition,
    body: object,
    *,
    knowledge: Knowledge,
    today: date,
    new_uuid: Callable[[], str],
    fhir: Callable[[HookRequest], FhirClient | Unfetchable] = lambda request: OFFLINE,
    deadline: float = 2.0,
    quiet: QuietFor | None = None,
) -> Evaluation:
    request, context = parse_hook_request(body)
    if request.hook != service.hook:
        raise InvalidRequest(
            f"hook: service {service.id} answers {service.hook!r}, not {request.hook!r}", fields=["hook"]
        )
    terminology = knowledge.terminology
    raw_drafts = draft_orders(context.draftOrders)
    prefetch = request.prefetch or {}
    medications = MedicationIndex(
        [*bundle_resources(context.draftOrders), *(r for v in prefetch.values() for r in bundle_resources(v))]
    )
    drafts = build_orders(raw_drafts, terminology, medications)
    reviewed = {
        f"{r['resourceType']}/{r.get('id')}" for r in under_review(request.hook, raw_drafts, context.selections)
    }
    orders = [o for o in drafts if o.reference in reviewed]
    rules = knowledge.rules_for(request.hook)
    applicable = [rule for rule in rules if any(rule.applies_to(order, terminology) for order in orders)]
    if not applicable:
        return Evaluation(request, context, [], [])

    # Rules that read only the order (low-value therapies) are answered from what came, unfetched.
    needs_data = any(rule.needs_patient_data for rule in applicable)
    client = fhir(request) if needs_data and request.fhir_server else None
    data: PatientData = await complete_prefetch(service.prefetch, prefetch, request.context, client, deadline=deadline)
    missing = sorted(k.name for k in service.prefetch if k.required and k.name in data.unavailable)
    if missing and needs_data:
        fields = [f"prefetch.{name}" for name in missing]
        reasons = dict.fromkeys(data.unavailable[name] for name in missing)
        raise DataUnavailable(f"{', '.join(fields)}: not in the request, and {'; '.join(reasons)}", fields=fields)

    patient = build_context(
        hook=request.hook,
        patient_id=context.patientId,
        orders=orders,
        drafts=drafts,
        data=data,
        terminology=terminology,
        today=today,
    )
    indicator = knowledge.catalog.indicator
    found = [
        finding
        for rule in applicable
        for order in patient.orders
        if (finding := rule.evaluate(patient, order, terminology, knowledge.configs[rule.id])) is not None
    ]
    # Stored feedback is read only when there is a card it could silence.
    silenced = await quiet(patient.patient_id) if found and quiet is not None else Quiet()
    findings: list[Finding] = []
    for finding in found:
        if (finding.rule_id, finding.order.key) in silenced.accepted:
            log.info("rule %s quiet for %s: its card was accepted", finding.rule_id, finding.order.reference)
        elif finding.rule_id in silenced.snoozed and indicator(finding) != "critical":
            log.info("rule %s snoozed for this patient: its card was overridden", finding.rule_id)
        else:
            findings.append(finding)

    cards, issued = [], []
    patient_level = {rule.id for rule in applicable if rule.once_per_call}
    for finding in apply_volume_policy(findings, indicator, patient_level):
        card = knowledge.catalog.render(finding, new_uuid, snooze_days=knowledge.snooze_days[finding.rule_id])
        cards.append(card)
        issued.append(IssuedCard(card["uuid"], finding.rule_id, finding.order.key, card["indicator"]))
    return Evaluation(request, context, cards, issued)
