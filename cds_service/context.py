"""The patient context: the hook request turned into the plain facts rules read.

This is the only module that knows FHIR shapes. Rules see orders with a dose in mg, a
number of administrations per day and a planned duration in days; conditions that are
active, with an onset; medication courses with a start and an end (clinical-rules.md §1).
Resources no rule can use are never validated: a raw-code check picks the dozen relevant
entries out of a 500-entry prefetch first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from cds_service.fhir import parse, without_nulls
from cds_service.fhir_versions import to_r4
from cds_service.terminology import Code, Drug, Terminology

log = logging.getLogger(__name__)

# Units a dose can be counted in (clinical-rules.md §1), compared without braces, lower case.
COUNT_UNITS = {"pill", "tablet", "tbl", "tab", "capsule"}
_MG_FACTOR = {"mg": 1.0, "g": 1000.0, "mcg": 0.001, "ug": 0.001}
_DAYS_PER_UNIT = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.0,
    "a": 365.0,
    "hour": 1 / 24,
    "hours": 1 / 24,
    "day": 1.0,
    "days": 1.0,
    "week": 7.0,
    "weeks": 7.0,
    "month": 30.0,
    "months": 30.0,
}
_HISTORY_STATUSES = {"active", "on-hold", "completed", "stopped"}
_ACTIVE_CLINICAL = {"active", "recurrence", "relapse"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}
_UNKNOWN_COURSE_DAYS = 14
# Draft order types, R4 and older (DSTU2 MedicationOrder, DiagnosticOrder; STU3 ProcedureRequest).
ORDER_TYPES = (
    "MedicationRequest",
    "ServiceRequest",
    "DeviceRequest",
    "MedicationOrder",
    "ProcedureRequest",
    "DiagnosticOrder",
)


@dataclass(frozen=True)
class Order:
    """A draft order. Medication fields are None when the draft does not say."""

    reference: str
    resource: dict[str, Any]
    drug: Drug | None = None
    # What a ServiceRequest or DeviceRequest orders.
    codes: tuple[Code, ...] = ()
    reason_codes: tuple[Code, ...] = ()
    dose_mg: float | None = None
    units_per_dose: float | None = None
    per_day: float | None = None
    planned_days: float | None = None
    duration_basis: str | None = None

    @property
    def key(self) -> str:
        """The order and what it orders: the sandbox reuses one draft id for every drug picked."""
        what = (self.drug.rxcui or self.drug.ingredient) if self.drug else ",".join(c.code for c in self.codes)
        return f"{self.reference}|{what}"

    @property
    def units_per_day(self) -> float | None:
        if self.units_per_dose is None or self.per_day is None:
            return None
        return self.units_per_dose * self.per_day


@dataclass(frozen=True)
class Condition:
    """An active condition from the problem list."""

    reference: str
    codes: tuple[Code, ...]
    display: str
    onset: date | None
    severity: tuple[Code, ...] = ()


@dataclass(frozen=True)
class Course:
    """A past or current medication course from the patient's history."""

    reference: str
    drug: Drug
    start: date
    end: date  # the first day after the course
    status: str = "completed"

    def active_on(self, day: date) -> bool:
        return self.start <= day < self.end

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)


@dataclass(frozen=True)
class Procedure:
    """A procedure ordered or done (ServiceRequest, ImagingStudy, DiagnosticReport) that a rule reads."""

    reference: str
    codes: tuple[Code, ...]
    text: str
    on: date | None
    status: str


@dataclass(frozen=True)
class PatientContext:
    hook: str
    patient_id: str
    today: date
    orders: tuple[Order, ...]
    drafts: tuple[Order, ...] = ()
    age: int | None = None
    conditions: tuple[Condition, ...] = ()
    courses: tuple[Course, ...] = ()
    # Relevant procedures: from the `imaging` prefetch key (every ServiceRequest) and the drafts.
    procedures: tuple[Procedure, ...] = ()
    # Keys of optional data that could not be had (e.g. "imaging"): rules say so on their cards.
    unavailable: frozenset[str] = field(default_factory=frozenset)


# --- raw FHIR helpers ---------------------------------------------------------------


def bundle_resources(value: Any) -> Iterator[dict[str, Any]]:
    """Resources in a prefetch value: a Bundle's entries, or a single resource."""
    if not isinstance(value, dict):
        return
    if value.get("resourceType") == "Bundle":
        entries = value.get("entry")
        for entry in entries if isinstance(entries, list) else ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                yield resource
    elif isinstance(value.get("resourceType"), str):
        yield value


def _raw_codes(concept: Any) -> list[Code]:
    """Codes of a raw CodeableConcept, or of a list of them (single objects tolerated)."""
    concepts = concept if isinstance(concept, list) else [concept]
    codes = []
    for item in concepts:
        if not isinstance(item, dict):
            continue
        codings = item.get("coding")
        for coding in codings if isinstance(codings, list) else [codings]:
            if (
                isinstance(coding, dict)
                and isinstance(coding.get("system"), str)
                and isinstance(coding.get("code"), str)
            ):
                codes.append(Code(coding["system"], coding["code"], coding.get("display")))
    return codes


def _codes(concepts: Iterable[Any] | Any | None) -> tuple[Code, ...]:
    """Codes of model CodeableConcepts."""
    if concepts is None:
        return ()
    if not isinstance(concepts, list):
        concepts = [concepts]
    return tuple(
        Code(c.system, c.code, c.display) for concept in concepts for c in concept.coding or () if c.system and c.code
    )


def to_date(value: Any) -> date | None:
    """A FHIR date, dateTime or partial date ("2024", "2024-03") as a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        parts = value[:10].split("-")
        try:
            return date(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1, int(parts[2]) if len(parts) > 2 else 1)
        except (ValueError, IndexError):
            return None
    return None


def _days(quantity: Any) -> float | None:
    if quantity is None or quantity.value is None:
        return None
    factor = _DAYS_PER_UNIT.get(quantity.code or "") or _DAYS_PER_UNIT.get((quantity.unit or "").lower())
    return float(quantity.value) * factor if factor else None


_PLAUSIBLE = 1e6


def _finite(number: float | None) -> float | None:
    """Absurd input (1e308 tablets a day) counts as unknown, not as an infinite duration."""
    return number if number is not None and math.isfinite(number) and abs(number) < _PLAUSIBLE else None


def fmt_number(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:.1f}"


# --- medication orders ------------------------------------------------------------


class MedicationIndex:
    """Medication resources a ``medicationReference`` may point at: contained or prefetched."""

    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self._by_ref = {
            f"Medication/{r['id']}": r for r in resources if r.get("resourceType") == "Medication" and r.get("id")
        }

    def identify(self, raw: dict[str, Any], terminology: Terminology) -> Drug | None:
        """The drug a raw MedicationRequest orders, from raw JSON (cheap: no validation)."""
        concept = raw.get("medicationCodeableConcept")
        reference = raw.get("medicationReference")
        if concept is None and isinstance(reference, dict):
            ref = str(reference.get("reference", ""))
            medication = None
            if ref.startswith("#"):
                medication = next(
                    (c for c in raw.get("contained") or () if isinstance(c, dict) and c.get("id") == ref[1:]), None
                )
            else:
                medication = self._by_ref.get(ref) or self._by_ref.get("/".join(ref.split("/")[-2:]))
            concept = (medication or {}).get("code") or {"text": reference.get("display")}
        if not isinstance(concept, dict):
            return None
        text = concept.get("text") if isinstance(concept.get("text"), str) else None
        return terminology.drug(_raw_codes(concept), text)


def _dose(dosage: Any, drug: Drug | None) -> tuple[float | None, float | None]:
    """(mg per dose, units per dose) from the first dosage instruction."""
    strength = drug.strength_mg if drug else None
    quantity = None
    for dose_and_rate in (dosage.doseAndRate or ()) if dosage else ():
        if dose_and_rate.doseQuantity is not None:
            quantity = dose_and_rate.doseQuantity
            break
        if dose_and_rate.doseRange is not None and dose_and_rate.doseRange.high is not None:
            quantity = dose_and_rate.doseRange.high
            break
    if quantity is None or quantity.value is None:
        return strength, 1.0
    value = float(quantity.value)
    unit = (quantity.code or quantity.unit or "").strip("{}").lower()
    if unit in _MG_FACTOR:
        mg = value * _MG_FACTOR[unit]
        return mg, (mg / strength if strength else None)
    if unit in COUNT_UNITS or unit == "":
        return (value * strength if strength else None), value
    return None, None


def _per_day(dosage: Any, terminology: Terminology) -> float | None:
    timing = dosage.timing if dosage else None
    if timing is None:
        return None
    repeat = timing.repeat
    if repeat is not None and repeat.period is not None and repeat.periodUnit:
        frequency = repeat.frequencyMax or repeat.frequency or 1
        period_days = float(repeat.period) * _DAYS_PER_UNIT.get(repeat.periodUnit, 0)
        if period_days > 0:
            return frequency / period_days
    for code in _codes(timing.code) or ():
        if code.code.upper() in terminology.timing_codes:
            return terminology.timing_codes[code.code.upper()]
    if timing.code is not None and (timing.code.text or "").upper() in terminology.timing_codes:
        return terminology.timing_codes[timing.code.text.upper()]
    return None


def _planned_days(request: Any, units_per_day: float | None) -> tuple[float | None, str | None]:
    """Planned duration in days and the words saying where it came from (clinical-rules.md §1)."""
    for dosage in request.dosageInstruction or ():
        repeat = dosage.timing.repeat if dosage.timing else None
        if repeat is None:
            continue
        days = _days(repeat.boundsDuration)
        if days is not None:
            return days, f"a duration of {fmt_number(days)} days"
        period = repeat.boundsPeriod
        if period is not None and period.start and period.end:
            start, end = to_date(period.start), to_date(period.end)
            if start and end:
                return float((end - start).days), f"from {start.isoformat()} to {end.isoformat()}"
    dispense = request.dispenseRequest
    if dispense is None:
        return None, None
    repeats = int(dispense.numberOfRepeatsAllowed or 0)
    refills = f" and {repeats} refill{'s' if repeats > 1 else ''}" if repeats else ""
    supply = _days(dispense.expectedSupplyDuration)
    if supply is not None:
        return supply * (1 + repeats), f"a {fmt_number(supply)}-day supply{refills}"
    quantity = dispense.quantity
    if quantity is not None and quantity.value is not None and units_per_day:
        unit = (quantity.code or quantity.unit or "").strip("{}").lower()
        if unit in COUNT_UNITS or unit == "":
            days = float(quantity.value) / units_per_day
            basis = f"{fmt_number(float(quantity.value))} units at {fmt_number(units_per_day)} a day{refills}"
            return days * (1 + repeats), basis
    return None, None


def medication_order(
    model: Any, reference: str, resource: dict[str, Any], drug: Drug | None, terminology: Terminology
) -> Order:
    dosage = (model.dosageInstruction or [None])[0]
    dose_mg, units_per_dose = (_finite(x) for x in _dose(dosage, drug))
    per_day = _finite(_per_day(dosage, terminology))
    units_per_day = units_per_dose * per_day if units_per_dose is not None and per_day is not None else None
    planned, basis = _planned_days(model, _finite(units_per_day))
    if _finite(planned) is None:
        planned, basis = None, None
    return Order(
        reference=reference,
        resource=resource,
        drug=drug,
        dose_mg=dose_mg,
        units_per_dose=units_per_dose,
        per_day=per_day,
        planned_days=planned,
        duration_basis=basis,
        reason_codes=_codes(model.reasonCode),
    )


def _service_order(model: Any, reference: str, resource: dict[str, Any]) -> Order:
    concept = getattr(model, "code", None) or getattr(model, "codeCodeableConcept", None)
    return Order(
        reference=reference,
        resource=resource,
        codes=_codes(concept),
        reason_codes=_codes(model.reasonCode),
    )


# --- building the context -----------------------------------------------------------


@dataclass(frozen=True)
class PatientData:
    """What the prefetch (completed by fetching) holds, per prefetch key."""

    resources: dict[str, list[dict[str, Any]]]
    # Keys with no data, each with why (said in the 412 answer when the key is required).
    unavailable: dict[str, str] = field(default_factory=dict)


def draft_orders(draft_bundle: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [r for r in bundle_resources(draft_bundle) if r.get("resourceType") in ORDER_TYPES]


def under_review(hook: str, drafts: list[dict[str, Any]], selections: list[str] | None) -> list[dict[str, Any]]:
    """order-select reviews the selected drafts; order-sign reviews every draft."""
    if hook == "order-select":
        wanted = set(selections or ())
        return [d for d in drafts if f"{d.get('resourceType')}/{d.get('id')}" in wanted]
    return drafts


def build_orders(drafts: list[dict[str, Any]], terminology: Terminology, medications: MedicationIndex) -> list[Order]:
    """Orders from the drafts as the client sent them: facts from their R4 form, while the
    reference and the JSON that suggestions send back stay in the client's own FHIR version."""
    orders = []
    for raw in drafts:
        r4 = to_r4(raw)
        parsed = parse(r4 or raw, where="draftOrders")
        if parsed is None:
            continue
        model, resource = parsed
        if not model.id:
            log.warning("skipping %s in draftOrders: a draft order needs an id", raw["resourceType"])
            continue
        reference = f"{raw['resourceType']}/{model.id}"
        if r4 is not None:
            resource = without_nulls(raw)
        if model.get_resource_type() == "MedicationRequest":
            drug = medications.identify(r4 or resource, terminology)
            orders.append(medication_order(model, reference, resource, drug, terminology))
        else:
            orders.append(_service_order(model, reference, resource))
    return orders


def _active(model: Any, today: date) -> bool:
    verification = {c.code for c in _codes(model.verificationStatus)}
    if verification & _EXCLUDED_VERIFICATION:
        return False
    clinical = {c.code for c in _codes(model.clinicalStatus)}
    if clinical:
        return bool(clinical & _ACTIVE_CLINICAL)
    abatement = to_date(model.abatementDateTime)
    abated = (abatement is not None and abatement <= today) or any(
        getattr(model, name, None) is not None
        for name in ("abatementAge", "abatementPeriod", "abatementRange", "abatementString")
    )
    return not abated


def _conditions(raws: list[dict[str, Any]], terminology: Terminology, today: date) -> list[Condition]:
    conditions = []
    for raw in raws:
        if raw.get("resourceType") != "Condition" or not any(map(terminology.is_relevant, _raw_codes(raw.get("code")))):
            continue
        parsed = parse(raw, where="conditions")
        if parsed is None or not _active(parsed[0], today):
            continue
        model = parsed[0]
        codes = _codes(model.code)
        onset = (
            to_date(model.onsetDateTime)
            or (to_date(model.onsetPeriod.start) if model.onsetPeriod else None)
            or to_date(model.recordedDate)
        )
        display = model.code.text or next((c.display for c in codes if c.display), codes[0].code)
        conditions.append(Condition(f"Condition/{model.id}", codes, display, onset, _codes(model.severity)))
    return conditions


def _courses(
    raws: list[dict[str, Any]],
    exclude: set[str],
    terminology: Terminology,
    medications: MedicationIndex,
    today: date,
) -> list[Course]:
    relevant = terminology.relevant_ingredients
    courses = []
    for raw in raws:
        status = raw.get("status")
        if raw.get("resourceType") != "MedicationRequest" or not isinstance(status, str):
            continue
        if status not in _HISTORY_STATUSES:
            continue
        if f"MedicationRequest/{raw.get('id')}" in exclude:
            continue
        drug = medications.identify(raw, terminology)
        if drug is None or drug.ingredient not in relevant:
            continue
        parsed = parse(raw, where="medications")
        if parsed is None:
            continue
        model, resource = parsed
        order = medication_order(model, f"MedicationRequest/{model.id}", resource, drug, terminology)
        bounds = next(
            (
                d.timing.repeat.boundsPeriod
                for d in model.dosageInstruction or ()
                if d.timing and d.timing.repeat and d.timing.repeat.boundsPeriod
            ),
            None,
        )
        validity = model.dispenseRequest.validityPeriod if model.dispenseRequest else None
        start = (
            to_date(model.authoredOn)
            or to_date(bounds.start if bounds else None)
            or to_date(validity.start if validity else None)
        )
        if start is None:
            continue
        if order.planned_days is not None:
            end = start + timedelta(days=order.planned_days)
        elif model.status == "active":
            end = max(start, today) + timedelta(days=1)
        else:
            end = start + timedelta(days=_UNKNOWN_COURSE_DAYS)
        courses.append(Course(order.reference, drug, start, end, model.status))
    return courses


_PROCEDURE_CODE_FIELDS = {
    "ServiceRequest": "code",
    "DeviceRequest": "codeCodeableConcept",
    "ImagingStudy": "procedureCode",
    "DiagnosticReport": "code",
}
_PROCEDURE_EXCLUDED = {"entered-in-error", "revoked", "cancelled"}
_PROCEDURE_DATES = ("occurrenceDateTime", "started", "effectiveDateTime", "authoredOn", "issued")


def _procedures(raws: Iterable[dict[str, Any]], terminology: Terminology) -> list[Procedure]:
    found = []
    for raw in raws:
        field_name = _PROCEDURE_CODE_FIELDS.get(str(raw.get("resourceType")))
        if field_name is None or str(raw.get("status")) in _PROCEDURE_EXCLUDED:
            continue
        concept = raw.get(field_name)
        codes = _raw_codes(concept)
        words = " ".join(
            str(item.get("text") or "") + " " + " ".join(str(c.display or "") for c in _raw_codes(item))
            for item in (concept if isinstance(concept, list) else [concept])
            if isinstance(item, dict)
        )
        if not any(map(terminology.is_relevant, codes)) and not terminology.is_relevant_text(words):
            continue
        parsed = parse(raw, where="imaging")
        if parsed is None:
            continue
        model = parsed[0]
        on = next(
            (to_date(getattr(model, n, None)) for n in _PROCEDURE_DATES if getattr(model, n, None) is not None), None
        )
        reference = f"{model.get_resource_type()}/{model.id}"
        found.append(Procedure(reference, tuple(codes), words.strip(), on, str(model.status or "")))
    return found


def _age(raws: list[dict[str, Any]], today: date) -> int | None:
    patient = next((r for r in raws if r.get("resourceType") == "Patient"), None)
    parsed = parse(patient, where="patient") if patient else None
    born = to_date(parsed[0].birthDate) if parsed else None
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def build_context(
    *,
    hook: str,
    patient_id: str,
    orders: list[Order],
    drafts: list[Order],
    data: PatientData,
    terminology: Terminology,
    today: date,
) -> PatientContext:
    # History in any FHIR version, read as R4 from here on.
    resources = {key: [to_r4(r) or r for r in raws] for key, raws in data.resources.items()}
    medications = MedicationIndex(r for raws in resources.values() for r in raws)
    exclude = {f"MedicationRequest/{o.reference.partition('/')[2]}" for o in drafts}
    draft_resources = [to_r4(o.resource) or o.resource for o in drafts]
    return PatientContext(
        hook=hook,
        patient_id=patient_id,
        today=today,
        orders=tuple(orders),
        drafts=tuple(drafts),
        age=_age(resources.get("patient", []), today),
        conditions=tuple(_conditions(resources.get("conditions", []), terminology, today)),
        courses=tuple(_courses(resources.get("medications", []), exclude, terminology, medications, today)),
        procedures=tuple(_procedures([*resources.get("imaging", []), *draft_resources], terminology)),
        unavailable=frozenset(data.unavailable),
    )
