"""Every suggestion the service makes, for every fixture request, is safe to accept (clinical
specification §2): its resource is valid in the client's FHIR version, an update dispenses no
more than the draft ordered and leaves no contained resource unreferenced, no reference names
``Patient/Patient/``, and a delete names a draft order of the request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class as r4b_model
from fhir.resources.STU3 import get_fhir_model_class as stu3_model

from cds_service.rules.safe_update import without_orphans
from tests.conftest import FIXTURES, SELECT, hook_url
from tools.golden import hook_requests

REQUESTS = [path.relative_to(FIXTURES).as_posix() for path in hook_requests()]
# DSTU2 has no model classes in fhir.resources: its resources are checked against the DSTU2
# structure definitions by hand, for the types and elements the service writes.
DSTU2_REQUIRED = {
    "MedicationOrder": ("medicationCodeableConcept|medicationReference",),
    "DiagnosticOrder": ("subject", "item"),
    "ProcedureRequest": ("subject", "code"),
}
DSTU2_ONLY_ELSEWHERE = ("doseAndRate", "periodUnit", "boundsDuration", "intent", "authoredOn", "reasonReference")


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def draft_resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The draft orders as sent: a Bundle's entries, or a bare array (the CDC opioid CDS requests)."""
    drafts = request["context"].get("draftOrders") or {}
    if isinstance(drafts, list):
        return drafts
    return [r for e in drafts.get("entry", []) if (r := e.get("resource"))]


def client_version(request: dict[str, Any]) -> str:
    """The FHIR version the client speaks, read off its draft orders (the test's own reading)."""
    drafts = draft_resources(request)
    kinds = {d.get("resourceType") for d in drafts}
    if kinds & {"MedicationOrder", "DiagnosticOrder"}:
        return "DSTU2"
    for draft in drafts:
        dosages = draft.get("dosageInstruction") or []
        on_dosage = any("doseQuantity" in d or "doseRange" in d for d in dosages if isinstance(d, dict))
        if draft.get("resourceType") == "MedicationRequest" and on_dosage:
            return "STU3"
        if draft.get("resourceType") == "ProcedureRequest":
            return "STU3" if "intent" in draft else "DSTU2"
    return "R4"


def validate(resource: dict[str, Any], version: str, draft: dict[str, Any] | None) -> None:
    """Valid in ``version``; for DSTU2, also no element of a later version the client did not send."""
    if version == "R4":
        r4b_model(resource["resourceType"]).model_validate(resource)
    elif version == "STU3":
        stu3_model(resource["resourceType"]).model_validate(resource)
    else:
        assert resource["resourceType"] in DSTU2_REQUIRED, resource["resourceType"]
        for required in DSTU2_REQUIRED[resource["resourceType"]]:
            assert any(name in resource for name in required.split("|")), required
        text, sent = json.dumps(resource), json.dumps(draft or {})
        assert not [n for n in DSTU2_ONLY_ELSEWHERE if f'"{n}"' in text and f'"{n}"' not in sent], text


def references(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["reference"]} if isinstance(value.get("reference"), str) else set()
        return found.union(*(references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(references(v) for v in value))
    return set()


def unreferenced_contained(resource: dict[str, Any]) -> list[str]:
    """Contained resources referenced from nowhere else in the resource (FHIR dom-3)."""
    contained = resource.get("contained") or []
    outside = references({k: v for k, v in resource.items() if k != "contained"})
    inside = set().union(*(references(c) for c in contained)) if contained else set()
    return [
        c.get("id", "?") for c in contained if f"#{c.get('id')}" not in outside | inside and "#" not in references(c)
    ]


def quantity(resource: dict[str, Any]) -> float | None:
    value = ((resource.get("dispenseRequest") or {}).get("quantity") or {}).get("value")
    return value if isinstance(value, int | float) else None


def suggested_actions(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]] | None:
    response = client.post(hook_url(request), json=request)
    # 412: prefetch the rules need is missing; 400: a real-world request refused on purpose
    # (tests/test_real_world.py names each). No cards to check either way.
    assert response.status_code in (200, 412) or request["hook"] not in ("order-select", "order-sign"), response.text
    if response.status_code != 200:
        return None
    return [
        action
        for card in response.json()["cards"]
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
    ]


@pytest.mark.parametrize("name", REQUESTS)
def test_every_suggestion_is_safe_to_accept(client: TestClient, name: str) -> None:
    request = json.loads(Path(FIXTURES / name).read_text())
    actions = suggested_actions(client, request)
    if not actions:
        return
    version = client_version(request)
    drafts = {f"{r['resourceType']}/{r.get('id')}": r for r in draft_resources(request)}
    for action in actions:
        assert action["description"]
        if action["type"] == "delete":
            assert "resource" not in action
            assert action["resourceId"] in drafts, action
            continue
        resource = action["resource"]
        draft = drafts.get(f"{resource['resourceType']}/{resource.get('id')}")
        validate(resource, version, draft if action["type"] == "update" else None)
        assert "Patient/Patient/" not in json.dumps(resource)
        assert unreferenced_contained(resource) == [], resource
        if action["type"] == "update":
            assert draft is not None, f"an update of {resource['resourceType']}/{resource.get('id')}: not a draft"
            ordered, suggested = quantity(draft), quantity(resource)
            if ordered is not None:
                assert suggested is not None and suggested <= ordered, (ordered, suggested)


def test_the_walk_covers_every_fhir_version_and_every_kind_of_action(client: TestClient) -> None:
    """The checks above run on something: updates, creates and deletes, in R4, STU3 and DSTU2."""
    seen: set[tuple[str, str]] = set()
    for name in REQUESTS:
        request = json.loads(Path(FIXTURES / name).read_text())
        for action in suggested_actions(client, request) or []:
            seen.add((client_version(request), action["type"]))
    for version in ("R4", "STU3", "DSTU2"):
        assert {(version, "update"), (version, "delete"), (version, "create")} <= seen, version


@pytest.mark.parametrize(
    ("name", "kind", "subject", "reason"),
    [
        (
            "multiple-rules/stu3-cauda-equina-10-days-mri-as-procedure-request.json",
            "ProcedureRequest",
            "Patient/versions-pt",
            "reasonReference",
        ),
        (
            "multiple-rules/dstu2-cauda-equina-10-days-mri-as-diagnostic-order.json",
            "DiagnosticOrder",
            "Patient/versions-pt",
            "supportingInformation",
        ),
        (
            "multiple-rules/patient-id-sent-as-reference-cauda-equina-mri-subject-not-doubled.json",
            "ServiceRequest",
            "Patient/harness-pt-1",
            "reasonReference",
        ),
    ],
)
def test_an_imaging_order_goes_back_in_the_clients_version(
    client: TestClient, name: str, kind: str, subject: str, reason: str
) -> None:
    request = json.loads(Path(FIXTURES / name).read_text())
    [create] = [a for a in suggested_actions(client, request) or [] if a["type"] == "create"]
    resource = create["resource"]
    assert (resource["resourceType"], resource["status"], resource["subject"]) == (
        kind,
        "draft",
        {"reference": subject},
    )
    assert resource[reason] == [{"reference": "Condition/ces-1", "display": "Cauda equina syndrome"}]
    code = resource["item"][0]["code"] if kind == "DiagnosticOrder" else resource["code"]
    assert code["coding"][0]["code"] == "72148"
    assert resource["priority"] == "stat"  # "now", as the card says: not a routine order


def test_the_refractory_mri_is_a_routine_order(client: TestClient) -> None:
    """For a candidate for surgery or an injection, after six weeks: no hurry to say."""
    request = json.loads(Path(FIXTURES / "refractory-spasm-imaging/fires-sciatica.json").read_text())
    [create] = [a for a in suggested_actions(client, request) or [] if a["type"] == "create"]
    assert create["resource"]["code"]["coding"][0]["code"] == "72148"
    assert "priority" not in create["resource"]


def test_contained_resources_still_referenced_stay() -> None:
    """Only what nothing references goes: a contained resource referenced by another that stays is kept."""
    resource = {
        "resourceType": "MedicationRequest",
        "contained": [
            {"resourceType": "Medication", "id": "old"},
            {"resourceType": "Medication", "id": "new", "ingredient": [{"itemReference": {"reference": "#sub"}}]},
            {"resourceType": "Substance", "id": "sub"},
            {"resourceType": "Provenance", "id": "about-me", "target": [{"reference": "#"}]},
        ],
        "medicationReference": {"reference": "#new"},
    }
    kept = without_orphans(resource)["contained"]
    assert [c["id"] for c in kept] == ["new", "sub", "about-me"]
    assert "contained" not in without_orphans({"resourceType": "MedicationRequest", "contained": [{"id": "x"}]})


def test_the_5_mg_swap_caps_only_the_steps_taken_more_than_three_times_a_day(client: TestClient) -> None:
    """A taper of four a day for 7 days, then once a day for 14, for a 65-year-old: the swap to one
    5 mg tablet caps the first step at three a day and leaves the second once a day (both were
    made three a day: 15 mg a day where 10 were ordered)."""
    request = json.loads(Path(FIXTURES / "cyclobenzaprine-older-adult/fires-age-65-10mg.json").read_text())
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    daily = {"value": 1, "system": "http://unitsofmeasure.org", "code": "{tbl}"}
    draft["dosageInstruction"] = [
        {
            "sequence": step,
            "timing": {
                "repeat": {
                    "frequency": frequency,
                    "period": 1,
                    "periodUnit": "d",
                    "boundsDuration": {
                        "value": length,
                        "unit": "days",
                        "system": "http://unitsofmeasure.org",
                        "code": "d",
                    },
                }
            },
            "doseAndRate": [{"doseQuantity": daily}],
        }
        for step, frequency, length in ((1, 4, 7), (2, 1, 14))
    ]
    draft.pop("dispenseRequest", None)
    swaps = [
        action["resource"]
        for action in suggested_actions(client, request)
        if action["type"] == "update" and "828320" in json.dumps(action["resource"])
    ]
    assert swaps, "no 5 mg swap offered"
    frequencies = [s["timing"]["repeat"]["frequency"] for s in swaps[0]["dosageInstruction"]]
    assert frequencies == [3, 1]


def _count(value: float, form: str) -> dict[str, Any]:
    return {"value": value, "unit": form, "system": "http://unitsofmeasure.org", "code": f"{{{form}}}"}


@pytest.mark.parametrize(
    ("name", "dose", "dispensed", "expected"),
    [
        ("age-70-extended-release", _count(1, "capsule"), _count(14, "capsule"), _count(14, "tablet")),
        ("sublingual-5.6mg-age-70", _count(2, "tablet"), _count(28, "tablet"), _count(14, "tablet")),
    ],
    ids=["capsules-become-tablets", "two-tablets-a-dose-become-one"],
)
def test_a_dose_swap_dispenses_what_the_new_dose_takes(
    client: TestClient, name: str, dose: dict[str, Any], dispensed: dict[str, Any], expected: dict[str, Any]
) -> None:
    """A 70-year-old's 14-day order: the swap to one 5 mg tablet (from a capsule) or to one 2.8 mg
    sublingual tablet (from two) counts its quantity in what it now dispenses, for the same days:
    "14 capsules" of a tablet, or 28 tablets for 14 days of one a day, made a wrong order."""
    request = json.loads(Path(FIXTURES / f"cyclobenzaprine-older-adult/fires-{name}.json").read_text())
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["doseAndRate"] = [{"doseQuantity": dose}]
    draft["dispenseRequest"] = {"quantity": dispensed}
    swaps = [
        action["resource"]
        for action in suggested_actions(client, request) or ()
        if action["type"] == "update"
        and action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 1
    ]
    assert swaps, "no dose swap offered"
    assert [swap["dispenseRequest"]["quantity"] for swap in swaps] == [expected] * len(swaps)


def test_a_composed_swap_counts_the_times_of_day_as_the_facts_do(client: TestClient) -> None:
    """Morning and night over a day is two a day (FHIR Timing): the 21-day update of the draft
    dispensed 42, but composed into the 5 mg swap the same instructions, read from the swap's
    JSON, were one a day, 21 tablets for a 21-day course of two a day."""
    request = json.loads(
        Path(FIXTURES / "cyclobenzaprine-older-adult/fires-composed-swap-10mg-tid-30-days-age-70.json").read_text()
    )
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"] = {"repeat": {"when": ["MORN", "NIGHT"], "period": 1, "periodUnit": "d"}}
    draft["dispenseRequest"] = {"quantity": {"value": 60, "system": "http://unitsofmeasure.org", "code": "{pill}"}}
    quantities = sorted(
        action["resource"]["dispenseRequest"]["quantity"]["value"]
        for action in suggested_actions(client, request) or ()
        if action["type"] == "update"
    )
    assert quantities == [42, 42]  # the 21-day update, and the swap limited to 21 days


def _together(*timings: dict[str, Any]) -> list[dict[str, Any]]:
    """Instructions taken together (one ``sequence``), one tablet each."""
    dose = {"value": 1, "system": "http://unitsofmeasure.org", "code": "{tbl}"}
    return [{"sequence": 1, "timing": {"repeat": t}, "doseAndRate": [{"doseQuantity": dose}]} for t in timings]


@pytest.mark.parametrize(
    ("instructions", "expected", "label"),
    [
        (
            _together({"frequency": 3, "period": 1, "periodUnit": "d"}, {"when": ["HS"]}),
            [3],
            "1 tablet three times a day",
        ),
        (
            _together(
                {"frequency": 2, "period": 1, "periodUnit": "d"}, {"frequency": 2, "period": 1, "periodUnit": "d"}
            ),
            [2, 1],
            "1 tablet three times a day",
        ),
        (_together({"when": ["MORN"]}, {"when": ["HS"]}), [1, 1], "1 tablet twice a day"),
    ],
    ids=["three-a-day-and-bedtime", "twice-and-twice", "morning-and-bedtime"],
)
def test_the_5_mg_swap_caps_instructions_taken_together_at_three_a_day_in_all(
    client: TestClient, instructions: list[dict[str, Any]], expected: list[int], label: str
) -> None:
    """Instructions sharing a ``sequence`` are taken together: three times a day and one at
    bedtime is four tablets a day. The swap capped each at three, so four 5 mg tablets a day
    under a label reading "three times a day"; morning and bedtime (two a day) read "once a day"."""
    request = json.loads(Path(FIXTURES / "cyclobenzaprine-older-adult/fires-age-65-10mg.json").read_text())
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"] = instructions
    draft.pop("dispenseRequest", None)
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    offered = [
        (suggestion["label"], action["resource"])
        for card in response.json()["cards"]
        for suggestion in card.get("suggestions", ())
        for action in suggestion["actions"]
        if action["type"] == "update" and "828320" in json.dumps(action["resource"])
    ]
    assert offered, "no 5 mg swap offered"
    for shown, swap in offered:
        assert label in shown
        assert [per_day(dosage) for dosage in swap["dosageInstruction"]] == expected


def per_day(dosage: dict[str, Any]) -> int:
    repeat = dosage["timing"]["repeat"]
    return len(repeat["when"]) if "when" in repeat else repeat["frequency"]
