"""The pipeline both adapters call: hook request in, CDS Hooks response out.

    body → validate → draft orders → (nothing any rule reads? no cards, no fetch)
         → complete prefetch → facts → rules → quiet (stored feedback) → card policy
         → suggestions composed and made safe → cards → not repeated (order-sign: what
           order-select showed today for the unchanged draft)

Each step is a call into its stage. The HTTP route and ``cds-service evaluate`` differ only in
what they pass in: a FHIR client (``OFFLINE`` for the CLI), the day, a uuid source and the
quiet check backed by stored feedback.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

from cds_service.content.terminology import Terminology
from cds_service.errors import DataUnavailable, InvalidRequest
from cds_service.facts.model import Order, PatientContext
from cds_service.facts.orders import MedicationIndex, draft_orders, read_orders
from cds_service.facts.patient import build_context
from cds_service.fhir.json import bundle_resources
from cds_service.pipeline.cards import apply_volume_policy, compose_suggestions, labelled, render
from cds_service.pipeline.knowledge import Knowledge
from cds_service.pipeline.prefetch import FhirClient, PatientData, Unfetchable, complete_prefetch
from cds_service.protocol.request import HookContext, HookRequest, parse_hook_request
from cds_service.protocol.services import SERVICES, ServiceDefinition
from cds_service.rules import Finding, Rule
from cds_service.storage.records import IssuedCard, Quiet

log = logging.getLogger(__name__)

OFFLINE = Unfetchable("this evaluation is offline: it does not call fhirServer")

# (patient id, the services whose cards shown today are not repeated) → what stored feedback silences.
QuietFor = Callable[[str, tuple[str, ...]], Awaitable[Quiet]]
# A non-critical card a clinician saw at an earlier hook of the same ordering workflow is not
# repeated at a later one for the unchanged draft (issue 15); a critical card always is.
EARLIER_HOOKS = {"order-sign": ("order-select",)}
FhirAccess = Callable[[HookRequest], FhirClient | Unfetchable]


@dataclass(frozen=True)
class Evaluation:
    request: HookRequest
    context: HookContext
    cards: list[dict[str, Any]]
    issued: list[IssuedCard]

    def response(self) -> dict[str, Any]:
        return {"cards": self.cards}


async def evaluate(
    service: ServiceDefinition,
    body: object,
    *,
    knowledge: Knowledge,
    today: date,
    new_uuid: Callable[[], str],
    fhir: FhirAccess = lambda request: OFFLINE,
    deadline: float = 2.0,
    quiet: QuietFor | None = None,
) -> Evaluation:
    request, context = validate(service, body)
    terminology = knowledge.terminology
    medications = MedicationIndex(_given_resources(request, context))
    drafts, orders = _orders(context, terminology, medications)
    rules = [rule for rule in knowledge.rules_for(service.hook) if any(rule.applies_to(o, terminology) for o in orders)]
    if not rules:
        return Evaluation(request, context, [], [])

    data = await _patient_data(service, request, context, rules, fhir, deadline)
    medications.add(r for resources in data.resources.values() for r in resources)
    patient = build_context(
        hook=service.hook,
        patient_id=context.patientId,
        orders=orders,
        drafts=drafts,
        history=data.resources,
        unavailable=frozenset(data.unavailable),
        medications=medications,
        terminology=terminology,
        today=today,
    )
    findings = _findings(rules, patient, knowledge)
    # Stored feedback is read only when there is a card it could silence.
    shown_by = tuple(s.id for s in SERVICES.values() if s.hook in EARLIER_HOOKS.get(service.hook, ()))
    silenced = await quiet(patient.patient_id, shown_by) if findings and quiet is not None else Quiet()
    findings = _unsilenced(findings, silenced, knowledge)
    cards, issued = _not_repeated(*_cards(findings, rules, knowledge, new_uuid), silenced.shown)
    return Evaluation(request, context, cards, issued)


def validate(service: ServiceDefinition, body: object) -> tuple[HookRequest, HookContext]:
    """The envelope and the context, validated for this service's hook."""
    request, context = parse_hook_request(body, service.context)
    if request.hook != service.hook:
        raise InvalidRequest(
            f"hook: service {service.id} answers {service.hook!r}, not {request.hook!r}", fields=["hook"]
        )
    return request, context


def _given_resources(request: HookRequest, context: HookContext) -> list[dict[str, Any]]:
    """What came with the request: the draft Bundle and the prefetch, as sent."""
    given = list(bundle_resources(context.draft_bundle))
    for value in (request.prefetch or {}).values():
        given.extend(bundle_resources(value))
    return given


def _orders(
    context: HookContext, terminology: Terminology, medications: MedicationIndex
) -> tuple[list[Order], list[Order]]:
    """Every draft order, and those under review (the hook's context says which)."""
    raw = draft_orders(context.draft_bundle)
    drafts = read_orders(raw, terminology, medications)
    reviewed = {f"{r['resourceType']}/{r.get('id')}" for r in context.under_review(raw)}
    return drafts, [order for order in drafts if order.reference in reviewed]


async def _patient_data(
    service: ServiceDefinition,
    request: HookRequest,
    context: HookContext,
    rules: list[Rule],
    fhir: FhirAccess,
    deadline: float,
) -> PatientData:
    """The prefetch, completed from ``fhirServer``; 412 when a required key cannot be had.
    Rules that read only the order (low-value therapies) are answered from what came, unfetched."""
    needs_data = any(rule.needs_patient_data for rule in rules)
    client = fhir(request) if needs_data and request.fhir_server else None
    data = await complete_prefetch(
        service.prefetch, request.prefetch or {}, context.patientId, client, deadline=deadline
    )
    missing = sorted(k.name for k in service.prefetch if k.required and k.name in data.unavailable)
    if missing and needs_data:
        fields = [f"prefetch.{name}" for name in missing]
        reasons = dict.fromkeys(data.unavailable[name] for name in missing)
        raise DataUnavailable(f"{', '.join(fields)}: not in the request, and {'; '.join(reasons)}", fields=fields)
    return data


def _findings(rules: list[Rule], patient: PatientContext, knowledge: Knowledge) -> list[Finding]:
    terminology = knowledge.terminology
    return [
        finding
        for rule in rules
        for order in patient.orders
        if (finding := rule.evaluate(patient, order, terminology, knowledge.configs[rule.id])) is not None
    ]


def _unsilenced(findings: list[Finding], silenced: Quiet, knowledge: Knowledge) -> list[Finding]:
    kept = []
    for finding in findings:
        if (finding.rule_id, finding.order.key) in silenced.swapped:
            log.info("rule %s quiet: its own dose-change swap left this draft today", finding.rule_id)
        elif (
            finding.rule_id in silenced.snoozed
            and knowledge.catalog.indicator(finding.rule_id, finding.variant) != "critical"
        ):
            log.info("rule %s snoozed for this patient: 'don't show again' was chosen", finding.rule_id)
        else:
            kept.append(finding)
    return kept


def _cards(
    findings: list[Finding], rules: list[Rule], knowledge: Knowledge, new_uuid: Callable[[], str]
) -> tuple[list[dict[str, Any]], list[IssuedCard]]:
    cards, issued = [], []
    for finding in compose_suggestions(apply_volume_policy(findings, knowledge.catalog, rules)):
        card = render(knowledge.catalog, finding, new_uuid, snooze_days=knowledge.snooze_days[finding.rule_id])
        cards.append(card)
        issued.append(
            IssuedCard(
                card["uuid"],
                finding.rule_id,
                finding.order.key,
                card["indicator"],
                _keys_after_dose_change(finding, card, knowledge),
                finding.order.reference,
                draft_hash(finding, card),
            )
        )
    return cards, issued


def _not_repeated(
    cards: list[dict[str, Any]], issued: list[IssuedCard], shown: frozenset[str]
) -> tuple[list[dict[str, Any]], list[IssuedCard]]:
    """Drop the non-critical cards an earlier hook showed today for the unchanged draft. After
    the card policy, so that what they subsumed or composed stays as the clinician saw it."""
    kept = [
        (card, record)
        for card, record in zip(cards, issued, strict=True)
        if card["indicator"] == "critical" or record.draft_hash not in shown
    ]
    for record in issued:
        if record.indicator != "critical" and record.draft_hash in shown:
            log.info("rule %s shown at order-select today for this unchanged draft: not repeated", record.rule_id)
    return [card for card, _ in kept], [record for _, record in kept]


def draft_hash(finding: Finding, card: dict[str, Any]) -> str:
    """What makes a card "the same card for the unchanged draft": the rule, the draft's id and
    every fact of it a rule reads (drug, dose, frequency, duration, codes, reasons), and what the
    card says (indicator, summary, detail). An edit any rule could read, or new patient data
    that changes the card's words, makes a new hash; a re-fire or a change no rule reads does not."""
    order = finding.order
    relevant = {
        "rule": finding.rule_id,
        "draft": order.reference,
        "drug": asdict(order.drug) if order.drug else None,
        "codes": sorted(code.key for code in order.codes),
        "reasons": sorted(code.key for code in order.reason_codes),
        "dose": [order.dose_mg, order.units_per_dose, order.per_day, order.planned_days, order.duration_basis],
        "card": [card["indicator"], card["summary"], card.get("detail")],
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def _keys_after_dose_change(
    finding: Finding, card: dict[str, Any], knowledge: Knowledge
) -> tuple[tuple[str, str], ...]:
    """For each dose-change suggestion, the order key the draft has once it is accepted: its rule
    stays quiet for that draft although the drug changed (the 5 mg tablet that came from
    accepting the older-adult swap does not bring the rule's info card back)."""
    keys = []
    proposals = labelled(finding, knowledge.catalog)
    for proposal, suggestion in zip(proposals, card.get("suggestions", ()), strict=True):
        updates = [a["resource"] for a in proposal.actions if a["type"] == "update"]
        if proposal.dose_change and updates:
            drug = MedicationIndex().identify(updates[0], knowledge.terminology)
            keys.append((suggestion["uuid"], replace(finding.order, drug=drug).key))
    return tuple(keys)
