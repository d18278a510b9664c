"""The replayed real-world corpus (issue 15): requests in the shapes public CDS Hooks projects send.

Every file of ``fixtures/real-world/<project>/`` is our own request (our drugs, our conditions)
written in the shape one public project sends (``fixtures/README.md`` names the source of each
shape). Each is replayed over HTTP, on an app of its own, and through ``cds-service evaluate``:
no 5xx, no 4xx for a request a tolerant service can answer (the few genuinely unanswerable ones
are listed with the field named and why), every response conformant. Then the cases issue 15
lists as rejected or misread, one test each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.cli import main
from cds_service.facts.orders import NO_ID, NO_ID_REASON, UNSOUND_REASON
from tests.conftest import FIXTURES, TODAY, cards_for, hook_url, rule_ids

CORPUS_DIR = FIXTURES / "real-world"
CORPUS = sorted(CORPUS_DIR.rglob("*.json"))
IDS = [str(path.relative_to(CORPUS_DIR)) for path in CORPUS]

# The requests no service could answer with cards, each refused naming the field, and why.
REFUSED: dict[str, tuple[int, str, str]] = {
    "hapifhir-hapi-fhir/order-select-placeholder-hook-name.json": (
        400,
        "hook",
        "HAPI's test request names no real hook ('Hook Name'): not an order-select call",
    ),
    "ahrq-cql-services/order-select-synthea-missing-prefetch-keys.json": (
        412,
        "prefetch.conditions",
        "AHRQ's missing-prefetch invocation: the required keys are absent and its http fhirServer may not be "
        "called (CDS Hooks §Prefetch: 412 when data can be neither prefetched nor fetched)",
    ),
    "cqframework-opioid-cds-r4/order-sign-own-prefetch-keys-only.json": (
        412,
        "prefetch.medications",
        "the CDC opioid requests prefetch under their own item keys only; our keys are missing and their "
        "http fhirServer may not be called",
    ),
}
INDICATORS = {"info", "warning", "critical"}
ACTIONS = {"create", "update", "delete"}


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """An app of its own that may call no FHIR server (as the golden responses are made): each
    answer depends on the request alone, never on what listens on this machine's ports."""
    return make_client(fhir_servers=[])


def load(name: str) -> dict[str, Any]:
    return json.loads((CORPUS_DIR / name).read_text())


def post(client: TestClient, request: dict[str, Any]) -> Any:
    return client.post(hook_url(request), json=request)


def _empty_values(value: Any, path: str = "$") -> list[str]:
    """Paths holding null or an empty string, array or object (CDS Hooks §Use of JSON)."""
    if value is None or value in ("", [], {}):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _empty_values(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _empty_values(v, f"{path}[{i}]")]
    return []


def assert_conformant(body: dict[str, Any]) -> None:
    """A CDS Hooks 2.0 response: cards with uuid, summary under 140 characters, indicator and
    source; suggestions with uuid and actions; no stand-in id sent back; no null or empty value."""
    assert set(body) == {"cards"} and isinstance(body["cards"], list)
    for card in body["cards"]:
        assert card["uuid"] and isinstance(card["summary"], str) and 0 < len(card["summary"]) < 140
        assert card["indicator"] in INDICATORS
        assert card["source"]["label"]
        if "suggestions" in card:
            assert card["selectionBehavior"] in ("at-most-one", "any")
        for suggestion in card.get("suggestions", ()):
            assert suggestion["uuid"] and suggestion["label"] and suggestion["actions"]
            for action in suggestion["actions"]:
                assert action["type"] in ACTIONS and action["description"]
                assert ("resourceId" in action) if action["type"] == "delete" else ("resource" in action)
        for reason in card.get("overrideReasons", ()):
            assert reason["display"]
    assert NO_ID not in json.dumps(body)
    assert [p for card in body["cards"] for p in _empty_values(card)] == []


def test_the_corpus_covers_five_projects_and_each_file_is_documented() -> None:
    projects = {path.parent.name for path in CORPUS}
    assert len(CORPUS) >= 40 and len(projects) >= 5, (len(CORPUS), projects)
    readme = (FIXTURES / "README.md").read_text()
    undocumented = [name for name in IDS if f"`{Path(name).stem}`" not in readme]
    assert not undocumented, f"describe them in fixtures/README.md (## real-world/): {undocumented}"
    assert set(REFUSED) <= set(IDS)


@pytest.mark.parametrize("name", IDS)
def test_replayed_over_http(client: TestClient, name: str) -> None:
    response = post(client, load(name))
    assert response.status_code < 500, response.text
    if name in REFUSED:
        status, field, why = REFUSED[name]
        assert response.status_code == status, f"{why}: {response.text}"
        assert field in response.json()["issue"][0]["expression"], response.text
        return
    assert response.status_code == 200, response.text
    assert_conformant(response.json())


@pytest.mark.parametrize("name", IDS)
def test_replayed_through_the_cli(client: TestClient, capsys: pytest.CaptureFixture[str], name: str) -> None:
    """Offline, with no fetch: the same cards as HTTP where the prefetch is complete, exit 2 where HTTP refuses."""
    status = main(["evaluate", str(CORPUS_DIR / name), "--today", TODAY.isoformat()])
    out = capsys.readouterr().out
    if name in REFUSED:
        assert status == 2, out
        return
    assert status == 0, out
    assert rule_ids(json.loads(out)) == rule_ids(post(client, load(name)).json())


def test_epic_id_longer_than_64_characters_in_selections(client: TestClient) -> None:
    request = load("cqframework-opioid-cds-r4/order-select-epic-id-longer-than-64-in-selections.json")
    [selection] = request["context"]["selections"]
    assert len(selection.split("/", 1)[1]) > 64
    [card] = cards_for(post(client, request).json(), "cyclobenzaprine-duration")
    [update] = card["suggestions"][0]["actions"]
    assert update["resource"]["id"] == selection.split("/", 1)[1]


def test_draftorders_as_a_bare_array_is_read_as_the_bundle(client: TestClient) -> None:
    body = post(client, load("cqframework-opioid-cds-r4/order-select-draftorders-as-array.json")).json()
    assert "cyclobenzaprine-duration" in rule_ids(body)


def test_order_sign_draft_without_id_is_reviewed_and_says_why_no_change(client: TestClient) -> None:
    [card] = post(client, load("hl7-pddi-cds/order-sign-draft-without-id.json")).json()["cards"]
    assert card["source"]["topic"]["code"] == "cyclobenzaprine-duration"
    assert "suggestions" not in card
    assert NO_ID_REASON in card["detail"]


def test_without_id_a_create_suggestion_stays(client: TestClient) -> None:
    [card] = post(client, load("hl7-pddi-cds/order-sign-without-id-red-flag-mri-create-kept.json")).json()["cards"]
    assert card["indicator"] == "critical"
    assert [a["type"] for s in card["suggestions"] for a in s["actions"]] == ["create"]
    assert NO_ID_REASON not in card["detail"]


def test_without_id_a_remove_suggestion_is_left_out(client: TestClient) -> None:
    [card] = post(client, load("hl7-pddi-cds/order-sign-without-id-critical-remove-left-out.json")).json()["cards"]
    assert card["indicator"] == "critical" and "suggestions" not in card
    assert NO_ID_REASON in card["detail"]


def test_two_drafts_without_ids_are_two_orders(client: TestClient) -> None:
    body = post(client, load("hl7-pddi-cds/order-sign-two-relaxants-without-ids.json")).json()
    [card] = cards_for(body, "muscle-relaxant-duplicate")
    assert "suggestions" not in card and NO_ID_REASON in card["detail"]


@pytest.mark.parametrize(
    "name",
    [
        "cds-hooks-sandbox/order-sign-rx-sign-draft-without-subject.json",
        "cds-hooks-sandbox/order-select-rx-view-draft-without-intent.json",
    ],
)
def test_draft_failing_strict_r4_is_read_without_an_edit(client: TestClient, name: str) -> None:
    [card] = cards_for(post(client, load(name)).json(), "cyclobenzaprine-duration")
    assert "suggestions" not in card
    assert UNSOUND_REASON in card["detail"]


def test_empty_rx_view_draft_logs_no_warning(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cds_service")
    response = post(client, load("cds-hooks-sandbox/order-select-rx-view-no-drug-chosen-yet.json"))
    assert response.json() == {"cards": []}
    warnings = [r for r in caplog.records if r.name.startswith("cds_service") and r.levelno >= logging.WARNING]
    assert warnings == []
    assert any("orders nothing yet" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


def test_unrequested_prefetch_key_holding_a_string_is_ignored(client: TestClient) -> None:
    request = load("dotimplement-healthchain/order-select-string-in-unrequested-prefetch-key.json")
    assert isinstance(request["prefetch"]["document"], str)
    assert post(client, request).status_code == 200


def test_selection_naming_no_draft_is_logged_not_refused(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    response = post(client, load("hapifhir-hapi-fhir/order-select-selections-naming-no-draft.json"))
    assert response.json() == {"cards": []}
    assert "context.selections[0] names no order in draftOrders" in caplog.text
    assert "456" not in caplog.text


@pytest.mark.parametrize(
    "name",
    [
        "hl7-cds-hooks/order-select-unrelated-drug-amoxicillin.json",
        "ahrq-cql-services/order-select-synthea-unrelated-metformin.json",
        "hl7-pddi-cds/order-sign-unrelated-ketorolac-without-id.json",
        "cqframework-opioid-cds-r4/order-select-draftorders-as-array-long-acting-opioid.json",
    ],
)
def test_unrelated_drugs_get_no_cards(client: TestClient, name: str) -> None:
    assert post(client, load(name)).json() == {"cards": []}


@pytest.mark.parametrize(("length", "status"), [(255, 200), (256, 400)])
def test_ids_up_to_255_characters_everywhere(client: TestClient, length: int, status: int) -> None:
    """The bound the R4B models put on ids, in ``draftOrders`` and ``selections`` alike: longer is a
    400 naming the field (an order's key is stored), never a 500 or a silently skipped order."""
    request = load("cqframework-opioid-cds-r4/order-select-epic-id-longer-than-64-in-selections.json")
    long_id = "e" * length
    request["context"]["draftOrders"]["entry"][0]["resource"]["id"] = long_id
    request["context"]["selections"] = [f"MedicationRequest/{long_id}"]
    response = post(client, request)
    assert response.status_code == status, response.text
    if status == 400:
        assert {"context.draftOrders", "context.selections"} & set(response.json()["issue"][0]["expression"])
    else:
        assert "cyclobenzaprine-duration" in rule_ids(response.json())
