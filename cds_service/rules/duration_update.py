"""The draft limited to fewer days (the duration card's update): its steps cut to the limit,
its bounds, supply and refills rewritten, and the quantity the kept steps take."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from cds_service.content.terminology import Drug
from cds_service.facts.dose import dosages_of, running_groups
from cds_service.facts.model import Order
from cds_service.facts.sig import bounded_days, step_days
from cds_service.facts.steps import days_of, tablets_of
from cds_service.facts.together import bounds_period, dated_days, dosing_days, own_last_days
from cds_service.facts.units import COUNT_UNITS, counts_units, unit_of, unit_word
from cds_service.fhir.dialect import dialect
from cds_service.fhir.json import as_int, as_list, as_num, as_obj, copy_json, period_last_day, to_date
from cds_service.rules import NoChange
from cds_service.rules.actions import UCUM, days, writable, writable_repeat
from cds_service.rules.safe_update import dispensed_at_most, safe_update

# (units per dose, administrations a day) of a dosage instruction, by its place in the draft's
# list and its JSON; None where it does not say.
StepSig = Callable[[int, dict[str, Any]], tuple[float | None, float | None]]
# A kept instruction, the days it keeps, and its new period where it is dated.
_Kept = tuple[dict[str, Any], int, dict[str, str] | None]
# More doses a day than this (more often than hourly) is no sig a quantity can be counted from:
# a draft with no quantity, taken "3 a second", was offered 5,443,200 tablets for 21 days.
MOST_DOSES_A_DAY = 24
# Why no update is offered, the card's words (``rules.NoChange``).
SPLIT_REASON = (
    "The shorter course cannot be split into fills like this order's, so no one-click change of "
    "its length is offered: edit the order itself."
)
BEGUN_REASON = (
    "The order's dated instructions began before it was written, not all over the same days, so "
    "no one-click change of its length is offered: edit the order itself."
)
ENDS_REASON = (
    "The order's dated instructions began before it was written and end before a shortened course "
    "from today would, so no one-click change of its length is offered: edit the order itself."
)


def with_duration(
    order: Order, limit_days: int, sig: StepSig, today: date, *, changed: Order | None = None
) -> dict[str, Any]:
    """The draft limited to ``limit_days``: bounds, supply, no refills, and the quantity the kept
    steps take, each for its own days (instructions taken together add up; a taper's steps count
    one after another). Where a step's rate is unknown, the draft's quantity in proportion to the
    days kept (``_in_proportion``). ``changed``: another card's change of the draft (the 5 mg swap,
    its drug the new product) to limit instead, capped as the swap is (``dispensed_at_most``), not
    by the swap's recount (1–2 tablets every 8 h swapped to one had 45 for 21 days)."""
    ordered, order = order, changed or order
    resource = copy_json(order.resource)
    fields = dialect(resource)
    steps = dosages_of(resource) or [{}]
    place = {id(dosage): index for index, dosage in enumerate(steps)}
    written = to_date(resource.get("authoredOn")) or today  # Epic's drafts carry no authoredOn
    plan = _dated_steps(steps, limit_days, written) or [
        (dosage, allotted, None) for dosage, allotted in _trimmed_steps(steps, limit_days)
    ]
    kept, units_needed = [], 0.0
    for dosage, allotted, period in plan:
        units, per_day = sig(place[id(dosage)], dosage)
        repeat = writable_repeat(dosage)
        for key in ("boundsPeriod", "boundsRange", "boundsDuration", "boundsQuantity"):
            repeat.pop(key, None)
        if period is not None:  # dated steps keep their dates: which run together stays said
            repeat["boundsPeriod"] = period
        else:
            repeat[fields.bounds_duration] = days(allotted)
        _cut_count(repeat, per_day, allotted)
        kept.append(dosage)
        if units and per_day and per_day <= MOST_DOSES_A_DAY:
            units_needed += units * per_day * dosing_days(dosage, allotted)  # from its start, where dated
        else:
            units_needed = math.nan
    resource["dosageInstruction"] = kept
    dispense = writable(resource, "dispenseRequest")
    dispense["expectedSupplyDuration"] = days(limit_days)
    fields.no_repeats(dispense)
    if not math.isnan(units_needed):
        dispense["quantity"] = {"value": math.ceil(units_needed - 1e-9), **_unit_of(order)}
    elif (quantity := _in_proportion(order, limit_days)) is not None:
        dispense["quantity"] = quantity
    _in_fills(ordered, changed.drug if changed else None, dispense, limit_days, plan)
    _first_fill_within(dispense, limit_days, order.drug)
    return safe_update(ordered, resource, changed.drug if changed else None)


def _in_fills(ordered: Order, drug: Drug | None, dispense: dict[str, Any], limit_days: int, plan: list[_Kept]) -> None:
    """The course's quantity in equal fills, as few as keep each within the draft's own fill (§2:
    never more at once than ordered), never more fills than the draft had: 21 tablets a week with
    3 refills, limited to 21 days at three a day, is 21 tablets with 2 refills, 7 days each. One
    fill of 21 tablets had been written "for 21 days", a week's tablets under a 21-day label.
    Only for one fixed dose counted in units, fill and course alike, and a draft with no schedule
    of fills of its own: equal fills of a taper run short in its first step, of a dose range last
    twice as long at its low end, a bottle or a box is no count of tablets (a mass is, in its
    drug's strength: ``dispensed_at_most``), and a 30-day ``dispenseInterval`` kept beside 7-day
    fills leaves weeks without (the reviews found each).
    Instructions taken together on every day kept (morning and bedtime) are one fixed dose a day.
    Where the fills cannot be split, no update (``SPLIT_REASON``): capped at the draft's one fill
    with its refills gone (``safe_update``), a week's tablets went out under the 21-day label."""
    drafted = as_obj(ordered.resource.get("dispenseRequest"))
    most_fills = 1 + max(as_int(drafted.get("numberOfRepeatsAllowed")) or 0, 0)
    quantity = dispense.get("quantity")
    if not isinstance(quantity, dict):
        return
    value, most = as_num(quantity.get("value")), dispensed_at_most(ordered, quantity, drug)  # 210 mg: 21 of 10 mg
    if not (value and most and most < value and most_fills > 1):
        return  # one fill holds it, or the draft had one: ``safe_update`` caps it
    ordered_quantity = as_obj(drafted.get("quantity"))
    converted = most != as_num(ordered_quantity.get("value"))
    if most < 1 or not (counts_units(quantity) and (converted or counts_units(ordered_quantity))):
        raise NoChange(SPLIT_REASON)
    if "dispenseInterval" in drafted or "initialFill" in drafted or not _alike_every_day(ordered, plan, limit_days):
        raise NoChange(SPLIT_REASON)  # a schedule of fills of its own, a taper or a dose range
    fills = min(math.ceil(value / most - 1e-9), most_fills)
    quantity["value"] = each = min(math.ceil(value / fills - 1e-9), math.floor(most + 1e-9))
    dispense["numberOfRepeatsAllowed"] = fills - 1
    # The whole days a fill's tablets last (a pharmacy's days supply is whole): 11 a night, 11 days.
    dispense["expectedSupplyDuration"] = days(max(math.floor(limit_days * each / value + 1e-9), 1))


def _alike_every_day(ordered: Order, plan: list[_Kept], limit_days: int) -> bool:
    """Are the same units taken each day of the course, which equal fills can carry: fixed doses
    (no range: 1–2 tablets last twice as long at one end), and one instruction, or several taken
    together on every day kept (morning and bedtime)? A taper's steps are not."""
    dosages = [dosage for dosage, _, _ in plan]
    fields = dialect(ordered.resource)  # a change of it (the swap) is in its version
    for dosage in dosages:
        places = [dosage] if fields.dose_on_dosage else [as_obj(d) for d in as_list(dosage.get("doseAndRate"))]
        if not any(isinstance(q, dict) for q in fields.doses(dosage)) and any("doseRange" in p for p in places):
            return False
    if len(plan) == 1:
        return True
    return all(allotted == limit_days for _, allotted, _ in plan) and len(running_groups(dosages)) == 1


def _first_fill_within(dispense: dict[str, Any], limit_days: int, drug: Drug | None) -> None:
    """The first fill no longer than the course nor more than its quantity: left at 30 days, the
    first fill alone would dispense what the limit took away. Each quantity is read as tablets of
    ``drug`` (``tablets_of``: 70 mg beside 21 tablets is 7), else as sent where both are in one
    unit (mL). One that cannot be compared (another unit, no value) goes: the course's own copied
    in could raise a 7-tablet trial fill."""
    fill = dispense.get("initialFill")
    if not isinstance(fill, dict):
        return
    length = as_obj(fill.get("duration"))
    if "duration" in fill and not (days_of(length) or math.inf) <= limit_days:
        fill["duration"] = days(limit_days)
    quantity, total = as_obj(fill.get("quantity")), as_obj(dispense.get("quantity"))
    value, most = tablets_of(quantity, drug), tablets_of(total, drug)
    if (value is None or most is None) and unit_of(quantity) == unit_of(total):
        value, most = as_num(quantity.get("value")), as_num(total.get("value"))
    if "quantity" in fill:
        if value is None or most is None:
            del fill["quantity"]
        elif value > most:
            fill["quantity"] = copy_json(total)
    if not fill:  # FHIR has no empty objects
        del dispense["initialFill"]


def _in_proportion(order: Order, limit_days: int) -> dict[str, Any] | None:
    """The draft's quantity cut in proportion to the days kept, rounded down (450 mL over 30 days:
    315 mL for 21), when its rate cannot be read step by step; else its units a day for the days
    (``Order.units_per_day``) at a rate a sig can be; else nothing to set, the draft having no
    quantity either."""
    ordered = as_obj(order.resource.get("dispenseRequest")).get("quantity")
    value = as_num(ordered.get("value")) if isinstance(ordered, dict) else None
    if value is not None and 0 < value < 1e9 and order.planned_days:  # else kept as sent
        value *= _fills_planned(order)
        return {**copy_json(ordered), "value": max(math.floor(value / order.planned_days * limit_days + 1e-9), 1)}
    if order.units_per_day and (order.per_day or 0) <= MOST_DOSES_A_DAY:
        return {"value": math.ceil(order.units_per_day * limit_days - 1e-9), **_unit_of(order)}
    return None


def _fills_planned(order: Order) -> int:
    """The fills the draft's planned days count: its refills too where the days come from its
    supply (§1), none where its dosage bounds give them."""
    if bounded_days(order.resource) is not None:
        return 1
    return 1 + max(as_int(as_obj(order.resource.get("dispenseRequest")).get("numberOfRepeatsAllowed")) or 0, 0)


def _cut_count(repeat: dict[str, Any], per_day: float | None, allotted: int) -> None:
    """A count of doses cut to what the step's days hold, never raised: a count that already ends
    the course sooner stays (the bounds and the count both hold, whichever comes first)."""
    for key in ("count", "countMax"):
        count = as_int(repeat.get(key))
        if count is not None and per_day:
            repeat[key] = min(count, math.ceil(per_day * allotted - 1e-9))


def _dated_steps(steps: list[dict[str, Any]], limit_days: int, written: date) -> list[_Kept] | None:
    """Steps that all date their start, none of several in a ``sequence`` (one instruction's is
    ignored: ``facts.together.dated_days``), cut by date: ``limit_days`` from the first start, each
    step starting by then kept and ended by then at the latest (steps on the same or overlapping dates
    run together: all stay), with its days and its new period. None otherwise (cut by lengths and
    sequences, ``_trimmed_steps``), as is one step not dated after the order was written, or today
    where it does not say (§2's ``boundsDuration``: never an order already over). So are several that
    began before it was written over the same days (morning and bedtime since last month): cut by date,
    they had kept the 21 days from their start, all past. Begun before it, on different days, they are
    offered no update (``BEGUN_REASON``): which step is taken now, and for how long, no date cut says.
    Begun before it and ending sooner than the limit from then, no update (``ENDS_REASON``)."""
    dated = dated_days(steps)
    if dated is None:
        return None
    first = min(start for start, _ in dated)
    if first < written and len(set(dated)) == 1 and (dated[0][1] - written).days < limit_days - 1:
        raise NoChange(ENDS_REASON)  # 11-01..11-30 written 11-21 had been given 21 days from then
    if len(steps) == 1:
        begins, ends = dated[0][0], period_last_day(bounds_period(steps[0]))
        if begins <= written or (ends is not None and ends < begins):
            return None
    if len(steps) > 1 and first < written:
        if len(set(dated)) == 1:
            return None
        raise NoChange(BEGUN_REASON)
    try:
        cutoff = first + timedelta(days=limit_days - 1)
    except OverflowError:  # a start in the year 9999
        cutoff = date.max
    kept: list[_Kept] = []
    # Each step's days to its own last day (``own_last_days``): a day two share is counted once.
    for step, (start, end), own in sorted(zip(steps, dated, own_last_days(dated), strict=True), key=lambda s: s[1][0]):
        if start <= cutoff:
            counted = (min(own, cutoff) - start).days + 1
            kept.append((step, counted, _kept_period(bounds_period(step), start, end, cutoff)))
    return kept


def _kept_period(period: dict[str, Any], start: date, end: date, cutoff: date) -> dict[str, Any]:
    """A kept step's period: as written where its last day is within the limit, a new end only
    where the limit cuts it. Rewritten at its start's time of day, a step ending 12-01T04:00Z
    after a start at 08:00 was sent back ending 12-02T08:00Z, a day at three a day more, into
    the next step's days: the update never lengthens a step."""
    if end <= cutoff:
        return copy_json(period)
    return {"start": period["start"], "end": _end_as(period, start, cutoff)}


def _end_as(period: dict[str, Any], first: date, last: date) -> str:
    """A period's new last day, written as its start is: after a start at a time of day, the next
    day at that time (read back as ending the day before: ``period_last_day``); a bare date after
    "…T15:00:00Z" reads as its midnight to an EHR, a day short. ``first`` and ``last`` as the
    steps were read, in UTC where their offsets differ (``facts.together``): moved to the start's
    own date, a step written in New York is not ended a day late."""
    start = period["start"]
    written = to_date(start) or first
    if written != first and last < date.max:
        last += written - first  # a day at most either way
    if type(start) is str and len(start) > 10 and last < date.max:  # date.max: a start late in 9999
        return (last + timedelta(days=1)).isoformat() + start[10:]
    return last.isoformat()


def _trimmed_steps(steps: list[dict[str, Any]], limit_days: int) -> list[tuple[dict[str, Any], int]]:
    """A taper's steps cut to ``limit_days`` in all, each with the days it keeps: steps run one
    after another (those sharing a ``sequence`` together), each keeps its own length while the
    limit lasts, a step of unknown length takes what is left, and steps past the limit go. One
    step simply gets the limit. Bounding every step by the limit would make a taper longer, and
    giving a group's instructions the group's length would lengthen its shorter ones."""
    if len(steps) == 1:
        return [(steps[0], limit_days)]
    remaining, trimmed = limit_days, []
    for group in ([steps[index] for index in places] for places in running_groups(steps)):
        if remaining <= 0:
            break
        lengths = [step_days(dosage) for dosage in group]
        known = [length for length in lengths if length is not None]
        allotted = max(min(remaining, math.ceil(max(known))) if known else remaining, 1)
        trimmed += [
            (dosage, allotted if length is None else max(min(allotted, math.ceil(length)), 1))
            for dosage, length in zip(group, lengths, strict=True)
        ]
        remaining -= allotted
    return trimmed


def _unit_of(order: Order) -> dict[str, str]:
    """Count units for a dispense quantity: the draft's dispensed unit when it counts units
    ("tablet", as its pharmacy reads it), else its dose unit when that does."""
    ordered = as_obj(as_obj(order.resource.get("dispenseRequest")).get("quantity"))
    if unit_of(ordered) in COUNT_UNITS:  # with its unit: none (or no quantity) takes the dose's
        return {k: ordered[k] for k in ("unit", "system", "code") if k in ordered}
    fields = dialect(order.resource)  # once: it reads every instruction
    for dosage in as_list(order.resource.get("dosageInstruction")):
        for quantity in fields.doses(dosage) if isinstance(dosage, dict) else ():
            if not isinstance(quantity, dict):
                continue
            if unit_word(quantity.get("code") or quantity.get("unit")) in COUNT_UNITS:
                return {k: quantity[k] for k in ("unit", "system", "code") if k in quantity}
    form = order.drug.dose_form if order.drug and order.drug.dose_form else "tablet"
    return {"unit": form, "system": UCUM, "code": f"{{{form}}}"}
