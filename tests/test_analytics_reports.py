"""What the report command and the report page print beyond each rule's row: the total over
every rule, the reasons with their codes, the feedback about cards the service has no record of,
and no rate (not 0 %) where no alert was issued."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from cds_service.cli import main
from cds_service.settings import Settings, read_settings
from tests.conftest import TODAY
from tests.feedback_calls import issued, overridden, send_feedback

UNKNOWN_CARD = {"uuid": "f0e1d2c3-0000-4000-8000-000000000000"}
UNMATCHED = "1 feedback item(s) referred to cards the service has no record of."


def test_the_report_command_totals_every_rule_and_names_reasons_and_unmatched_feedback(
    make_client: Callable[..., TestClient],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Three rules' alerts, two overridden: the Total row is all three rules'; a client's reason
    code is printed without its control characters."""
    client = make_client()
    several = issued(client, "multiple-rules/av-block-resolved-sertraline-70.json")
    assert len(several) == 3
    send_feedback(client, overridden(several["cyclobenzaprine-older-adult"], "benefit-outweighs-risk"))
    hostile = overridden(several["cyclobenzaprine-serotonergic"])
    hostile["overrideReason"] = {"reason": {"system": "urn:site:reasons", "code": "r7\x1b[2J"}}  # clears a terminal
    send_feedback(client, hostile)
    send_feedback(client, overridden(UNKNOWN_CARD))
    client.__exit__(None, None, None)  # every record written, the database closed
    for name in [name for name in os.environ if name.startswith("CDS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CDS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)  # not another test's, cached
    assert main(["report", "--from", TODAY.isoformat(), "--to", TODAY.isoformat(), "--period", "day"]) == 0
    lines = capsys.readouterr().out.splitlines()
    total = next(line.split() for line in lines if line.startswith("Total"))
    assert total == ["Total", "3", "0", "2", "1", "0%", "67%", "3"]
    assert UNMATCHED in lines
    printed = "\n".join(lines)
    assert "Benefit outweighs risk for this patient (benefit-outweighs-risk)" in printed
    assert "r7?[2J (r7?[2J)" in printed and "\x1b" not in printed  # a client's code, made harmless


def test_the_report_page_shows_no_rate_without_alerts_and_counts_unmatched_feedback(client: TestClient) -> None:
    """Feedback about no card of the service, and no alert: the page says so, and a rate of
    nothing is no rate (a 0 % would read as every alert ignored). An alert then: its bar, ignored."""
    send_feedback(client, overridden(UNKNOWN_CARD))
    page = client.get("/analytics/report", params={"from": "2026-11-21", "to": "2026-11-21"})
    assert page.status_code == 200, page.text
    assert "Acceptance rate: —; override rate: —." in page.text
    assert UNMATCHED in page.text
    issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")  # an alert, ignored
    page = client.get("/analytics/report", params={"from": "2026-11-21", "to": "2026-11-21"})
    assert 'aria-label="Accepted 0, Overridden 0, Ignored 1 of 1 alerts"' in page.text
