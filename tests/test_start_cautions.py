"""Settings start-up takes that a site's clinical safety officer must have chosen knowingly are
said at start-up, as warnings (a clinical safety review found both silent): a rule with critical
cards switched off, and days counted in UTC because no zone was set."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

UNSET_ZONE = "CDS_TIMEZONE is not set: the rules count days (washouts, courses, onsets) in UTC"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "cds_service.app"]


def test_days_counted_in_utc_for_want_of_a_zone_are_said_at_start_up(
    defaults: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    defaults(auth_mode="off")
    assert any(message.startswith(UNSET_ZONE) for message in _warnings(caplog))
    caplog.clear()
    defaults(auth_mode="off", timezone="UTC")  # chosen: not said
    assert not any(message.startswith(UNSET_ZONE) for message in _warnings(caplog))


@pytest.mark.parametrize(
    ("rule_id", "said"),
    [
        ("cyclobenzaprine_maoi", True),
        ("back_pain_red_flag", True),  # a warning rule with one critical variant
        ("cyclobenzaprine_duration", False),  # warning and info only: a site's choice, not a hazard
    ],
)
def test_a_rule_with_critical_cards_switched_off_is_said_at_start_up(
    defaults: Callable[..., TestClient], caplog: pytest.LogCaptureFixture, rule_id: str, said: bool
) -> None:
    caplog.set_level(logging.INFO)
    defaults(auth_mode="off", timezone="UTC", rules={rule_id: {"enabled": False}})
    switched_off = [m for m in _warnings(caplog) if "is switched off" in m]
    name = rule_id.replace("_", "-")
    expected = [f"rule {name}, which can issue critical cards, is switched off: its checks do not run"]
    assert switched_off == (expected if said else [])
