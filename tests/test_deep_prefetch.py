"""The nesting bound (64 levels) is for what the service walks: the envelope and the drafts. The
prefetch is read at fixed paths, never walked, so a history entry with a deeply nested extension
(an EHR's own) is read, and its card comes."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, rule_ids

HEPATIC = "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json"


def test_a_history_entry_nested_deeper_than_the_bound_is_read(module_client: TestClient) -> None:
    request = fixture(HEPATIC)
    condition = request["prefetch"]["conditions"]["entry"][0]["resource"]
    condition["_onsetString"] = {"extension": json.loads("[" * 70 + "]" * 70)}
    response = module_client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-hepatic-impairment" in rule_ids(response.json())
