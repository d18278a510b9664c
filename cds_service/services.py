"""The CDS services this server offers, declared once.

Discovery, the 404 for unknown ids, the ``hook`` check and the prefetch completion all read
these definitions, so a service id lives in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


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

    def query(self, context: dict[str, object]) -> str:
        """The relative FHIR URL for this call's context (only ``context.patientId`` is used)."""
        return self.template.replace("{{context.patientId}}", quote(str(context["patientId"]), safe=""))


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


SERVICES: dict[str, ServiceDefinition] = {
    service.id: service
    for service in (
        ServiceDefinition(
            id="back-spasm-order-select",
            hook="order-select",
            title="Back muscle spasm: order guidance",
            description=(
                "Guidance on the muscle relaxant and back pain orders a clinician selects, from the "
                "drug labels, the Beers Criteria and the ACP low back pain guideline."
            ),
        ),
        ServiceDefinition(
            id="back-spasm-order-sign",
            hook="order-sign",
            title="Back muscle spasm: signing check",
            description=(
                "Guidance on the muscle relaxant and back pain orders about to be signed, from the "
                "drug labels, the Beers Criteria and the ACP low back pain guideline."
            ),
        ),
    )
}
