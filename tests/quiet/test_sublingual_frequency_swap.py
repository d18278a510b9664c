"""The sublingual swap of a draft above its low dose by frequency alone (2.8 mg twice a day to one
2.8 mg tablet once a day) leaves the dose as it was: accepted and not applied, the unchanged
draft must still warn; applied, the older-adult rule stays quiet for it that day as for any swap
of its own (``Order.dose_key``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import SELECT, rule_ids
from tests.quiet.conftest import FEEDBACK, call, only_card, request

OLDER_ADULT = "cyclobenzaprine-older-adult"
TWICE_A_DAY = f"{OLDER_ADULT}/fires-sublingual-2.8mg-twice-a-day-age-70-warning.json"


def test_a_once_a_day_swap_accepted_quiets_the_draft_it_leaves_not_the_twice_a_day_one(service: TestClient) -> None:
    card = only_card(call(service, TWICE_A_DAY), OLDER_ADULT)
    swap = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "update")
    item = {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": swap["uuid"]}]}
    response = service.post(FEEDBACK, json={"feedback": [{**item, "outcomeTimestamp": "2026-11-21T10:00:00Z"}]})
    assert response.json() == {"received": 1, "stored": 1}
    again = only_card(call(service, TWICE_A_DAY), OLDER_ADULT)
    assert again["indicator"] == "warning"
    assert "2.8 mg twice a day" in again["summary"]
    applied = request(TWICE_A_DAY)
    applied["context"]["draftOrders"]["entry"][0]["resource"] = swap["actions"][0]["resource"]
    response = service.post(SELECT, json=applied)
    assert response.status_code == 200, response.text
    assert OLDER_ADULT not in rule_ids(response.json())
