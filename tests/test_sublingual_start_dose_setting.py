"""The sublingual start dose is a site's setting (``sublingual_start_dose_mg``, 2.8 to 5.6 mg),
and the older-adult and hepatic cards and their one-click change say it: both said "2.8 mg once a
day" and offered one 2.8 mg tablet whatever it was, so a site whose start dose is 5.6 mg was told
to halve it, its 5.6 mg once a day itself silent (an informaticist's review). The change gives the
whole tablets the setting holds (two at 5.6 mg), never more a dose than the draft's own, once a
day at bedtime, and the summary says that dose; the detail still quotes the label's 2.8 mg."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from tests.conftest import NOON, Clock, answered, cards_for, fixture, settings_in
from tests.test_swap_of_a_bottle import UCUM, days, tablets

OLDER_ADULT = "cyclobenzaprine-older-adult"
HEPATIC = "cyclobenzaprine-hepatic-impairment"
# Tonmya 5.6 mg (two 2.8 mg tablets) once a day, for a 30-day supply: at 70, with hepatitis C.
DRAFTS = {
    OLDER_ADULT: f"{OLDER_ADULT}/fires-sublingual-5.6mg-age-70.json",
    HEPATIC: f"{HEPATIC}/fires-warning-sublingual-5.6mg-hepatitis-c.json",
}
SUMMARY = {
    OLDER_ADULT: "Avoid cyclobenzaprine in older adults (age 70); if used, {} mg sublingual once a day ({} ordered)",
    HEPATIC: "Sublingual cyclobenzaprine with hepatic impairment: {} mg once a day ({} ordered)",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app whose sublingual start dose is 5.6 mg in both rules, as a site sets it."""
    with pytest.MonkeyPatch.context() as patch:
        for rule in DRAFTS:
            patch.setenv(f"CDS_RULES__{rule.upper().replace('-', '_')}__SUBLINGUAL_START_DOSE_MG", "5.6")
        settings = settings_in(tmp_path_factory.mktemp("site") / "var")
    with TestClient(create_app(settings, clock=Clock(NOON))) as client:
        yield client


def request_for(rule: str, mg: float, per_day: int, quantity: dict[str, Any] | None = None) -> dict[str, Any]:
    """``rule``'s Tonmya draft at ``mg`` a dose ``per_day`` times a day (``quantity``: dispensed)."""
    request = fixture(DRAFTS[rule])
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    [dosage] = draft["dosageInstruction"]
    dosage["timing"]["repeat"]["frequency"] = per_day
    dosage["doseAndRate"][0]["doseQuantity"]["value"] = mg
    if quantity is not None:
        draft["dispenseRequest"]["quantity"] = quantity
    return request


def offered(client: TestClient, rule: str, request: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """``rule``'s card, its dose change's label and the update it writes."""
    [card] = cards_for(answered(client, request), rule)
    [(label, resource)] = [
        (suggestion["label"], action["resource"])
        for suggestion in card["suggestions"]
        for action in suggestion["actions"]
        if action["type"] == "update"
    ]
    return card, label, resource


def once_at_bedtime(resource: dict[str, Any]) -> tuple[Any, Any]:
    [dosage] = resource["dosageInstruction"]
    return dosage["doseAndRate"], dosage["timing"]


@pytest.mark.parametrize("rule", DRAFTS)
def test_the_configured_start_dose_is_the_cards_dose_and_its_change(site: TestClient, rule: str) -> None:
    """5.6 mg twice a day, above the site's 5.6 mg once a day by how often: two tablets once a day."""
    card, label, resource = offered(site, rule, request_for(rule, 5.6, 2))
    assert card["summary"] == SUMMARY[rule].format("5.6", "5.6 mg twice a day")
    assert label == "Change to 2 sublingual 2.8 mg tablets once a day at bedtime"
    assert once_at_bedtime(resource) == (
        [{"doseQuantity": tablets(2)}],
        {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]}},
    )
    assert "the sublingual label's dose is one 2.8 mg tablet" in card["detail"].replace("\n", " ")
    # 5.6 mg once a day is the site's start dose: no change of it (with hepatitis C no card; at 70 the info card).
    cards = cards_for(answered(site, request_for(rule, 5.6, 1)), rule)
    assert [card["indicator"] for card in cards] == (["info"] if rule == OLDER_ADULT else [])
    assert not any(suggestion["actions"][0]["type"] == "update" for c in cards for suggestion in c["suggestions"])


@pytest.mark.parametrize("rule", DRAFTS)
def test_the_shipped_start_dose_stays_one_tablet(module_client: TestClient, rule: str) -> None:
    card, label, resource = offered(module_client, rule, request_for(rule, 5.6, 2))
    assert card["summary"] == SUMMARY[rule].format("2.8", "5.6 mg twice a day")
    assert label == "Change to 1 sublingual 2.8 mg tablet once a day at bedtime"
    assert once_at_bedtime(resource)[0] == [{"doseQuantity": tablets(1)}]


@pytest.mark.parametrize("rule", DRAFTS)
def test_the_start_dose_never_raises_the_drafts_own_dose(site: TestClient, rule: str) -> None:
    """2.8 mg twice a day at a 5.6 mg start dose: one tablet once a day, not 5.6 mg at once."""
    card, label, resource = offered(site, rule, request_for(rule, 2.8, 2))
    assert card["summary"] == SUMMARY[rule].format("2.8", "2.8 mg twice a day")
    assert label == "Change to 1 sublingual 2.8 mg tablet once a day at bedtime"
    assert once_at_bedtime(resource)[0] == [{"doseQuantity": tablets(1)}]


@pytest.mark.parametrize("rule", DRAFTS)
def test_the_tablets_are_counted_at_the_configured_dose(site: TestClient, module_client: TestClient, rule: str) -> None:
    """90 tablets for the draft's 30 days: two a day for them are 60 at 5.6 mg, one a day 30."""
    quantity = {"value": 90, "unit": "tablet", "system": UCUM, "code": "{tablet}"}
    for client, counted in ((site, 60), (module_client, 30)):
        _, _, resource = offered(client, rule, request_for(rule, 5.6, 2, quantity))
        assert resource["dispenseRequest"] == {"quantity": tablets(counted), "expectedSupplyDuration": days(30)}
