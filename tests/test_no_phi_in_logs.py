"""No patient data in the logs, whatever the service and its libraries are doing: a whole session
against a real ``cds-service serve`` at DEBUG (its libraries then log at INFO), every line scanned.

The session is what a deployment sees: hook calls that fetch the patient, conditions and
medications from the FHIR server with the client's access token, feedback with a clinician's
free-text comment, a database error while storing feedback, and a URL with a query string."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

from tests.conftest import SELECT, SIGN, fixture
from tests.feedback_calls import overridden
from tests.fhir_server import FhirTestServer
from tests.serving import launch, wait_until_listening
from tests.tokens import ISSUER, SigningKey, claims, jwks

# Everything below is what the logs must never hold: made distinctive, so a hit is a leak.
PATIENT_ID = "pt-Q7ZK94XW"
FAMILY, GIVEN, BIRTH_DATE = "Quixotewright", "Zephyrine", "1962-04-17"
ACCESS_TOKEN = "fhir-access-token-5b1e0c77d2"
COMMENTS = ["Pt reports dizziness with prior course, wife drives her", "Second note: allergy to tape, not stored?"]
QUERY_SECRET = "query-secret-8f3a"


def patient_resources(fhir: FhirTestServer) -> None:
    """The patient of the session, with the problem list and a prior course the rules read."""
    hepatic = [r for r in fhir.resources if (r.get("subject") or {}).get("reference") == "Patient/demo-hepatic"]
    own = [json.loads(json.dumps(r).replace("demo-hepatic", PATIENT_ID)) for r in hepatic]
    for resource in own:
        resource["id"] = f"{resource['id']}-{PATIENT_ID}"
    patient = {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female", "birthDate": BIRTH_DATE}
    patient["name"] = [{"family": FAMILY, "given": [GIVEN]}]
    fhir.add(patient, *own)


def hook_request(fhir: FhirTestServer, hook: str) -> dict[str, Any]:
    request = fixture("sandbox/order-select-r4.json")
    request["hook"] = hook
    request["hookInstance"] = str(uuid.uuid4())
    request["context"]["patientId"] = PATIENT_ID
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["subject"] = {"reference": f"Patient/{PATIENT_ID}"}
    if hook == "order-sign":
        del request["context"]["selections"]
    request["fhirServer"] = fhir.base
    request["fhirAuthorization"] = {
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "back-spasm-cds",
    }
    del request["prefetch"]  # all fetched, with the token
    return request


def odd_request(fhir: FhirTestServer) -> dict[str, Any]:
    """An order-select whose draft the R4 model rejects and whose history holds a DSTU2 resource
    nested too deep to read, each with an id built from the patient's, as some EHRs build them:
    both are logged, by type only. The draft's keys R4 does not define are the client's words
    too: one names the patient, one would forge a log line (a security review)."""
    request = hook_request(fhir, "order-select")
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft.update(id=f"draft-{PATIENT_ID}", authoredOn="not a date")
    draft[f"note {FAMILY} {PATIENT_ID}"] = "x"
    draft["dosageInstruction"][0][f"x\n2026-01-01 ERROR forged {GIVEN}"] = "x"
    request["context"]["selections"] = [f"MedicationRequest/draft-{PATIENT_ID}"]
    deep: dict[str, Any] = {"url": "urn:example:deep"}
    for _ in range(120):
        deep = {"url": "urn:example:deep", "extension": [deep]}
    order = {"resourceType": "MedicationOrder", "id": f"order-{PATIENT_ID}", "status": "active", "extension": [deep]}
    rxnorm = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "828348"}
    order["medicationCodeableConcept"] = {"coding": [rxnorm]}  # a relaxant: read, not dismissed unread
    request["prefetch"] = {"medications": {"resourceType": "Bundle", "entry": [{"resource": order}]}}
    return request


class Session:
    """The service under test and the client JWTs it is called with (all of them scanned for)."""

    def __init__(self, port: int, key: SigningKey) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.key = key
        self.tokens: list[str] = []

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        token = self.key.sign(claims(self.base + path, time.time()))
        self.tokens.append(token)
        return requests.post(self.base + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def feedback(self, path: str, card: dict[str, Any], comment: str) -> requests.Response:
        reason = card["overrideReasons"][0]
        item = {
            "card": card["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": {"system": reason["system"], "code": reason["code"]}, "userComment": comment},
            "outcomeTimestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        return self.post(path + "/feedback", {"feedback": [item]})


def test_a_whole_session_at_debug_logs_no_patient_data_token_or_comment(
    tmp_path: Path, fhir_server: FhirTestServer
) -> None:
    patient_resources(fhir_server)
    key = SigningKey.generate("ES384")
    trusted = tmp_path / "trusted-clients.json"
    trusted.write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(key), "fhir_servers": [fhir_server.base]}]))
    server, port = launch(tmp_path, CDS_LOG_LEVEL="DEBUG", CDS_TRUSTED_CLIENTS_FILE=str(trusted))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(raw.decode() for raw in server.stdout), daemon=True)  # type: ignore[union-attr]
    reader.start()
    session = Session(port, key)
    try:
        wait_until_listening(server, port)
        select = session.post(SELECT, hook_request(fhir_server, "order-select"))
        assert select.status_code == 200, select.text
        sign = session.post(SIGN, hook_request(fhir_server, "order-sign"))
        assert sign.status_code == 200, sign.text
        odd = session.post(SELECT, odd_request(fhir_server))
        assert odd.status_code == 200, odd.text
        assert fhir_server.searched("Condition") and fhir_server.searched("Patient")  # fetched, with the token
        assert all(seen.headers.get("authorization") == f"Bearer {ACCESS_TOKEN}" for seen in fhir_server.seen)
        card = select.json()["cards"][0]
        assert session.feedback(SELECT, card, COMMENTS[0]).status_code == 200

        # A database error while the second comment is stored: the feedback table is gone.
        with sqlite3.connect(tmp_path / "cds-service.db") as database:
            database.execute("ALTER TABLE feedback RENAME TO feedback_away")
        failed = session.feedback(SELECT, card, COMMENTS[1])
        assert failed.status_code >= 500 and failed.headers["connection"] == "close"
        with sqlite3.connect(tmp_path / "cds-service.db") as database:
            database.execute("ALTER TABLE feedback_away RENAME TO feedback")

        requests.get(f"{session.base}/analytics?from=2026-01-01&note={QUERY_SECRET}", timeout=10)
    finally:
        server.terminate()
        server.wait(timeout=10)
        reader.join(timeout=5)
        server.stdout.close()  # type: ignore[union-attr]

    log = "".join(lines)
    assert log.count("card(s)") == 3  # the session ran, and its hook calls were logged
    assert any(json.loads(line)["level"] == "ERROR" for line in lines)  # the database error is in the log
    private = [PATIENT_ID, FAMILY, GIVEN, BIRTH_DATE, ACCESS_TOKEN, *COMMENTS, QUERY_SECRET]
    # A JWT's signature part alone would give the token away too.
    private += [part for token in session.tokens for part in (token, token.rsplit(".", 1)[1])]
    leaks = {secret: [line for line in lines if secret in line][:2] for secret in private if secret in log}
    assert leaks == {}
    assert "a MedicationRequest in draftOrders read tolerantly" in log and "skipping a MedicationOrder" in log
    assert "dosageInstruction.0: a field R4 does not define" in log and "forged" not in log
    # uvicorn's own copy of its message for terminals, escape codes and all, is not a log field.
    assert "color_message" not in log and "\\u001b" not in log


def test_a_postgresql_error_quoting_a_comment_is_logged_by_class_and_sqlstate(
    tmp_path: Path, postgresql_url: str
) -> None:
    # PostgreSQL quotes in an error what it refused ("Failing row contains (…)"), in the message
    # psycopg raises, where SQLAlchemy's hidden parameters do not reach: a trigger stands in for it.
    refuse = """
        CREATE FUNCTION refuse_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'refused: %', NEW.user_comment USING DETAIL = 'Failing row contains (' || NEW.user_comment || ')';
        END $$;
        CREATE TRIGGER refuse BEFORE INSERT ON feedback FOR EACH ROW EXECUTE FUNCTION refuse_feedback();
    """
    server, port = launch(tmp_path, CDS_AUTH_MODE="off", CDS_DATABASE_URL=postgresql_url, CDS_LOG_LEVEL="DEBUG")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_listening(server, port)
        answer = requests.post(
            f"{base}{SELECT}", json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"), timeout=10
        )
        assert answer.status_code == 200, answer.text
        card = answer.json()["cards"][0]
        engine = create_engine(postgresql_url)
        with engine.begin() as connection:
            connection.execute(text(refuse))
        engine.dispose()
        item = overridden(card) | {"overrideReason": {"userComment": COMMENTS[0]}}
        failed = requests.post(f"{base}{SELECT}/feedback", json={"feedback": [item]}, timeout=10)
        # A 500 ends its connection, and says so: a pooled client sends nothing more into it.
        assert failed.status_code == 500 and failed.headers["connection"] == "close"
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    errors = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"ERROR"' in line]
    assert any("RaiseException P0001" in error.get("exception", "") for error in errors), output[-3000:]
    assert COMMENTS[0] not in output


def test_a_hook_instance_that_is_no_uuid_is_not_logged(tmp_path: Path) -> None:
    """CDS Hooks makes it a UUID; a client once sent its patient in it, and in the text log a
    newline in it wrote a line of its own."""
    server, port = launch(tmp_path, CDS_AUTH_MODE="off", CDS_LOG_FORMAT="text")
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["hookInstance"] = f"PATIENT-{PATIENT_ID} {GIVEN}\nERROR cds_service.storage forged"
    try:
        wait_until_listening(server, port)
        answer = requests.post(f"http://127.0.0.1:{port}{SELECT}", json=request, timeout=10)
        assert answer.status_code == 200, answer.text
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    assert "[(not a UUID)]: POST /cds-services/{service_id} 200" in output
    assert PATIENT_ID not in output and GIVEN not in output and "forged" not in output
