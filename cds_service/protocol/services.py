"""The CDS services this server offers, declared once, as data.

A service is a hook, its context model (which says what drafts the call reviews) and the
prefetch it asks for. Discovery, the 404 for unknown ids, the ``hook`` check, the OpenAPI
document and the prefetch completion all read these definitions, so adding a service for
another hook is one definition here (plus its rules): see docs/architecture.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

from cds_service.errors import InvalidRequest, UnknownService, shown
from cds_service.fhir.json import is_batch
from cds_service.fhir.search import unread_total
from cds_service.fhir.versions import DSTU2, R4, STU3
from cds_service.protocol.request import HookContext, OrderSelectContext, OrderSignContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrefetchKey:
    """A prefetch template and what to do when its data cannot be had.

    ``required`` keys hold data every rule depends on (conditions, medication history):
    without them a silent answer could be a wrong one, so the call fails with 412. The
    others only sharpen cards (age, prior imaging, physical therapy ordered) and degrade gracefully.
    """

    name: str
    # The R4 template, the one discovery advertises.
    template: str
    required: bool
    # What an older server is asked instead, by FHIR version: the same data under the resource
    # types that version has (a DSTU2 server has no MedicationRequest); several are merged.
    older: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # What its search also asks for when the server says it can (``searchInclude``), not
    # advertised in the template: the Medications an order names by reference, whose display
    # (when the server sends one) would otherwise be all that names the drug.
    includes: tuple[str, ...] = ()

    @cached_property
    def types(self) -> tuple[str, ...]:
        """The resource types its templates ask for, in every FHIR version (read on every call)."""
        templates = (self.template, *(t for _, versions in self.older for t in versions))
        return tuple(dict.fromkeys(t.partition("?")[0].partition("/")[0] for t in templates))

    def queries(self, patient_id: str, version: str = R4) -> tuple[str, ...]:
        """The relative FHIR URLs that fetch this key from a server of ``version``."""
        templates = dict(self.older).get(version, (self.template,))
        return tuple(_fill(template, patient_id) for template in templates)


def _fill(template: str, patient_id: str) -> str:
    return template.replace("{{context.patientId}}", quote(patient_id, safe=""))


_BY_PATIENT = "?patient={{context.patientId}}"
PREFETCH: tuple[PrefetchKey, ...] = (
    PrefetchKey("patient", "Patient/{{context.patientId}}", required=False),
    # Condition keeps its name; DSTU2 and STU3 status codes are read by fhir/versions.py.
    PrefetchKey("conditions", f"Condition{_BY_PATIENT}", required=True),
    PrefetchKey(
        "medications",
        f"MedicationRequest{_BY_PATIENT}",
        required=True,
        older=((DSTU2, (f"MedicationOrder{_BY_PATIENT}",)),),
        includes=("MedicationRequest:medication", "MedicationOrder:medication"),
    ),
    # Every service order of the patient, not only imaging: physical therapy is read from it too. The
    # key keeps its name: it is on the wire (discovery's prefetch, what EHRs send).
    PrefetchKey(
        "imaging",
        f"ServiceRequest{_BY_PATIENT}",
        required=False,
        older=(
            (STU3, (f"ProcedureRequest{_BY_PATIENT}",)),
            (DSTU2, (f"DiagnosticOrder{_BY_PATIENT}", f"ProcedureRequest{_BY_PATIENT}")),
        ),
    ),
)


def read_prefetch(keys: tuple[PrefetchKey, ...], sent: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """The service's own keys of the prefetch sent, each checked: a FHIR resource (a Bundle, a
    Patient, an OperationOutcome) or ``null``. Keys the service never asked for are ignored
    whatever they hold: clients send more than was asked (the sandbox its own ``activeMeds``,
    HealthChain's examples plain strings), and only what the service reads can make it wrong."""
    own: dict[str, dict[str, Any] | None] = {}
    for key in keys:
        if key.name not in sent:
            continue
        value = sent[key.name]
        if value is not None and not (isinstance(value, dict) and isinstance(value.get("resourceType"), str)):
            field = f"prefetch.{key.name}"
            raise InvalidRequest(
                f"{field}: must be a FHIR resource (a Bundle for a search) or null, not {_kind(value)}",
                fields=[field],
            )
        if value is not None:
            try:
                _check_shape(value, key, f"prefetch.{key.name}")
            except InvalidRequest as error:
                if key.required:
                    raise
                # An optional key only sharpens cards: not the reason to lose them all.
                log.warning("%s: read as not sent", error)
                continue
        own[key.name] = value
    return own


def _check_shape(value: dict[str, Any], key: PrefetchKey, field: str) -> None:
    """What the key's search can answer: a Bundle (not one of Bundles: a batch's answer, nor one
    whose ``total`` is no count), an OperationOutcome, or a resource of the key's own type.
    Anything else was read as no data: a batch-response holding the Condition search hid a
    critical card; a ``total`` read as absent, that a search was cut (``fhir.search``)."""
    kind = value["resourceType"]
    if kind not in ("Bundle", "OperationOutcome", *key.types):
        expected = f"a Bundle of {' or '.join(key.types)}, an OperationOutcome or null"
        raise InvalidRequest(f"{field}: must be {expected}, not a {shown(kind)}", fields=[field])
    if kind == "Bundle" and is_batch(value):
        message = f"{field}: a batch's Bundle (of Bundles): send the search's own Bundle"
        raise InvalidRequest(message, fields=[field])
    if kind == "Bundle" and (unread := unread_total(value)) is not None:
        raise InvalidRequest(f"{field}.{unread[0]}: {unread[1]}", fields=[f"{field}.{unread[0]}"])


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object without a resourceType"
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    # The hook's context model: validates ``context`` and says which drafts are under review.
    context: type[HookContext]
    title: str
    description: str
    prefetch: tuple[PrefetchKey, ...] = PREFETCH
    # The hooks of the same ordering workflow this one follows: a non-critical card one of them
    # showed today for the unchanged draft is not repeated here (issue 15); a critical card is.
    follows: tuple[str, ...] = ()

    def discovery(self, checks: list[str]) -> dict[str, object]:
        """The discovery entry, its description naming the checks (enabled rules) it runs."""
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": f"{self.description} Checks: {'; '.join(checks)}.",
            "prefetch": {key.name: key.template for key in self.prefetch},
            "usageRequirements": self.usage_requirements(),
        }

    def usage_requirements(self) -> str:
        """What a client must send, read off the prefetch keys: without the required ones, 412."""
        required = " and ".join(key.name for key in self.prefetch if key.required)
        optional = " and ".join(key.name for key in self.prefetch if not key.required)
        return (
            f"Prefetch {required}, or send a fhirServer this service is allowed to read (with "
            f"fhirAuthorization) to fetch them from: without them the answer is HTTP 412. The {optional} "
            "keys are optional and sharpen the checks."
        )


_SOURCES = "from the drug labels, the Beers Criteria and the ACP low back pain guideline."

SERVICES: dict[str, ServiceDefinition] = {
    service.id: service
    for service in (
        ServiceDefinition(
            id="back-spasm-order-select",
            hook="order-select",
            context=OrderSelectContext,
            title="Back muscle spasm: order guidance",
            description=f"Guidance on the muscle relaxant and back pain orders a clinician selects, {_SOURCES}",
        ),
        ServiceDefinition(
            id="back-spasm-order-sign",
            hook="order-sign",
            context=OrderSignContext,
            follows=("order-select",),
            title="Back muscle spasm: signing check",
            description=f"Guidance on the muscle relaxant and back pain orders about to be signed, {_SOURCES}",
        ),
    )
}


def service_for(service_id: str) -> ServiceDefinition:
    """The service declared with this id, whether or not this site offers it (feedback on a card
    it gave stays welcome: ``Knowledge.offered_service`` says which it offers)."""
    try:
        return SERVICES[service_id]
    except KeyError:
        raise UnknownService(f"no CDS service with id {shown(service_id)}; see GET /cds-services") from None
