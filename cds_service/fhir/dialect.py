"""The write side of FHIR versions: where a client's own draft keeps what a suggestion changes.

Suggestions send back the client's draft in its own version (``fhir.versions`` reads any
version as R4; this module writes each version as itself): STU3 and DSTU2 keep the dose on
the dosage, DSTU2 names its timing units and bounds differently, only R4 allows zero
repeats, and an imaging order is a ServiceRequest in R4, a ProcedureRequest in STU3 and a
DiagnosticOrder in DSTU2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds_service.fhir.json import as_list
from cds_service.fhir.versions import is_older_medication_request


@dataclass(frozen=True)
class Dialect:
    """Where a medication order keeps what suggestions change, in the client's own FHIR version."""

    dose_on_dosage: bool  # STU3 and DSTU2: ``dosage.doseQuantity``; R4: ``dosage.doseAndRate[].doseQuantity``
    period_unit: str
    bounds_duration: str
    # ``numberOfRepeatsAllowed`` is an unsignedInt in R4 but a positiveInt before: there, none means none.
    zero_repeats: bool
    # The resource type of a (diagnostic imaging) service order in this version.
    service_request: str
    # ``Timing.repeat.when`` is a list of codes from STU3 on, one code in DSTU2.
    when_listed: bool = True

    def when(self, code: str) -> str | list[str]:
        return [code] if self.when_listed else code

    def no_repeats(self, dispense: dict[str, Any]) -> None:
        if self.zero_repeats:
            dispense["numberOfRepeatsAllowed"] = 0
        else:
            dispense.pop("numberOfRepeatsAllowed", None)

    def set_dose(self, dosage: dict[str, Any], quantity: dict[str, Any]) -> None:
        if self.dose_on_dosage:
            for key in [k for k in dosage if k.startswith("dose")]:
                del dosage[key]
            dosage["doseQuantity"] = quantity
        else:
            dosage["doseAndRate"] = [{"doseQuantity": quantity}]

    def doses(self, dosage: dict[str, Any]) -> list[Any]:
        if self.dose_on_dosage:
            return [dosage.get("doseQuantity")]
        return [d.get("doseQuantity") for d in as_list(dosage.get("doseAndRate")) if isinstance(d, dict)]


# Each version's write side, private: ``fhir.versions.R4`` names the version, one thing by one name.
_R4_FIELDS = Dialect(
    dose_on_dosage=False,
    period_unit="periodUnit",
    bounds_duration="boundsDuration",
    zero_repeats=True,
    service_request="ServiceRequest",
)
_STU3_FIELDS = Dialect(
    dose_on_dosage=True,
    period_unit="periodUnit",
    bounds_duration="boundsDuration",
    zero_repeats=False,
    service_request="ProcedureRequest",
)
_DSTU2_FIELDS = Dialect(
    dose_on_dosage=True,
    period_unit="periodUnits",
    bounds_duration="boundsQuantity",
    zero_repeats=False,
    service_request="DiagnosticOrder",
    when_listed=False,
)


def dialect(resource: dict[str, Any]) -> Dialect:
    """The FHIR version a client's draft order is in, read off its own shape (a request does
    not say): DSTU2's MedicationOrder and DiagnosticOrder, STU3's ProcedureRequest (which has
    an ``intent``, DSTU2's does not) and dose-on-dosage MedicationRequest; otherwise R4."""
    kind = resource.get("resourceType")
    if kind in ("MedicationOrder", "DiagnosticOrder"):
        return _DSTU2_FIELDS
    if kind == "ProcedureRequest":
        return _STU3_FIELDS if "intent" in resource else _DSTU2_FIELDS
    return _STU3_FIELDS if kind == "MedicationRequest" and is_older_medication_request(resource) else _R4_FIELDS
