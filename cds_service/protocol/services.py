"""The CDS services this server offers, declared once, as data.

A service is a hook, its context model (which says what drafts the call reviews) and the
prefetch it asks for. Discovery, the 404 for unknown ids, the ``hook`` check, the OpenAPI
document and the prefetch completion all read these definitions, so adding a service for
another hook is one definition here (plus its rules): see docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from cds_service.protocol.request import HookContext, OrderSelectContext, OrderSignContext


@dataclass(frozen=True)
class PrefetchKey:
    """A prefetch template and what to do when its data cannot be had.

    ``required`` keys hold data every rule depends on (conditions, medication history):
    without them a silent answer could be a wrong one, so the call fails with 412. The
    others only sharpen cards (age, prior imaging) and degrade gracefully.
    """

    name: str
    template: str
    required: bool

    def query(self, patient_id: str) -> str:
        """The relative FHIR URL for this call's patient (only ``context.patientId`` is a token)."""
        return self.template.replace("{{context.patientId}}", quote(patient_id, safe=""))


PREFETCH: tuple[PrefetchKey, ...] = (
    PrefetchKey("patient", "Patient/{{context.patientId}}", required=False),
    PrefetchKey("conditions", "Condition?patient={{context.patientId}}", required=True),
    PrefetchKey("medications", "MedicationRequest?patient={{context.patientId}}", required=True),
    PrefetchKey("imaging", "ServiceRequest?patient={{context.patientId}}", required=False),
)


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    # The hook's context model: validates ``context`` and says which drafts are under review.
    context: type[HookContext]
    title: str
    description: str
    prefetch: tuple[PrefetchKey, ...] = PREFETCH

    def discovery(self, checks: list[str]) -> dict[str, object]:
        """The discovery entry, its description naming the checks (enabled rules) it runs."""
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": f"{self.description} Checks: {'; '.join(checks)}.",
            "prefetch": {key.name: key.template for key in self.prefetch},
        }


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
            title="Back muscle spasm: signing check",
            description=f"Guidance on the muscle relaxant and back pain orders about to be signed, {_SOURCES}",
        ),
    )
}
