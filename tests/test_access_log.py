"""The access line, the one line a request logs at INFO, in a real ``cds-service serve``'s text log:
its hookInstance as CDS Hooks allows it to be written (else not at all), the route's template
rather than the path and query string called, and a hook call's outcome."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from tests.conftest import SELECT, Served, fixture

PATIENT_ID = "pt-R2D4X8KQ"


def _stopped(served: Served) -> str:
    """The log of ``served`` once it has stopped."""
    server, _ = served
    server.terminate()
    return server.communicate(timeout=10)[0].decode()


@pytest.mark.serve(CDS_AUTH_MODE="off", CDS_LOG_FORMAT="text")
def test_a_hook_instance_is_logged_in_each_form_of_a_uuid_and_else_not_at_all(served: Served) -> None:
    """A UUID with or without hyphens, in either case, or as a ``urn:uuid:`` URN is said as sent;
    a UUID with text after it is free text like any other (a client's patient, a forged line)."""
    one = uuid.uuid4()
    sent = {
        "urn": f"urn:uuid:{one}",
        "bare": uuid.uuid4().hex,
        "upper": str(uuid.uuid4()).upper(),
        "tailed": f"{uuid.uuid4()} {PATIENT_ID}",
    }
    _, port = served
    try:
        for hook_instance in sent.values():
            request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
            request["hookInstance"] = hook_instance
            answer = requests.post(f"http://127.0.0.1:{port}{SELECT}", json=request, timeout=10)
            assert answer.status_code == 200, answer.text
    finally:
        log = _stopped(served)
    for form in ("urn", "bare", "upper"):
        assert f"[{sent[form]}]: POST /cds-services/{{service_id}} 200" in log, form
    assert log.count("[(not a UUID)]: POST /cds-services/{service_id} 200") == 1
    assert PATIENT_ID not in log


@pytest.mark.serve(CDS_AUTH_MODE="off", CDS_LOG_FORMAT="text")
def test_the_access_line_names_the_route_and_what_a_hook_call_answered(served: Served) -> None:
    """The route's template, never the path or query string it was called with (a client may
    put a patient in either); an unknown path is "unmatched"; a hook call says its cards."""
    server, port = served
    base = f"http://127.0.0.1:{port}"
    try:
        assert requests.get(f"{base}/cds-services?patient={PATIENT_ID}", timeout=10).status_code == 200
        assert requests.get(f"{base}/{PATIENT_ID}", timeout=10).status_code == 404
        request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
        assert requests.post(f"{base}{SELECT}", json=request, timeout=10).status_code == 200
    finally:
        log = _stopped(served)
    assert re.search(rf" \[{server.pid}\] INFO cds_service.access \[-\]: GET /cds-services 200 [\d.]+ ms\n", log)
    lines = [line for line in log.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert lines and all(f" [{server.pid}] " in line for line in lines)  # told apart from other processes'

    assert re.search(r": GET unmatched 404 [\d.]+ ms\n", log)
    assert re.search(
        r": POST /cds-services/\{service_id} 200 [\d.]+ ms: 1 card\(s\) \['cyclobenzaprine-duration'\]", log
    )
    assert PATIENT_ID not in log
