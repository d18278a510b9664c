"""Each bounded setting accepts its documented last value and refuses the next, naming the key.

A bound moved by one is invisible to the tests that try a value far outside it (``retention_days
= 1000000``): a snooze of -1 days, a port 0 that binds a random port, a token leeway of 301
seconds or a statement timeout of 0 would each be accepted silently and change what the
service does. Each case here sits exactly on a bound, on both sides.
"""

from __future__ import annotations

import pytest

from cds_service.settings import InvalidSettings, read_settings

# (variable, last value accepted, first value refused, settings the accepted value needs beside it)
BOUNDS = [
    ("PORT", "1", "0", {}),
    ("PORT", "65535", "65536", {}),
    ("SNOOZE_DAYS", "0", "-1", {}),
    ("SNOOZE_DAYS", "3650", "3651", {"RETENTION_DAYS": "4000"}),
    ("RETENTION_DAYS", "1", "0", {"SNOOZE_DAYS": "0"}),
    ("RETENTION_DAYS", "36500", "36501", {}),
    ("DATABASE_STATEMENT_TIMEOUT_SECONDS", "0.001", "0", {}),
    ("DATABASE_STATEMENT_TIMEOUT_SECONDS", "3600", "3601", {}),
    ("FHIR_MAX_PAGES", "1", "0", {}),
    ("FHIR_MAX_PAGES", "100", "101", {}),
    ("TOKEN_LEEWAY_SECONDS", "0", "-1", {}),
    ("TOKEN_LEEWAY_SECONDS", "300", "301", {}),
    ("MAX_HEADER_BYTES", "1024", "1023", {}),
    ("MAX_HEADER_BYTES", "1048576", "1048577", {}),
    ("RULES__CYCLOBENZAPRINE_DURATION__SNOOZE_DAYS", "0", "-1", {}),
    ("RULES__CYCLOBENZAPRINE_DURATION__SNOOZE_DAYS", "3650", "3651", {"RETENTION_DAYS": "4000"}),
]


@pytest.mark.parametrize(("variable", "accepted", "refused", "beside"), BOUNDS, ids=lambda v: str(v))
def test_a_bound_accepts_its_last_value_and_refuses_the_next_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, accepted: str, refused: str, beside: dict[str, str]
) -> None:
    """Both sides of the bound: the documented range is exactly what start-up lets through."""
    for name, value in beside.items():
        monkeypatch.setenv(f"CDS_{name}", value)
    monkeypatch.setenv(f"CDS_{variable}", accepted)
    read_settings()
    monkeypatch.setenv(f"CDS_{variable}", refused)
    with pytest.raises(InvalidSettings) as refusal:
        read_settings()
    key = variable.lower().replace("__", ".").replace("cyclobenzaprine_duration", "cyclobenzaprine-duration")
    assert str(refusal.value).startswith(f"{key}: Input should be"), refusal.value


def test_a_snooze_as_long_as_retention_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused only when longer (the feedback a snooze rests on must not be deleted first): a site
    that keeps feedback 60 days may snooze for 60, globally or for one rule."""
    monkeypatch.setenv("CDS_RETENTION_DAYS", "60")
    monkeypatch.setenv("CDS_SNOOZE_DAYS", "60")
    monkeypatch.setenv("CDS_RULES__CYCLOBENZAPRINE_DURATION__SNOOZE_DAYS", "60")
    assert read_settings().snooze_days_for("cyclobenzaprine-duration") == 60
    monkeypatch.setenv("CDS_RULES__CYCLOBENZAPRINE_DURATION__SNOOZE_DAYS", "61")
    with pytest.raises(InvalidSettings, match=r"^rules\.cyclobenzaprine-duration\.snooze_days is 61, longer"):
        read_settings()
