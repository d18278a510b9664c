"""The patient context: the hook request turned into the plain facts rules read.

This is the only module that knows FHIR shapes. Rules see orders with a dose in mg, a
number of administrations per day and a planned duration in days; conditions that are
active, with an onset; medication courses with a start and an end (clinical-rules.md §1).

Facts are read from the JSON itself, each field type-checked where it is read: validating a
resource into a fhir.resources model costs over 100 µs, and a 500-entry history would spend
most of a call on it. Only the draft orders are validated as a whole, since suggestions send
them back to the EHR; the history is read as it comes, and a field of the wrong type counts
as absent. A raw-code check also skips every resource no rule can use.
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
    """Codes of a raw CodeableConcept, or of a list of them (single objects tolerated).

    The hottest function of a large prefetch (every history entry passes here), hence ``type``
    checks rather than ``isinstance``: JSON parsing yields exact dicts, lists and strs."""
    concepts = concept if type(concept) is list else (concept,)
    codes = []
    for item in concepts:
        if type(item) is not dict:
            continue
        codings = item.get("coding")
        for coding in codings if type(codings) is list else (codings,):
            if type(coding) is dict:
                system, code = coding.get("system"), coding.get("code")
                if type(system) is str and type(code) is str:
                    display = coding.get("display")
                    codes.append(Code(system, code, display if type(display) is str else None))
    return codes


def _list(value: Any) -> list[Any]:
    """A JSON array, with a single object where an array belongs read as one element (the sandbox does that)."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: Any) -> float | None:
    """A JSON number as a float; anything else (strings, booleans) is no number."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _first(items: Iterable[Any]) -> dict[str, Any]:
    return next((item for item in items if isinstance(item, dict)), {})


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
    quantity = _obj(quantity)
    value = _num(quantity.get("value"))
    if value is None:
        return None
    unit = _str(quantity.get("unit")) or ""
    factor = _DAYS_PER_UNIT.get(_str(quantity.get("code")) or "") or _DAYS_PER_UNIT.get(unit.lower())
    return value * factor if factor else None


def _unit(quantity: dict[str, Any]) -> str:
    return (_str(quantity.get("code")) or _str(quantity.get("unit")) or "").strip("{}").lower()


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


def _dose(dosage: dict[str, Any], drug: Drug | None) -> tuple[float | None, float | None]:
    """(mg per dose, units per dose) from the first dosage instruction."""
    strength = drug.strength_mg if drug else None
    quantity: dict[str, Any] = {}
    for dose_and_rate in map(_obj, _list(dosage.get("doseAndRate"))):
        if isinstance(dose_and_rate.get("doseQuantity"), dict):
            quantity = dose_and_rate["doseQuantity"]
            break
        high = _obj(dose_and_rate.get("doseRange")).get("high")
        if isinstance(high, dict):
            quantity = high
            break
    value = _num(quantity.get("value"))
    if value is None:
        return strength, 1.0
    unit = _unit(quantity)
    if unit in _MG_FACTOR:
        mg = value * _MG_FACTOR[unit]
        return mg, (mg / strength if strength else None)
    if unit in COUNT_UNITS or unit == "":
        return (value * strength if strength else None), value
    return None, None


def _per_day(dosage: dict[str, Any], terminology: Terminology) -> float | None:
    timing = _obj(dosage.get("timing"))
    repeat = _obj(timing.get("repeat"))
    period, period_unit = _num(repeat.get("period")), _str(repeat.get("periodUnit"))
    if period is not None and period_unit:
        frequency = _num(repeat.get("frequencyMax")) or _num(repeat.get("frequency")) or 1
        period_days = period * _DAYS_PER_UNIT.get(period_unit, 0)
        if period_days > 0:
            return frequency / period_days
    code = _obj(timing.get("code"))
    for word in [c.code for c in _raw_codes(code)] + [_str(code.get("text")) or ""]:
        if word.upper() in terminology.timing_codes:
            return terminology.timing_codes[word.upper()]
    return None


def _planned_days(request: dict[str, Any], units_per_day: float | None) -> tuple[float | None, str | None]:
    """Planned duration in days and the words saying where it came from (clinical-rules.md §1)."""
    for dosage in map(_obj, _list(request.get("dosageInstruction"))):
        repeat = _obj(_obj(dosage.get("timing")).get("repeat"))
        days = _days(repeat.get("boundsDuration"))
        if days is not None:
            return days, f"a duration of {fmt_number(days)} days"
        period = _obj(repeat.get("boundsPeriod"))
        start, end = to_date(period.get("start")), to_date(period.get("end"))
        if start and end:
            return float((end - start).days), f"from {start.isoformat()} to {end.isoformat()}"
    dispense = request.get("dispenseRequest")
    if not isinstance(dispense, dict):
        return None, None
    repeats = dispense.get("numberOfRepeatsAllowed")
    repeats = repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats > 0 else 0
    refills = f" and {repeats} refill{'s' if repeats > 1 else ''}" if repeats else ""
    supply = _days(dispense.get("expectedSupplyDuration"))
    if supply is not None:
        return supply * (1 + repeats), f"a {fmt_number(supply)}-day supply{refills}"
    quantity = _obj(dispense.get("quantity"))
    value = _num(quantity.get("value"))
    if value is not None and units_per_day and _unit(quantity) in (*COUNT_UNITS, ""):
        basis = f"{fmt_number(value)} units at {fmt_number(units_per_day)} a day{refills}"
        return value / units_per_day * (1 + repeats), basis
    return None, None


def medication_order(
    facts: dict[str, Any], reference: str, resource: dict[str, Any], drug: Drug | None, terminology: Terminology
) -> Order:
    """An order read from R4 MedicationRequest JSON (``facts``); ``resource`` is the client's own JSON."""
    dosage = _first(_list(facts.get("dosageInstruction")))
    dose_mg, units_per_dose = (_finite(x) for x in _dose(dosage, drug))
    per_day = _finite(_per_day(dosage, terminology))
    units_per_day = units_per_dose * per_day if units_per_dose is not None and per_day is not None else None
    planned, basis = _planned_days(facts, _finite(units_per_day))
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
        reason_codes=tuple(_raw_codes(facts.get("reasonCode"))),
    )


def _service_order(facts: dict[str, Any], reference: str, resource: dict[str, Any]) -> Order:
    concept = facts.get("code") or facts.get("codeCodeableConcept")
    return Order(
        reference=reference,
        resource=resource,
        codes=tuple(_raw_codes(concept)),
        reason_codes=tuple(_raw_codes(facts.get("reasonCode"))),
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
    """Orders from the drafts, each validated whole (suggestions send it back): facts from its R4
    form, while the reference and the JSON that suggestions send back stay in the client's own
    FHIR version."""
    orders = []
    for raw in drafts:
        r4 = to_r4(raw)
        parsed = parse(r4 or raw, where="draftOrders")
        if parsed is None:
            continue
        model, facts = parsed
        if not model.id:
            log.warning("skipping %s in draftOrders: a draft order needs an id", raw["resourceType"])
            continue
        reference = f"{raw['resourceType']}/{model.id}"
        resource = without_nulls(raw) if r4 is not None else facts
        if facts["resourceType"] == "MedicationRequest":
            drug = medications.identify(facts, terminology)
            orders.append(medication_order(facts, reference, resource, drug, terminology))
        else:
            orders.append(_service_order(facts, reference, resource))
    return orders


def _active(raw: dict[str, Any], today: date) -> bool:
    verification = {c.code for c in _raw_codes(raw.get("verificationStatus"))}
    if verification & _EXCLUDED_VERIFICATION:
        return False
    clinical = {c.code for c in _raw_codes(raw.get("clinicalStatus"))}
    if clinical:
        return bool(clinical & _ACTIVE_CLINICAL)
    abatement = to_date(raw.get("abatementDateTime"))
    abated = (abatement is not None and abatement <= today) or any(
        raw.get(name) is not None for name in ("abatementAge", "abatementPeriod", "abatementRange", "abatementString")
    )
    return not abated


def _reference(raw: dict[str, Any]) -> str:
    return f"{raw['resourceType']}/{raw.get('id')}"


def _conditions(raws: list[dict[str, Any]], terminology: Terminology, today: date) -> list[Condition]:
    conditions = []
    for raw in raws:
        if raw.get("resourceType") != "Condition":
            continue
        codes = tuple(_raw_codes(raw.get("code")))
        if not any(map(terminology.is_relevant, codes)) or not _active(raw, today):
            continue
        onset = (
            to_date(raw.get("onsetDateTime"))
            or to_date(_obj(raw.get("onsetPeriod")).get("start"))
            or to_date(raw.get("recordedDate"))
        )
        text = _str(_obj(raw.get("code")).get("text"))
        display = text or next((c.display for c in codes if c.display), codes[0].code)
        severity = tuple(_raw_codes(raw.get("severity")))
        conditions.append(Condition(_reference(raw), codes, display, onset, severity))
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
        reference = _reference(raw)
        if reference in exclude:
            continue
        drug = medications.identify(raw, terminology)
        if drug is None or drug.ingredient not in relevant:
            continue
        order = medication_order(raw, reference, raw, drug, terminology)
        repeats = (_obj(_obj(d).get("timing")).get("repeat") for d in _list(raw.get("dosageInstruction")))
        bounds = _first(_obj(repeat).get("boundsPeriod") for repeat in repeats)
        validity = _obj(_obj(raw.get("dispenseRequest")).get("validityPeriod"))
        start = to_date(raw.get("authoredOn")) or to_date(bounds.get("start")) or to_date(validity.get("start"))
        if start is None:
            continue
        try:
            if order.planned_days is not None:
                end = start + timedelta(days=order.planned_days)
            elif status == "active":
                end = max(start, today) + timedelta(days=1)
            else:
                end = start + timedelta(days=_UNKNOWN_COURSE_DAYS)
        except OverflowError:  # a course that ends after the year 9999 is nonsense, not a course
            continue
        courses.append(Course(reference, drug, start, end, status))
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
        status = _str(raw.get("status")) or ""
        if field_name is None or status in _PROCEDURE_EXCLUDED:
            continue
        concepts = [c for c in _list(raw.get(field_name)) if isinstance(c, dict)]
        codes = _raw_codes(concepts)
        words = " ".join(
            (_str(concept.get("text")) or "") + " " + " ".join(c.display or "" for c in _raw_codes(concept))
            for concept in concepts
        )
        if not any(map(terminology.is_relevant, codes)) and not terminology.is_relevant_text(words):
            continue
        on = next((day for name in _PROCEDURE_DATES if (day := to_date(raw.get(name))) is not None), None)
        found.append(Procedure(_reference(raw), tuple(codes), words.strip(), on, status))
    return found


def _age(raws: list[dict[str, Any]], today: date) -> int | None:
    patient = next((r for r in raws if r.get("resourceType") == "Patient"), {})
    born = to_date(patient.get("birthDate"))
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
