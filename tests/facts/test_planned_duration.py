"""Planned duration, read off the duration card's "N days planned": Period.end inclusive, tapers,
units, doses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.facts.orders import LAST_YEAR_REASON
from tests.conftest import SELECT
from tests.facts.conftest import (
    days,
    duration_card,
    hook,
    planned,
    quantity,
    step,
)


@pytest.mark.parametrize(
    ("end", "expected"),
    [("2026-12-21", None), ("2026-12-22", "22 days planned")],
    ids=["21-days-inclusive-silent", "22-days-inclusive-fires"],
)
def test_bounds_period_counts_its_end_day(client: TestClient, end: str, expected: str | None) -> None:
    """2026-12-01..2026-12-21 is 21 days (at the limit), ..12-22 is 22."""
    request = hook(dosage=[step(bounds=("2026-12-01", end))], dispense={})
    assert planned(client, request) == expected
    if expected:
        card = duration_card(client, request)
        assert card is not None and f"from 2026-12-01 to {end}" in card["detail"]


@pytest.mark.parametrize("offset", ["-05:00", "+01:00"])
def test_whole_local_days_with_a_time_zone_count_as_written(client: TestClient, offset: str) -> None:
    """From 00:00 on the 1st to 23:59 on the 21st, local time, is 21 days in any zone (read as
    UTC days: 22 in New York and in Paris, and a warning for a course at the limit)."""
    bounds = (f"2026-12-01T00:00:00{offset}", f"2026-12-21T23:59:59{offset}")
    assert planned(client, hook(dosage=[step(bounds=bounds)], dispense={})) is None


@pytest.mark.parametrize("timezone", ["America/Chicago", "UTC"])
@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        (("2026-12-01T15:00:00Z", "2026-12-22T05:59:59Z"), "22 days planned"),  # 09:00 to 23:59 in Chicago, in UTC
        (("2026-12-01T09:00:00-06:00", "2026-12-21T23:59:59-06:00"), None),  # the same, sent with its offset
    ],
    ids=["in-utc", "local"],
)
def test_known_limitation_utc_instants_west_of_utc_read_a_day_longer_whatever_the_site_zone(
    make_client: Callable[..., TestClient], timezone: str, bounds: tuple[str, str], expected: str | None
) -> None:
    """A known limitation, documented in docs/integrating.md#dates-and-time-zones ("Send local
    times"; "An EHR" step 4): a time is read on its own date as written, and CDS_TIMEZONE (today's
    date) does not change that, so a course sent in UTC from west of it reads a day longer. Pinned
    so that lifting it is seen: then this test and those sections change together."""
    client = make_client(timezone=timezone)
    assert planned(client, hook(dosage=[step(bounds=bounds)], dispense={})) == expected


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        (("2026-12-07T06:00:00Z", "2026-12-28T06:00:00Z"), None),  # Epic: start + 21 × 24 h
        (("2026-12-07T00:00:00-06:00", "2026-12-28T00:00:00-06:00"), None),  # midnight to midnight
        (("2027-03-01T08:00:00-06:00", "2027-03-22T08:00:00-05:00"), None),  # across a change of clock
        (("2026-12-07T06:00:00Z", "2026-12-28T06:00:01Z"), "22 days planned"),  # a second into a 22nd day
        (("2026-12-07T21:00:00-06:00", "2026-12-28T08:00:00-06:00"), "22 days planned"),  # doses on 22 dates
        (("2026-12-07T06:00:00Z", "2026-12-28"), "22 days planned"),  # an end date alone: that day is used
    ],
    ids=["epic-21-days", "midnight-to-midnight", "clock-change", "past-21-days", "evening-to-morning", "a-date"],
)
def test_a_period_ending_at_the_time_of_day_it_starts_ends_the_day_before(
    client: TestClient, bounds: tuple[str, str], expected: str | None
) -> None:
    """EHRs write a 21-day course as 21 × 24 hours (06:00Z to 06:00Z three weeks on), whose end
    falls on a 22nd date when no dose is due: read by its dates, a course at the limit drew a
    warning and a one-click cut. An end at another time of day is a day of use (§1)."""
    assert planned(client, hook(dosage=[step(bounds=bounds)], dispense={})) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-12-01", "2026-12", "31 days planned"),
        ("2026-12-01", "2027", "396 days planned"),
        ("2026-12", "2026-12", "31 days planned"),
    ],
    ids=["month", "year", "month-to-month"],
)
def test_a_partial_end_date_ends_on_the_last_day_it_covers(
    client: TestClient, start: str, end: str, expected: str
) -> None:
    """FHIR: "the end value includes any matching date/time" (§1): an end of "2026-12" is the
    31st, not the 1st (read as the 1st, the course was one day long, and no card came)."""
    assert planned(client, hook(dosage=[step(bounds=(start, end))], dispense={})) == expected


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (3, "wk", None),
        (1, "mo", "30 days planned"),
        (504, "h", None),
        (505, "h", "21.04 days planned"),  # over the limit, and never shown as "21.0"
        (504.1, "h", "21.004 days planned"),  # not "21", nor "21.01" (rounded away from 21)
        (21.0000000001, "d", "21.0000000001 days planned"),  # as sent: "21.01" was neither it nor a rounding
        (528, "h", "22 days planned"),
    ],
)
def test_duration_units(client: TestClient, value: float, unit: str, expected: str | None) -> None:
    """wk = 7 days, mo = 30 days, h = 1/24 day."""
    request = hook(dosage=[step(duration=days(value, unit))], dispense={})
    assert planned(client, request) == expected


def test_taper_spans_earliest_start_to_latest_end(client: TestClient) -> None:
    """Three steps given out of order: from the earliest start to the latest end, both included."""
    taper = [
        step(1, bounds=("2026-12-15", "2026-12-22")),
        step(3, bounds=("2026-12-01", "2026-12-07")),
        step(2, bounds=("2026-12-08", "2026-12-14")),
    ]
    request = hook(dosage=taper, dispense={})
    assert planned(client, request) == "22 days planned"
    card = duration_card(client, request)
    assert card is not None and "from 2026-12-01 to 2026-12-22" in card["detail"]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([(7, None), (7, None), (8, None)], "22 days planned"),
        ([(7, None), (7, None), (7, None)], None),
        ([(14, 1), (10, 1), (8, 2)], "22 days planned"),
        ([(14, 1), (14, 1), (7, 2)], None),
    ],
    ids=["steps-add-up-22", "steps-add-up-21", "same-sequence-together-22", "same-sequence-together-21"],
)
def test_taper_of_durations_adds_its_steps(
    client: TestClient, steps: list[tuple[int, int | None]], expected: str | None
) -> None:
    """boundsDuration steps run one after another; instructions sharing a ``sequence`` run together."""
    taper = [step(duration=days(length), sequence=sequence) for length, sequence in steps]
    assert planned(client, hook(dosage=taper, dispense={})) == expected


def test_taper_reads_the_highest_frequency(client: TestClient) -> None:
    """66 tablets at the highest frequency (three a day) last 22 days, not 66."""
    request = hook(dosage=[step(1), step(3)], dispense=quantity(66))
    assert planned(client, request) == "22 days planned"


def test_taper_reads_the_highest_dose(client: TestClient) -> None:
    """132 tablets at two tablets three times a day (the highest step) last 22 days."""
    request = hook(dosage=[step(3, units=1), step(3, units=2)], dispense=quantity(132))
    assert planned(client, request) == "22 days planned"


@pytest.mark.parametrize(("dispensed", "expected"), [(63, None), (66, "22 days planned")])
def test_instructions_taken_together_add_up_their_units(
    client: TestClient, dispensed: int, expected: str | None
) -> None:
    """One tablet in the morning and two at bedtime, one ``sequence``: three a day, so 63 tablets
    last 21 days (read as the highest dose at the highest frequency, two a day: 31.5 days, a card
    whose own update then kept all 63 tablets for 21 days)."""
    request = hook(dosage=[step(1, units=1, sequence=1), step(1, units=2, sequence=1)], dispense=quantity(dispensed))
    assert planned(client, request) == expected


def _as_strings(step: dict[str, Any]) -> dict[str, Any]:
    repeat = step["timing"]["repeat"]
    repeat.update(frequency=str(repeat["frequency"]), period=str(repeat["period"]))
    dose = step["doseAndRate"][0]["doseQuantity"]
    dose["value"] = str(dose["value"])
    return step


@pytest.mark.parametrize(
    ("dosage", "dispense", "expected"),
    [
        ([_as_strings(step(3, units=2))], quantity(132), "22 days planned"),
        ([step(3)], {"expectedSupplyDuration": days(14), "numberOfRepeatsAllowed": "2"}, "42 days planned"),
        ([step(3)], {"expectedSupplyDuration": days(14), "numberOfRepeatsAllowed": 2.0}, "42 days planned"),
    ],
    ids=["dose-and-frequency", "refills-as-a-string", "refills-as-a-decimal"],
)
def test_numbers_sent_as_strings_are_read_as_the_numbers_they_say(
    client: TestClient, dosage: list[dict[str, Any]], dispense: dict[str, Any], expected: str
) -> None:
    """FHIR's JSON numbers sent as strings ("3") or whole numbers as decimals (2.0), as the R4
    model itself reads them: read as absent they became defaults (once a day, one unit, no
    refills) and a card said a third of the days, or came not at all."""
    assert planned(client, hook(dosage=dosage, dispense=dispense)) == expected


@pytest.mark.parametrize(
    ("repeat", "dispensed"),
    [
        ({"timeOfDay": ["08:00:00", "14:00:00", "20:00:00"]}, 66),
        ({"when": ["MORN", "NIGHT"], "period": 1, "periodUnit": "d"}, 44),
    ],
    ids=["three-times-of-day", "morning-and-night"],
)
def test_times_of_day_say_how_often(client: TestClient, repeat: dict[str, Any], dispensed: int) -> None:
    """Each time of day (``timeOfDay``, ``when``) is a dose when no frequency says otherwise: 66
    tablets at three times of day last 22 days (read as once a day: 66 days)."""
    dosage = step()
    dosage["timing"]["repeat"] = repeat
    assert planned(client, hook(dosage=[dosage], dispense=quantity(dispensed))) == "22 days planned"


def test_a_timing_code_says_how_often_whatever_its_times_of_day(client: TestClient) -> None:
    """TID with meals (code TID, when C): three a day, 66 tablets 22 days; the one meal code is
    no frequency of one a day (it read 66 days, and the update dispensed a third of the days)."""
    dosage = step()
    dosage["timing"] = {"code": {"coding": [{"code": "TID"}], "text": "TID"}, "repeat": {"when": ["C"]}}
    assert planned(client, hook(dosage=[dosage], dispense=quantity(66))) == "22 days planned"


@pytest.mark.parametrize(
    ("timing_code", "expected"),
    [
        ({"text": "3 times daily"}, "22 days planned"),  # Epic's frequency words
        ({"text": "Every 8 hours as needed"}, "22 days planned"),  # as needed: the most often allowed
        (
            {"coding": [{"system": "https://fhir.cerner.com/x/codeSet/4003", "code": "696540", "display": "q8hr"}]},
            "22 days planned",
        ),
        ({"text": "three times a day with meals"}, None),  # not the whole phrase: no rate
        ({"text": "2 daily"}, None),  # two a day, or two tablets once a day?
        ({"text": "1000 times daily"}, None),  # no sig: more often than hourly
        ({"coding": [{"system": "https://fhir.cerner.com/x/codeSet/4003", "code": "q8hr"}]}, "22 days planned"),
    ],
    ids=["times-daily", "every-8-hours-as-needed", "local-display-q8hr", "more-words", "2-daily", "1000", "local-code"],
)
def test_a_timing_code_of_words_alone_says_how_often(
    client: TestClient, timing_code: dict[str, Any], expected: str | None
) -> None:
    """No code of the timing-abbreviation set, only its words (Epic's text, Oracle Health's local
    code and its display): 66 tablets read as a duration not said, an info card where the order
    plans 22 days; now read when the words are the whole phrase."""
    dosage = step()
    dosage["timing"] = {"code": timing_code}
    request = hook(dosage=[dosage], dispense=quantity(66))
    card = duration_card(client, request)
    assert card is not None
    if expected is None:
        assert card["indicator"] == "info"  # "Specify a duration"
    else:
        assert planned(client, request) == expected and card["indicator"] == "warning"


def test_dose_range_reads_its_high_end(client: TestClient) -> None:
    dosage = step(3, units=None)
    dosage["doseAndRate"] = [
        {"doseRange": {"low": {"value": 1, "code": "{tbl}"}, "high": {"value": 2, "code": "{tbl}"}}}
    ]
    assert planned(client, hook(dosage=[dosage], dispense=quantity(132))) == "22 days planned"


def test_absent_dose_is_one_unit(client: TestClient) -> None:
    assert planned(client, hook(dosage=[step(3, units=None)], dispense=quantity(66))) == "22 days planned"


COUNTS = ["{pill}", "{tablet}", "{tbl}", "TAB", "tablet", "capsule", "{capsule}", "tablets", "Capsules", "tabs"]


@pytest.mark.parametrize("unit", COUNTS)
def test_dose_counted_in_units(client: TestClient, unit: str) -> None:
    """Two units three times a day: 132 units last 22 days."""
    request = hook(dosage=[step(3, units=2, unit=unit)], dispense=quantity(132))
    assert planned(client, request) == "22 days planned"


@pytest.mark.parametrize("unit", COUNTS)
def test_dispensed_quantity_counted_in_units(client: TestClient, unit: str) -> None:
    """ "132 tablets" (as some EHRs spell the unit) at two three times a day: 22 days."""
    dispense = {"quantity": {"value": 132, "unit": unit.strip("{}")}}
    assert planned(client, hook(dosage=[step(3, units=2)], dispense=dispense)) == "22 days planned"


@pytest.mark.parametrize(
    "coded",
    [
        {"unit": "Tablet", "code": "C48542", "system": "http://ncimeta.nci.nih.gov"},  # NCPDP's, by NCI concept
        {"unit": "tablet", "code": "1", "system": "http://unitsofmeasure.org"},  # UCUM's "1", shown as tablets
    ],
    ids=["ncpdp", "ucum-1-shown-as-tablets"],
)
def test_a_dispensed_quantity_coded_otherwise_is_counted_by_its_words(
    client: TestClient, coded: dict[str, str]
) -> None:
    """A code the rules do not know leaves the unit to its words: "132 Tablet" read as no count
    asked for a duration the order states."""
    dispense = {"quantity": {"value": 132, **coded}}
    assert planned(client, hook(dosage=[step(3, units=2)], dispense=dispense)) == "22 days planned"


@pytest.mark.parametrize(
    ("coded", "said"),
    [
        ({"unit": "Tablet", "code": "C48542", "system": "http://ncimeta.nci.nih.gov"}, "132 tablets"),
        ({"unit": "tablet", "code": "{tablet}"}, "132 tablets"),
        ({"unit": "Capsules"}, "132 capsules"),
        ({}, "132 units"),  # no unit: what it counts is not said
    ],
    ids=["ncpdp", "ucum-tablet", "capsules", "no-unit"],
)
def test_a_dispensed_count_is_named_in_its_units(client: TestClient, coded: dict[str, str], said: str) -> None:
    """A pharmacist reads "(132 units at 6 a day)" of tablets as a unit not known."""
    card = duration_card(client, hook(dosage=[step(3, units=2)], dispense={"quantity": {"value": 132, **coded}}))
    assert card is not None and f"({said} at 6 a day)" in card["detail"]


def test_a_supply_a_hair_over_the_limit_is_said_as_sent(client: TestClient) -> None:
    """A supply of 21.0000000001 days was "21.01 days planned" ("a 21.01-day supply"): a number
    neither sent nor a rounding of it (an adversarial review). As sent, and still not "21"."""
    dispense = {"expectedSupplyDuration": {**days(21.0000000001), "unit": "days"}}
    card = duration_card(client, hook(dosage=[step(1)], dispense=dispense))
    assert card is not None
    assert card["summary"].endswith(": 21.0000000001 days planned")
    assert "(a 21.0000000001-day supply)" in card["detail"]
    assert "21.01" not in str(card)


@pytest.mark.parametrize(("repeats", "expected"), [(0, None), (1, "42 days planned"), (-1, None)])
def test_a_dispensed_quantity_lasts_once_more_a_refill(client: TestClient, repeats: int, expected: str | None) -> None:
    """63 tablets three times a day last 21 days, and a refill 21 more (§1: quantity ÷ units per
    day × (1 + repeats)); a negative count of refills is none."""
    dispense = {**quantity(63), "numberOfRepeatsAllowed": repeats}
    assert planned(client, hook(dosage=[step(3)], dispense=dispense)) == expected


def test_a_frequency_up_to_a_maximum_reads_the_maximum(client: TestClient) -> None:
    """One to three times a day (§1: ``frequencyMax`` before ``frequency``): 66 tablets, 22 days."""
    dosage = step(1)
    dosage["timing"]["repeat"]["frequencyMax"] = 3
    assert planned(client, hook(dosage=[dosage], dispense=quantity(66))) == "22 days planned"


_INCOMPLETE = "The order as sent is incomplete, so no edit to it can be offered."
_AT_MOST_ZERO = "The order gives an amount of zero or less, so no edit to it can be offered: correct the order."


@pytest.mark.parametrize(
    ("per_day", "units", "reason"),
    # A dose of zero or less the R4 model takes (a decimal); a frequency it refuses (a positiveInt).
    [(1, -10, _AT_MOST_ZERO), (1, 0, _AT_MOST_ZERO), (-3, 1, _INCOMPLETE), (0, 1, _INCOMPLETE)],
)
def test_a_dose_or_frequency_of_zero_or_less_is_unknown_and_no_edit_is_offered(
    client: TestClient, per_day: int, units: float, reason: str
) -> None:
    """The 30 days still come from the bounds, but a draft that doses nothing or less is not sent
    back as if it were sound (a -10 mg dose once made the update dispense -21 tablets), and the
    card says why."""
    request = hook(dosage=[step(per_day, units=units, duration=days(30))], dispense={})
    assert planned(client, request) == "30 days planned"
    card = duration_card(client, request)
    assert card is not None
    assert "suggestions" not in card
    assert reason in card["detail"]


@pytest.mark.parametrize("unit", ["each", "ea", "1"])
def test_a_dispensed_quantity_in_packages_says_no_duration(client: TestClient, unit: str) -> None:
    """ "1 each" may be one bottle: read as a third of a day's tablets it would hide the card that
    asks for a duration."""
    dispense = {"quantity": {"value": 1, "unit": unit}}
    card = duration_card(client, hook(dosage=[step(3)], dispense=dispense))
    assert card is not None and card["indicator"] == "info"


def test_dose_in_an_uncountable_unit_leaves_the_duration_unknown(client: TestClient) -> None:
    card = duration_card(client, hook(dosage=[step(3, units=5, unit="mL")], dispense=quantity(132)))
    assert card is not None and card["indicator"] == "info"


def _update(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    card = duration_card(client, request)
    assert card is not None
    [update] = [a for s in card["suggestions"] for a in s["actions"] if a["type"] == "update"]
    return update["resource"]


def _kept_days(repeat: dict[str, Any]) -> int:
    """A step's days in an update: its boundsDuration, or its boundsPeriod counted inclusively (a
    dated step keeps its dates)."""
    if "boundsDuration" in repeat:
        return int(repeat["boundsDuration"]["value"])
    period = repeat["boundsPeriod"]
    return (date.fromisoformat(period["end"]) - date.fromisoformat(period["start"])).days + 1


@pytest.mark.parametrize(
    "taper",
    [
        [step(3, duration=days(10)), step(2, duration=days(10)), step(1, duration=days(10))],
        [
            step(1, bounds=("2026-12-21", "2026-12-30")),
            step(3, bounds=("2026-12-01", "2026-12-10")),
            step(2, bounds=("2026-12-11", "2026-12-20")),
        ],
    ],
    ids=["durations", "dated-out-of-order"],
)
def test_accepting_the_duration_limit_of_a_taper_leaves_21_days(
    client: TestClient, taper: list[dict[str, Any]]
) -> None:
    """The update trims the steps in the order they run to 21 days in all (10 + 10 + 1), not 21 each."""
    request = hook(dosage=taper, dispense={})
    assert planned(client, request) == "30 days planned"
    resource = _update(client, request)
    kept = [
        (s["timing"]["repeat"]["frequency"], _kept_days(s["timing"]["repeat"])) for s in resource["dosageInstruction"]
    ]
    assert kept == [(3, 10), (2, 10), (1, 1)]
    request["context"]["draftOrders"]["entry"][0]["resource"] = resource
    assert duration_card(client, request) is None  # 21 days: at the limit


def test_the_duration_limit_never_lengthens_a_concurrent_instruction(client: TestClient) -> None:
    """Two instructions taken together (one ``sequence``), for 14 and 28 days: the update cuts
    the 28-day one to 21 and leaves the 14-day one at 14, never raising it to the limit."""
    together = [step(duration=days(14), sequence=1), step(2, duration=days(28), sequence=1)]
    request = hook(dosage=together, dispense={})
    assert planned(client, request) == "28 days planned"
    resource = _update(client, request)
    kept = [
        (s["timing"]["repeat"]["frequency"], _kept_days(s["timing"]["repeat"])) for s in resource["dosageInstruction"]
    ]
    assert kept == [(1, 14), (2, 21)]


def test_the_limited_quantity_adds_up_instructions_taken_together(client: TestClient) -> None:
    """One at bedtime and one three times a day, together, for 28 days: limited to 21 days that is
    4 a day, 84 tablets (reading only the first line's rate gave 21, a five-day supply)."""
    bedtime, day = step(1, duration=days(28), sequence=1), step(3, duration=days(28), sequence=1)
    resource = _update(client, hook(dosage=[bedtime, day], dispense=quantity(112)))
    assert resource["dispenseRequest"]["quantity"]["value"] == 84


def test_the_limited_quantity_of_a_taper_counts_each_step_for_its_own_days(client: TestClient) -> None:
    """Two tablets three times a day for 7 days, then one three times a day for 21: limited to 21
    days, 7 days of 6 and 14 of 3, 84 tablets (not 6 a day for 21 days, capped at the 105 ordered)."""
    first = step(3, units=2, duration=days(7), sequence=1)
    then = step(3, units=1, duration=days(21), sequence=2)
    resource = _update(client, hook(dosage=[first, then], dispense=quantity(105)))
    assert [s["timing"]["repeat"]["boundsDuration"]["value"] for s in resource["dosageInstruction"]] == [7, 14]
    assert resource["dispenseRequest"]["quantity"]["value"] == 84


def test_a_count_of_doses_is_cut_to_the_limit_never_raised(client: TestClient) -> None:
    """Three a day with a count of 90 (30 days) becomes 63 doses in 21 days; a count of 10 stays 10:
    a count that already ends the course sooner is not lifted."""
    for count, expected in ((90, 63), (10, 10)):
        dosage = step(3)
        dosage["timing"]["repeat"].update(count=count)
        repeat = _update(client, hook(dosage=[dosage], dispense={"expectedSupplyDuration": days(30)}))[
            "dosageInstruction"
        ][0]["timing"]["repeat"]
        assert repeat["count"] == expected and repeat["boundsDuration"]["value"] == 21


def test_the_limited_quantity_reads_each_step_as_the_facts_do(client: TestClient) -> None:
    """Steps given by timing code (TID, then QD) and doses in mg (10 mg tablets): 7 days of 3 and 14
    of 1 tablet, 35 tablets (such steps had no readable rate, and no quantity was offered)."""
    tid = {"timing": {"code": {"text": "TID"}, "repeat": {"boundsDuration": days(7)}}, "sequence": 1}
    qd = {"timing": {"code": {"text": "QD"}, "repeat": {"boundsDuration": days(21)}}, "sequence": 2}
    for dosage in (tid, qd):
        dose = {"value": 10, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    resource = _update(client, hook(dosage=[tid, qd], dispense=quantity(60)))
    assert resource["dispenseRequest"]["quantity"]["value"] == 35


def test_a_quantity_whose_rate_cannot_be_read_is_cut_in_proportion(client: TestClient) -> None:
    """5 mL three times a day for 30 days, 450 mL: limited to 21 days, 315 mL (a dose in mL is no
    count of tablets, so the draft's own quantity is cut in proportion, never kept whole)."""
    dispense = {"quantity": {"value": 450, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}}
    dispense["expectedSupplyDuration"] = days(30)
    resource = _update(client, hook(dosage=[step(3, units=5, unit="mL")], dispense=dispense))
    assert resource["dispenseRequest"]["quantity"] == {**dispense["quantity"], "value": 315}


def test_dated_instructions_taken_together_are_both_kept_and_cut_by_date(client: TestClient) -> None:
    """Three a day and one at bedtime, both 2026-12-01 to 2026-12-30 and no sequence: the update
    keeps both, each to 2026-12-21 (the bedtime line was dropped as a later step), 84 tablets,
    and reads as 21 days."""
    together = [step(3, bounds=("2026-12-01", "2026-12-30")), step(1, bounds=("2026-12-01", "2026-12-30"))]
    request = hook(dosage=together, dispense=quantity(120))
    assert planned(client, request) == "30 days planned"
    resource = _update(client, request)
    periods = [s["timing"]["repeat"]["boundsPeriod"] for s in resource["dosageInstruction"]]
    assert periods == [{"start": "2026-12-01", "end": "2026-12-21"}] * 2
    assert resource["dispenseRequest"]["quantity"]["value"] == 84
    request["context"]["draftOrders"]["entry"][0]["resource"] = resource
    assert duration_card(client, request) is None  # 21 days: at the limit


def test_overlapping_dated_instructions_stay_within_the_limit(client: TestClient) -> None:
    """Three a day from 11-21 to 12-30 and one a day from 11-25: cut at 12-11, both keep their
    starts, and the update reads as 21 days (numbered as steps one after another it read 38)."""
    overlapping = [step(3, bounds=("2026-11-21", "2026-12-30")), step(1, bounds=("2026-11-25", "2026-12-30"))]
    request = hook(dosage=overlapping, dispense={})
    resource = _update(client, request)
    periods = [s["timing"]["repeat"]["boundsPeriod"] for s in resource["dosageInstruction"]]
    assert periods == [{"start": "2026-11-21", "end": "2026-12-11"}, {"start": "2026-11-25", "end": "2026-12-11"}]
    assert resource["dispenseRequest"]["quantity"]["value"] == 3 * 21 + 17
    request["context"]["draftOrders"]["entry"][0]["resource"] = resource
    assert duration_card(client, request) is None


def test_a_dated_taper_is_cut_at_the_limit_by_date(client: TestClient) -> None:
    """Three a day from 12-01 to 12-10, two a day from 12-11 to 12-30, one a day from 12-31: limited
    to 21 days, the first step whole, the second to 12-21 (11 days), the third gone."""
    taper = [
        step(3, bounds=("2026-12-01", "2026-12-10")),
        step(2, bounds=("2026-12-11", "2026-12-30")),
        step(1, bounds=("2026-12-31", "2027-01-09")),
    ]
    resource = _update(client, hook(dosage=taper, dispense={}))
    periods = [s["timing"]["repeat"]["boundsPeriod"] for s in resource["dosageInstruction"]]
    assert periods == [{"start": "2026-12-01", "end": "2026-12-10"}, {"start": "2026-12-11", "end": "2026-12-21"}]
    assert resource["dispenseRequest"]["quantity"]["value"] == 3 * 10 + 2 * 11


@pytest.mark.parametrize(
    ("dosage", "dispense"),
    [
        ([step(1)], {"expectedSupplyDuration": {"value": 1e306, "code": "a"}}),
        ([step(1, duration={"value": 1e306, "code": "a"})], {}),
        ([step(1, bounds=("9999-12-20", "9999-12-31")), step(2, bounds=("9999-12-25", "9999-12-31"))], {}),
        (
            [step(3, units=5, unit="mL")],
            {"quantity": {"value": 1e308, "unit": "mL"}, "expectedSupplyDuration": days(30)},
        ),
        (
            [{"timing": "BID", "doseAndRate": [{"doseQuantity": {"value": 1, "code": "{tbl}"}}]}],
            {"expectedSupplyDuration": days(30)},
        ),
        ([{"timing": {"repeat": "daily"}}, step(1, duration=days(30))], {}),
    ],
    ids=[
        "supply-of-1e306-years",
        "duration-of-1e306-years",
        "dates-in-9999",
        "1e308-mL",
        "timing-a-string",
        "repeat-a-string",
    ],
)
def test_absurd_sigs_are_answered_never_a_5xx(client: TestClient, dosage: list[Any], dispense: dict[str, Any]) -> None:
    response = client.post(SELECT, json=hook(dosage=dosage, dispense=dispense))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("frequency", "period_unit", "expected"), [(1, "h", 504), (3, "s", None), (25, "d", None)])
def test_no_quantity_is_counted_from_a_rate_no_sig_can_be(
    client: TestClient, frequency: int, period_unit: str, expected: int | None
) -> None:
    """A draft with no quantity, for 30 days: limited to 21, hourly makes 504 tablets; more often
    than that is no sig to count from (3 a second offered 5,443,200 tablets; make fuzz), and the
    update, like the draft, names no quantity."""
    dosage = step(duration=days(30))
    dosage["timing"]["repeat"].update(frequency=frequency, periodUnit=period_unit)
    resource = _update(client, hook(dosage=[dosage], dispense={}))
    assert resource["dispenseRequest"].get("quantity", {}).get("value") == expected
    assert resource["dispenseRequest"]["expectedSupplyDuration"]["value"] == 21


def test_a_dated_period_at_a_time_of_day_is_cut_to_the_same_time_of_day(client: TestClient) -> None:
    """From 06:00Z on 12-01 for 30 days: the update ends at 06:00Z on 12-22, 21 days of use as
    the service reads it back (and as an EHR reads an instant), not '2026-12-21', which an EHR
    may read as its midnight, a day short after a start at 06:00Z."""
    request = hook(dosage=[step(3, bounds=("2026-12-01T06:00:00Z", "2026-12-31T06:00:00Z"))], dispense={})
    assert planned(client, request) == "30 days planned"
    resource = _update(client, request)
    period = resource["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]
    assert period == {"start": "2026-12-01T06:00:00Z", "end": "2026-12-22T06:00:00Z"}
    assert resource["dispenseRequest"]["quantity"]["value"] == 63
    request["context"]["draftOrders"]["entry"][0]["resource"] = resource
    assert duration_card(client, request) is None


@pytest.mark.parametrize("start", ["9999-12-20T06:00:00Z", "9999-12-20"])
def test_a_dated_start_in_the_calendars_last_days_is_offered_no_update(client: TestClient, start: str) -> None:
    """A start at a time of day in the last three weeks of 9999: the new end, written at the
    start's time on the next day, overflowed the calendar (a 500); then it was cut at 9999-12-31,
    a week's tablets under "21 days". Now the card says the order's dates are to correct."""
    request = hook(dosage=[step(1, bounds=(start, None))], dispense={"expectedSupplyDuration": days(30)})
    card = duration_card(client, request)
    assert card is not None
    assert not [a for s in card.get("suggestions", ()) for a in s["actions"] if a["type"] == "update"]
    assert LAST_YEAR_REASON in card["detail"]


def test_timing_words_against_its_times_of_day_are_not_read(client: TestClient) -> None:
    """ "daily" beside three times of day: the words read one a day (63 tablets, 63 days) where
    the times say three (21 days, at the limit): neither word wins over the structure."""
    dosage = step()
    dosage["timing"] = {"code": {"text": "daily"}, "repeat": {"timeOfDay": ["08:00:00", "14:00:00", "20:00:00"]}}
    assert planned(client, hook(dosage=[dosage], dispense=quantity(63))) is None
