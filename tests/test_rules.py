"""Every rule fixture, through HTTP and through ``cds-service evaluate``: fires or stays silent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds_service.cli import main
from cds_service.rules import all_rules
from tests.conftest import FIXTURES, SELECT, SIGN, TODAY, cards_for, fixture

RULES = [rule.id for rule in all_rules()]
CASES = sorted((rule, path.name) for rule in RULES for path in (FIXTURES / rule).glob("*.json"))


def test_every_rule_has_fires_and_silent_fixtures() -> None:
    for rule in RULES:
        names = [name for r, name in CASES if r == rule]
        assert any(n.startswith("fires-") for n in names), rule
        assert any(n.startswith("silent-") for n in names), rule


@pytest.mark.parametrize(("rule", "name"), CASES)
def test_fixture_over_http(client: TestClient, rule: str, name: str) -> None:
    request = fixture(f"{rule}/{name}")
    response = client.post(SIGN if request["hook"] == "order-sign" else SELECT, json=request)
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
