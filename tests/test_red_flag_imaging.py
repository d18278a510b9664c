"""The red-flag card's STAT MRI is offered only where none is on record since the cauda equina began.

A post-operative patient (cauda equina of 29 days, decompressed after an MRI) was offered a
repeat STAT MRI, recommended, one click away (a pharmacist's review; [ACP-IMG]: repeat imaging
only for new or changed symptoms). The critical card stays: it says what to do "unless already
done". An MRI ordered in the same session counts too; one with no date, entered in error, on
hold, or booked for a later day (QA round 2: not an emergency MRI) does not, nor a CT.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture

EMERGENCY = "back-pain-red-flag/fires-cauda-equina-onset-29-days-critical-mri.json"  # onset 2026-10-23
RED_FLAG = "back-pain-red-flag"


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def lumbar_mri(authored: str | None, status: str = "completed", ident: str = "mri-1") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": ident,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/harness-pt-1"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]},
    }
    if authored is not None:
        resource["authoredOn"] = authored
    return resource


def red_flag_card(module: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    [card] = cards_for(answered(module, request), RED_FLAG)
    assert card["indicator"] == "critical"
    return card


def with_imaging(*resources: dict[str, Any]) -> dict[str, Any]:
    request = fixture(EMERGENCY)
    request["prefetch"]["imaging"]["entry"] = [{"resource": resource} for resource in resources]
    return request


@pytest.mark.parametrize("authored", ["2026-10-23", "2026-11-01"])
def test_an_mri_since_the_onset_is_not_offered_again(module: TestClient, authored: str) -> None:
    card = red_flag_card(module, with_imaging(lumbar_mri(authored)))
    assert "suggestions" not in card
    assert "unless already done" in card["detail"]


@pytest.mark.parametrize(
    "mri",
    [
        lumbar_mri("2026-10-22"),  # the day before the onset: the syndrome is newer than it
        lumbar_mri(None),  # no date: it may be years old
        lumbar_mri("2026-11-01", status="entered-in-error"),
    ],
)
def test_an_mri_before_the_onset_or_of_no_date_leaves_the_stat_mri(module: TestClient, mri: dict[str, Any]) -> None:
    card = red_flag_card(module, with_imaging(mri))
    [suggestion] = card["suggestions"]
    assert suggestion["isRecommended"] is True
    assert suggestion["actions"][0]["resource"]["priority"] == "stat"


@pytest.mark.parametrize("place", ["imaging", "draftOrders"])
def test_a_lumbar_ct_leaves_the_stat_mri(module: TestClient, place: str) -> None:
    """A plain CT cannot rule a cauda equina syndrome out: a lumbar CT done since the onset, or
    drafted beside the relaxant, withdrew the STAT MRI (the clinical review)."""
    ct = lumbar_mri("2026-11-01", status="completed" if place == "imaging" else "draft", ident="ct-1")
    ct["code"] = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72131"}]}
    request = with_imaging(ct) if place == "imaging" else fixture(EMERGENCY)
    if place == "draftOrders":
        request["context"]["draftOrders"]["entry"].append({"resource": ct})
    [suggestion] = red_flag_card(module, request)["suggestions"]
    assert suggestion["actions"][0]["resource"]["priority"] == "stat"


def test_an_mri_drafted_in_the_same_session_is_not_offered_again(module: TestClient) -> None:
    request = fixture(EMERGENCY)
    draft = lumbar_mri(None, status="draft", ident="mri-draft")
    request["context"]["draftOrders"]["entry"].append({"resource": draft})
    assert "suggestions" not in red_flag_card(module, request)


def test_an_mri_drafted_without_an_id_is_not_offered_again(module: TestClient) -> None:
    """A draft with no id is named by its place among the drafts, not by "ServiceRequest/None":
    the match by reference missed it (a code review)."""
    request = fixture(EMERGENCY)
    draft = lumbar_mri(None, status="draft")
    del draft["id"]
    request["context"]["draftOrders"]["entry"].append({"resource": draft})
    assert "suggestions" not in red_flag_card(module, request)


@pytest.mark.parametrize(("authored", "offered"), [("2026-10-02", True), ("2026-10-31", False), ("2026-11-01", False)])
def test_an_onset_of_a_month_alone_counts_an_mri_after_that_month_only(
    module: TestClient, authored: str, offered: bool
) -> None:
    """Cauda equina "since 2026-10" may have begun on the 25th: an MRI of the 2nd may predate it."""
    request = fixture("back-pain-red-flag/fires-cauda-equina-onset-month-only-critical-mri.json")
    request["prefetch"]["imaging"]["entry"] = [{"resource": lumbar_mri(authored)}]
    assert ("suggestions" in red_flag_card(module, request)) is offered


def booked(authored: str, occurs: str, status: str = "active", ident: str = "mri-booked") -> dict[str, Any]:
    """A lumbar MRI ordered on ``authored`` for the day ``occurs`` (done, or booked ahead)."""
    return {**lumbar_mri(authored, status=status, ident=ident), "occurrenceDateTime": occurs, "priority": "routine"}


@pytest.mark.parametrize(
    "mri",
    [
        booked("2026-11-01", "2027-01-20"),  # ordered since the onset, booked two months ahead
        booked("2026-10-01", "2027-01-20"),  # ordered before the onset, booked ahead (QA F2a)
        booked("2026-10-01", "2026-11-01", status="on-hold"),  # paused: not under way
        lumbar_mri("2026-11-01", status="on-hold"),
        booked("2026-11-01", "2026-11-01", status="draft"),  # a draft in the record no one signed
    ],
)
def test_an_mri_booked_ahead_or_not_under_way_leaves_the_stat_mri(module: TestClient, mri: dict[str, Any]) -> None:
    """An MRI booked weeks ahead is no emergency MRI: the STAT one is still offered (QA round 2,
    F2: a routine MRI booked for 2027 silenced it, the card saying nothing of why)."""
    [suggestion] = red_flag_card(module, with_imaging(mri))["suggestions"]
    assert suggestion["isRecommended"] is True
    assert suggestion["actions"][0]["resource"]["priority"] == "stat"


@pytest.mark.parametrize(
    "mri",
    [
        booked("2026-10-01", "2026-11-01", status="completed"),  # ordered before, done after the onset
        booked("2026-11-01", "2026-11-21"),  # booked for today
        {**lumbar_mri("2026-11-01", status="active"), "priority": "stat"},  # ordered since, urgent: under way
        {**lumbar_mri("2026-11-01", status="active"), "priority": "asap"},
    ],
)
def test_an_mri_done_or_under_way_since_the_onset_is_not_offered_again(module: TestClient, mri: dict[str, Any]) -> None:
    assert "suggestions" not in red_flag_card(module, with_imaging(mri))


@pytest.mark.parametrize("status", ["active", "unknown", None])
@pytest.mark.parametrize("priority", ["routine", None])
def test_a_routine_mri_order_with_no_day_booked_leaves_the_stat_mri(
    module: TestClient, priority: str | None, status: str | None
) -> None:
    """Ordered since the onset, not done, no day booked and not urgent: no emergency MRI (it
    withdrew the STAT one, as a booking weeks ahead had: the clinical review), whatever status
    it has short of completed (an unknown or missing one did too: a code review)."""
    mri = lumbar_mri("2026-11-01", status="active") | ({"priority": priority} if priority else {})
    if status is None:
        del mri["status"]
    else:
        mri["status"] = status
    [suggestion] = red_flag_card(module, with_imaging(mri))["suggestions"]
    assert suggestion["actions"][0]["resource"]["priority"] == "stat"


def test_an_urgent_mri_booked_ahead_by_a_period_leaves_the_stat_mri(module: TestClient) -> None:
    """A STAT order booked for next week by ``occurrencePeriod`` was read as undated and urgent,
    and stood in for the emergency MRI (a code review): its period's start is its day."""
    mri = lumbar_mri("2026-11-01", status="active") | {
        "priority": "stat",
        "occurrencePeriod": {"start": "2026-11-28", "end": "2026-11-28"},
    }
    [suggestion] = red_flag_card(module, with_imaging(mri))["suggestions"]
    assert suggestion["actions"][0]["resource"]["priority"] == "stat"


@pytest.mark.parametrize("place", ["draftOrders", "imaging"])
def test_a_dstu2_diagnostic_order_is_read_item_by_item(module: TestClient, place: str) -> None:
    """A DSTU2 DiagnosticOrder with the lumbar MRI as its second item: only the first was read,
    and a duplicate STAT MRI was offered beside the one drafted (QA round 2, F3d)."""
    request = fixture("multiple-rules/dstu2-cauda-equina-10-days-mri-as-diagnostic-order.json")
    order = {
        "resourceType": "DiagnosticOrder",
        "id": "do-1",
        "status": "proposed" if place == "draftOrders" else "completed",
        "subject": {"reference": "Patient/versions-pt"},
        "event": [{"status": "requested", "dateTime": "2026-11-15"}],
        "item": [
            {"code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "71046"}]}},
            {"code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]}},
        ],
    }
    bundle = request["context"]["draftOrders"] if place == "draftOrders" else request["prefetch"]["imaging"]
    bundle["entry"].append({"resource": order})
    assert "suggestions" not in red_flag_card(module, request)
