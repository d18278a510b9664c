"""Every rule fixture, through HTTP and through ``cds-service evaluate``: fires or stays silent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class

from cds_service.cli import main
from cds_service.rules import all_rules
from tests.conftest import FIXTURES, SELECT, TODAY, cards_for, fixture, hook_url

RULES = [rule.id for rule in all_rules()]
CASES = sorted((rule, path.name) for rule in RULES for path in (FIXTURES / rule).glob("*.json"))


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def test_every_rule_has_fires_and_silent_fixtures() -> None:
    for rule in RULES:
        names = [name for r, name in CASES if r == rule]
        assert any(n.startswith("fires-") for n in names), rule
        assert any(n.startswith("silent-") for n in names), rule


@pytest.mark.parametrize(("rule", "name"), CASES)
def test_fixture_over_http(client: TestClient, rule: str, name: str) -> None:
    request = fixture(f"{rule}/{name}")
    response = client.post(hook_url(request), json=request)
    assert response.status_code == 200, response.text
    expected = 1 if name.startswith("fires-") else 0
    assert len(cards_for(response.json(), rule)) == expected, response.text


@pytest.mark.parametrize(("rule", "name"), CASES)
def test_fixture_through_cli(capsys: pytest.CaptureFixture[str], rule: str, name: str) -> None:
    path = Path(FIXTURES / rule / name)
    status = main(["evaluate", str(path), "--today", TODAY.isoformat()])
    out = capsys.readouterr().out
    assert status == 0, out
    expected = 1 if name.startswith("fires-") else 0
    assert len(cards_for(json.loads(out), rule)) == expected, out


FIRES = [(rule, name) for rule, name in CASES if name.startswith("fires-")]


@pytest.mark.parametrize(("rule", "name"), FIRES)
def test_suggested_resources_validate_as_r4(client: TestClient, rule: str, name: str) -> None:
    request = fixture(f"{rule}/{name}")
    body = client.post(hook_url(request), json=request).json()
    for card in body["cards"]:
        if card["source"]["topic"]["system"] == "urn:back-spasm-cds:notice":  # the service's word on the call
            assert "suggestions" not in card
            continue
        assert card["source"]["topic"]["code"] in RULES
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                assert action["description"]
                if action["type"] == "delete":
                    assert "resource" not in action and action["resourceId"].split("/")[0] in (
                        "MedicationRequest",
                        "ServiceRequest",
                        "DeviceRequest",
                    )
                else:
                    resource = action["resource"]
                    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_one_critical_card_silences_the_rest_for_its_order(client: TestClient) -> None:
    """70 years old, on sertraline, AV block, 24-hour cyclobenzaprine 15 mg for 30 days."""
    body = client.post(SELECT, json=fixture("multiple-rules/av-block-sertraline-70.json")).json()
    [card] = body["cards"]
    assert (card["indicator"], card["source"]["topic"]["code"]) == (
        "critical",
        "cyclobenzaprine-contraindicated-condition",
    )
    assert "Atrioventricular block, second degree (I44.1)" in card["detail"]
    assert card["suggestions"][0]["actions"][0] == {
        "type": "delete",
        "resourceId": "MedicationRequest/request-123",
        "description": "Remove the cyclobenzaprine order",
    }


def test_without_the_contraindication_the_warnings_show(client: TestClient) -> None:
    body = client.post(SELECT, json=fixture("multiple-rules/av-block-resolved-sertraline-70.json")).json()
    assert [(c["indicator"], c["source"]["topic"]["code"]) for c in body["cards"]] == [
        ("warning", "cyclobenzaprine-older-adult"),
        ("warning", "cyclobenzaprine-serotonergic"),
        ("warning", "cyclobenzaprine-duration"),
    ]
    older, serotonergic, _ = body["cards"]
    assert "Sertraline 50 MG Oral Tablet" in serotonergic["detail"]
    assert "70 years old" in older["detail"]
    assert (
        older["suggestions"][0]["actions"][0]["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "828320"
    )
