"""A prefetch Bundle whose entries hold what is no resource. Read as no data, a history whose
`entry` was a string hid the patient's hepatitis C: the hepatic card was missing and nothing said
so. A key the service needs is a 400 naming the entry; an optional key's is read as not sent,
as one of the wrong shape is; a single entry sent as an object is read, as before."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, rule_ids

HEPATITIS = "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json"
MAOI = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
Change = Callable[[dict[str, Any]], None]


def _junk_after(bundle: dict[str, Any]) -> None:
    bundle["entry"].append("Condition/7")


def _untyped(bundle: dict[str, Any]) -> None:
    del bundle["entry"][0]["resource"]["resourceType"]


def _no_resource(bundle: dict[str, Any]) -> None:
    bundle["entry"].insert(0, {"fullUrl": "http://ehr.example/fhir/Condition/8"})


SHAPES: dict[str, tuple[Change, str]] = {
    "entry-a-string": (lambda bundle: bundle.update(entry="see the problem list"), "entry"),
    "entry-a-number": (lambda bundle: bundle.update(entry=1), "entry"),
    "an-entry-a-reference": (_junk_after, "entry[1]"),
    "a-resource-without-its-type": (_untyped, "entry[0].resource"),
    "an-entry-without-a-resource": (_no_resource, "entry[0].resource"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_needed_key_whose_entries_hold_no_resource_is_400_naming_the_entry(client: TestClient, shape: str) -> None:
    change, where = SHAPES[shape]
    request = fixture(HEPATITIS)
    change(request["prefetch"]["conditions"])
    response = client.post(SELECT, json=request)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == [f"prefetch.conditions.{where}"]
    assert issue["diagnostics"].startswith(f"prefetch.conditions.{where}: must be ")
    assert "FHIR resource" in issue["diagnostics"]


def test_an_optional_keys_entries_holding_no_resource_are_read_as_not_sent(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Prior imaging only sharpens a card: not the reason to lose the MAO inhibitor's critical card."""
    request = fixture(MAOI)
    request["prefetch"]["imaging"] = {"resourceType": "Bundle", "type": "searchset", "entry": "none"}
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-maoi" in rule_ids(response.json())
    assert "prefetch.imaging.entry: not a FHIR resource: prefetch imaging read as not sent" in caplog.text


def test_a_single_entry_sent_as_an_object_is_read(client: TestClient) -> None:
    request = fixture(HEPATITIS)
    bundle = request["prefetch"]["conditions"]
    [bundle["entry"]] = copy.deepcopy(bundle["entry"])
    as_object = rule_ids(client.post(SELECT, json=request).json())
    assert as_object == rule_ids(client.post(SELECT, json=fixture(HEPATITIS)).json())
    assert "cyclobenzaprine-hepatic-impairment" in as_object
