"""A fetch cut off at the call's deadline ends unseen: no "Task exception was never retrieved".

QA round 2, F9: with a FHIR server slower than the deadline the call answered 200, and then the
log showed ``ERROR asyncio: Task exception was never retrieved ... FetchFailed ... TimeoutError``.
The outbound client's own timeout (``total``, the same deadline) fires with the call's: aiohttp
turns the call's cancellation into its TimeoutError, so the cut-off task ends in FetchFailed, not
cancelled, and no one retrieved it. The server's timing decides which comes first; here the
outbound call is made to end that way every time, through the real HTTP front.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.pipeline import fhir_pages
from cds_service.security.outbound import OutboundError
from tests.conftest import SELECT, cards_for, fetching_request, fixture, rule_ids
from tests.fhir_server import FhirTestServer

real_get_json = fhir_pages.get_json
PHENELZINE = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
CUT_OFF: list[str] = []  # the searches the deadline cancelled, in the order it cut them


async def _timing_out(http: Any, url: str, **options: Any) -> dict[str, Any]:
    """The imaging search, slower than the deadline, as aiohttp ends it when its own timer fires
    with the call's: the cancellation raised as its TimeoutError."""
    if "/ServiceRequest?" not in url:
        return await real_get_json(http, url, **options)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        CUT_OFF.append(url)
        raise OutboundError("TimeoutError") from None
    raise AssertionError("not cut off")


def test_a_fetch_cut_off_at_the_deadline_leaves_no_unretrieved_task(
    client: TestClient, fhir_server: FhirTestServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fhir_pages, "get_json", _timing_out)
    CUT_OFF.clear()
    response = client.post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 200, response.text
    assert len(CUT_OFF) == 1  # the deadline, not the server's 30 s, ended the imaging search
    [heat] = cards_for(response.json(), "nonpharmacologic-first-line")  # the service orders said not read
    assert "could not be checked" in heat["detail"]
    client.get("/healthz")  # a turn of the app's loop, for the cut-off task to end
    gc.collect()
    assert "never retrieved" not in caplog.text
    assert "prefetch imaging: fetching it failed" in caplog.text


def test_a_later_page_cut_off_at_the_deadline_is_cancelled_and_the_pages_read_kept(
    client: TestClient, fhir_server: FhirTestServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Page 1 of the orders read, page 2 still running at the deadline: the call answers from page
    1 (it was a 412), and page 2's request is cancelled, not left running after the call, its end
    retrieved."""
    phenelzine = fixture(PHENELZINE)["prefetch"]["medications"]["entry"][0]["resource"]
    fhir_server.add(phenelzine, {**phenelzine, "id": "maoi-2"})
    fhir_server.page_sizes["MedicationRequest"] = 1
    cancelled: list[bool] = []

    async def later_page_hangs(http: Any, url: str, **options: Any) -> dict[str, Any]:
        if "/MedicationRequest?" not in url or "_page=" not in url:
            return await real_get_json(http, url, **options)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise OutboundError("TimeoutError") from None  # as aiohttp ends it (above)
        raise AssertionError("not cut off")

    monkeypatch.setattr(fhir_pages, "get_json", later_page_hangs)
    response = client.post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-maoi" in rule_ids(response.json())
    assert response.json()["cards"][-1]["source"]["topic"]["code"] == "partial-history"
    client.get("/healthz")  # a turn of the app's loop, for the cut-off page to end
    gc.collect()
    assert cancelled == [True]
    assert "never retrieved" not in caplog.text


def test_a_key_whose_one_search_fails_fails_at_once_its_other_searches_cancelled(
    client: TestClient, fhir_server: FhirTestServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server of unknown version is asked every version's orders (MedicationRequest and
    MedicationOrder). One failing left the other running past the call's answer; then, made to
    wait for it, a later page of the other still running at the deadline made the key "read in
    part" (a 200) where a quicker one made it a 412, the failure never logged (a code review).
    The key fails at once, whatever the other's pace, and the other is cancelled."""
    fhir_server.metadata = False
    phenelzine = fixture(PHENELZINE)["prefetch"]["medications"]["entry"][0]["resource"]
    fhir_server.add(phenelzine, {**phenelzine, "id": "maoi-2"})
    fhir_server.page_sizes["MedicationRequest"] = 1
    cancelled: list[str] = []
    later_page: list[asyncio.Event] = []  # made on the app's loop

    async def one_fails_one_hangs(http: Any, url: str, **options: Any) -> dict[str, Any]:
        asked = later_page or [asyncio.Event()]
        later_page[:] = asked
        if "/MedicationOrder?" in url:
            await asyncio.wait_for(asked[0].wait(), 5)  # fails once the other is on its page 2
            raise OutboundError("ConnectionResetError")
        if "/MedicationRequest?" in url and "_page=" in url:
            asked[0].set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(url)
                raise OutboundError("TimeoutError") from None  # as aiohttp ends it (above)
        return await real_get_json(http, url, **options)

    monkeypatch.setattr(fhir_pages, "get_json", one_fails_one_hangs)
    response = client.post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 412, response.text
    assert "prefetch.medications" in response.text
    client.get("/healthz")  # a turn of the app's loop
    assert len(cancelled) == 1  # the other search's later page, cancelled with the key
    assert "ConnectionResetError" in caplog.text  # the failure said
    assert "never retrieved" not in caplog.text
