"""The pipeline both adapters call: hook request in, CDS Hooks response out.

    body → validate → draft orders (a drug named only by reference to a Medication the request
           lacks: read from fhirServer, the drafts read again) → (nothing any rule reads? no fetch)
         → complete prefetch → facts → rules → quiet (stored feedback) → card policy
         → suggestions composed and made safe → cards → not repeated (order-sign: what
           order-select showed today for the unchanged draft)

Each step is a call into its stage. The HTTP route and ``cds-service evaluate`` differ only in
what they pass in: a FHIR client (``OFFLINE`` for the CLI), the day, a uuid source, the quiet check.

The steps that only compute (reading the request and its drafts; facts and rules; cards) of a
large call run in a worker thread, the fetches and the stored-feedback read on the event loop: a
large call must not stop the process answering its probes and other calls (issue 16: /healthz
stalled 32 s). A small call computes where it is (``inline``): three hops to a thread and back
cost more than its whole computation (issue 17).

The stages (``read_request``, ``patient_data``, ``assess``, ``answer``) are public, timed by name (``bench/timed.py``);
``bench/then_and_now.py`` also times earlier commits' ``_read``, ``_assess`` (given the service, and the day, not
``now``), ``_answer``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cds_service.errors import DataUnavailable, InvalidRequest
from cds_service.facts.history import Course
from cds_service.facts.medications import MedicationIndex
from cds_service.facts.model import Order, PatientContext, StatusesUnread
from cds_service.facts.orders import draft_orders
from cds_service.facts.patient import build_context
from cds_service.fhir.json import full_urls
from cds_service.pipeline.cards import compose_suggestions, issued_card, render
from cds_service.pipeline.fhir_client import FhirClient, Unfetchable
from cds_service.pipeline.knowledge import Knowledge
from cds_service.pipeline.notices import NOTICES, age_said, notice_count, notices, within_limit
from cds_service.pipeline.one_patient import own_drafts
from cds_service.pipeline.prefetch import PatientData, complete_prefetch, draft_medications, unavailable
from cds_service.pipeline.request_read import given_resources, orders_under_review, validate
from cds_service.pipeline.silenced import not_repeated, unsilenced
from cds_service.pipeline.threads import off_loop
from cds_service.pipeline.unread_drafts import unread_drafts
from cds_service.pipeline.volume import apply_volume_policy
from cds_service.protocol.request import HookContext, HookRequest
from cds_service.protocol.services import SERVICES, ServiceDefinition
from cds_service.rules import Finding, Rule
from cds_service.storage.records import IssuedCard, IssuedNotice, Quiet

log = logging.getLogger(__name__)

OFFLINE = Unfetchable("this evaluation is offline: it does not call fhirServer")

# (patient id, the services whose cards shown today are not repeated) → what stored feedback silences.
QuietFor = Callable[[str, tuple[str, ...]], Awaitable[Quiet]]
FhirAccess = Callable[[HookRequest], FhirClient | Unfetchable]


@dataclass(frozen=True)
class Evaluation:
    request: HookRequest
    context: HookContext
    cards: list[dict[str, Any]]
    issued: list[IssuedCard]

    def response(self) -> dict[str, Any]:
        return {"cards": self.cards}

    @property
    def notices(self) -> list[IssuedNotice]:
        """The service's own notices (the card-limit card too): recorded apart from the rules' cards."""
        topics = ((card["uuid"], card["source"]["topic"]) for card in self.cards)
        return [IssuedNotice(uuid, topic["code"]) for uuid, topic in topics if topic["system"] == NOTICES]


@dataclass(frozen=True)
class _Call:
    """A hook request read: what the fetch and the rules start from."""

    request: HookRequest
    context: HookContext
    medications: MedicationIndex
    drafts: list[Order]
    under_review: list[Order]
    rules: list[Rule]
    # Fields of the request something naming another patient was left out of (``one_patient``).
    left_out: tuple[str, ...] = ()
    # Medications that drafts name only by reference and the request lacks (``MedicationIndex.unnamed``).
    unnamed: tuple[str, ...] = ()
    # Drafts under review naming no drug that can be read (``unread_drafts``): said not checked.
    unchecked: tuple[str, ...] = ()


async def evaluate(
    service: ServiceDefinition,
    body: object,
    *,
    knowledge: Knowledge,
    now: datetime,
    new_uuid: Callable[[], str],
    fhir: FhirAccess = lambda request: OFFLINE,
    deadline: float = 2.0,
    quiet: QuietFor | None = None,
    max_draft_orders: int,
    max_cards: int,
    inline: bool = False,
) -> Evaluation:
    """``max_draft_orders`` and ``max_cards``: what one call may ask (CDS_MAX_DRAFT_ORDERS,
    CDS_MAX_CARDS), given by each adapter from its settings: no default here to drift from theirs.
    The rules compare each draft under review with the others, so work grows with the square of
    the drafts (issue 16: 5,000 drafts took 46 s and 6 GB, and answered 1.6 GB); the default 200,
    more than a large admission order set, takes ~0.4 s at worst (all relaxants, five rules firing
    on each). ``inline``: compute on the calling thread (a small call: ``threads.computes_inline``)."""
    call = await off_loop(read_request, service, body, knowledge, max_draft_orders, inline=inline)
    client = fhir(call.request) if call.request.fhir_server and (call.unnamed or call.rules) else None
    reading: asyncio.Future[PatientData] | None = None
    if call.unnamed and isinstance(client, FhirClient):
        reread = functools.partial(off_loop, read_request, service, body, knowledge, max_draft_orders, inline=inline)
        history = functools.partial(patient_data, service, call, client, deadline)
        call, reading = await _name_drafts(call, client, deadline, reread, history)
    elif call.unnamed:
        reason = client.reason if isinstance(client, Unfetchable) else "the request has no fhirServer"
        log.warning("draftOrders: the Medications its orders name cannot be read (%s)", reason)
    left_out, partial, undated, statuses = call.left_out, frozenset[str](), tuple[Course, ...](), StatusesUnread()
    findings: list[Finding] = []
    if call.rules:
        data = await (reading or patient_data(service, call, client, deadline))
        # Said: keys read in part, the record's fetch failed, orders unread (undated ones named),
        # why the age is unknown.
        left_out, partial = left_out + data.left_out, data.not_read
        patient, findings = await off_loop(assess, call, data, knowledge, now, inline=inline)
        partial, undated = age_said(partial | patient.read_in_part, call.rules, left_out), patient.undated_orders
        statuses = patient.statuses_unread
    cards, issued = list[dict[str, Any]](), list[IssuedCard]()
    asked: frozenset[str] = frozenset()  # undated orders a card shown asks about: no notice names them
    if findings:
        # Stored feedback is read only when there is a card it could silence.
        shown_by = tuple(s.id for s in SERVICES.values() if s.hook in service.follows)
        silenced = await quiet(patient.patient_id, shown_by) if quiet is not None else Quiet()
        room = max(max_cards - notice_count(left_out, partial, call.unchecked, undated), 1)  # notices keep their place
        cards, issued, asked = await off_loop(
            answer, findings, silenced, call.rules, knowledge, new_uuid, room, call.context.userId, inline=inline
        )
    undated = tuple(course for course in undated if course.reference not in asked)
    ending = notices(left_out, partial, new_uuid, unchecked=call.unchecked, undated=undated, statuses=statuses)
    return Evaluation(call.request, call.context, [*cards, *ending], issued)


def read_request(
    service: ServiceDefinition,
    body: object,
    knowledge: Knowledge,
    max_draft_orders: int,
    fetched: list[dict[str, Any]] | None = None,
) -> _Call:
    """The request validated, its drafts read, and the rules that read any order under review;
    ``fetched``: Medications the drafts name, read from ``fhirServer``."""
    request, context = validate(service, body, max_draft_orders=max_draft_orders)
    terminology = knowledge.terminology
    medications = MedicationIndex(given_resources(service, request, context), by_url=full_urls(context.draft_bundle))
    if fetched:
        medications.add(fetched)
    raw, left_out = own_drafts(draft_orders(context.draft_bundle), context.patientId)
    drafts, under_review = orders_under_review(context, raw, terminology, medications)
    rules = [r for r in knowledge.rules_for(service.hook) if any(r.applies_to(o, terminology) for o in under_review)]
    # The drafts' Medications still unread: after a read (``fetched``), those it did not return.
    unnamed = medications.unnamed(raw, request.fhir_server or "")
    unchecked = unread_drafts(context.draft_bundle, under_review, medications)
    return _Call(request, context, medications, drafts, under_review, rules, left_out, unnamed, unchecked)


def assess(call: _Call, data: PatientData, knowledge: Knowledge, now: datetime) -> tuple[PatientContext, list[Finding]]:
    """The patient's facts at ``now``, and what the rules find in them."""
    for key in data.fetched:  # the request's own resources were given to the index in ``read_request``
        call.medications.add(data.resources[key])
    if data.medications:
        call.medications.add(list(data.medications))
    patient = build_context(
        patient_id=call.context.patientId,
        under_review=call.under_review,
        drafts=call.drafts,
        history=data.resources,
        unavailable=frozenset(data.unavailable),
        medications=call.medications,
        terminology=knowledge.terminology,
        now=now,
        zone=knowledge.zone,
        history_days=knowledge.history_days,
    )
    return patient, _findings(call.rules, patient, knowledge)


def answer(
    findings: list[Finding],
    silenced: Quiet,
    rules: list[Rule],
    knowledge: Knowledge,
    new_uuid: Callable[[], str],
    max_cards: int,
    user: str | None = None,
) -> tuple[list[dict[str, Any]], list[IssuedCard], frozenset[str]]:
    """The cards for ``user`` (``draft_hash``), within ``max_cards``; a card left out is not recorded
    as issued (not shown). And the undated orders the cards shown ask about (``Finding.names_undated``)."""
    findings = unsilenced(findings, silenced, knowledge)
    cards, issued, asks = _cards(findings, rules, knowledge, new_uuid, user)
    if user:  # with no userId, whoever signs would be the clinician order-select showed: repeat all
        cards, issued = not_repeated(cards, issued, silenced)
    shown, left = within_limit(cards, max_cards, new_uuid)
    if left:
        rule_ids = sorted({card["source"]["topic"]["code"] for card in left})
        log.warning("%d card(s) over the limit of %d not shown, of rules %s", len(left), max_cards, rule_ids)
    asked = frozenset().union(*(asks.get(card["uuid"], ()) for card in shown))
    return shown, issued[: len(cards) - len(left)], asked


async def patient_data(
    service: ServiceDefinition, call: _Call, client: FhirClient | Unfetchable | None, deadline: float
) -> PatientData:
    """The prefetch, completed from ``fhirServer``; 412 when a required key cannot be had
    (every rule reads the patient's data: the low-value therapy rule its conditions too)."""
    request, context = call.request, call.context
    data = await complete_prefetch(
        service.prefetch,
        request.prefetch or {},
        context.patientId,
        client,
        deadline=deadline,
        medications=call.medications,
    )
    missing = sorted(k.name for k in service.prefetch if k.required and k.name in data.unavailable)
    if missing:
        raise DataUnavailable(unavailable(data, missing), fields=[f"prefetch.{name}" for name in missing])
    return data


async def _name_drafts(
    call: _Call,
    client: FhirClient,
    deadline: float,
    reread: Callable[[list[dict[str, Any]]], Awaitable[_Call]],
    history: Callable[[], Awaitable[PatientData]],
) -> tuple[_Call, asyncio.Future[PatientData] | None]:
    """The drafts named by the Medications read for them, and the history's reading. Which rules
    apply waits on the drafts' drugs: the history is read meanwhile, within the one deadline, and
    dropped when no rule reads the drafts."""
    reading = asyncio.ensure_future(history())
    try:
        found, read = await draft_medications(client, call.unnamed, deadline)
        if found:  # the drafts read again, their drugs named: which rules read them may change
            call = await reread(found)
    except BaseException:  # the call cancelled (or failed): the history's reading with it
        await _dropped(reading)
        raise
    if read and call.unnamed:  # the server answered without them
        log.warning("draftOrders: %d Medication(s) its orders name not on fhirServer", len(call.unnamed))
    if not call.rules:
        await _dropped(reading)
        return call, None
    return call, reading


async def _dropped(reading: asyncio.Future[PatientData]) -> None:
    """A history read for no rule: cancelled, and what it raised retrieved, not said (a 412 for a
    call with no rule to read it). A cancellation of the call itself still reaches it."""
    reading.cancel()
    await asyncio.wait([reading])
    error = None if reading.cancelled() else reading.exception()
    if error is not None and not isinstance(error, DataUnavailable | InvalidRequest):
        log.warning("a history read for no rule failed: %s", type(error).__name__)  # not its message


def _findings(rules: list[Rule], patient: PatientContext, knowledge: Knowledge) -> list[Finding]:
    terminology = knowledge.terminology
    return [
        finding
        for rule in rules
        for order in patient.under_review
        if (finding := rule.evaluate(patient, order, terminology, knowledge.configs[rule.id])) is not None
    ]


def _cards(
    findings: list[Finding], rules: list[Rule], knowledge: Knowledge, new_uuid: Callable[[], str], user: str | None
) -> tuple[list[dict[str, Any]], list[IssuedCard], dict[str, frozenset[str]]]:
    cards, issued, asks = [], [], {}
    for finding in compose_suggestions(apply_volume_policy(findings, knowledge.catalog, rules)):
        card = render(knowledge.catalog, finding, new_uuid, snooze_days=knowledge.snooze_days[finding.rule_id])
        cards.append(card)
        if finding.names_undated:
            asks[card["uuid"]] = finding.names_undated
        issued.append(issued_card(finding, card, knowledge.catalog, knowledge.terminology, user))
    return cards, issued, asks
