"""A small real FHIR server over HTTP on loopback, serving ``fixtures/fhir/demo-patients.json``.

Enough of the FHIR REST API for the service's fetches: read (``GET /fhir/Patient/x``) and
search by patient (``GET /fhir/Condition?patient=x``) or by id (``GET /fhir/Medication?_id=a,b``),
paged with ``next`` links, and ``/metadata``. Tests can make it slow or failing, and read back
what it was asked and with which headers.

It speaks R4, STU3 or DSTU2 (``version``), the way real servers of each do: its resources
(written in R4) are served in that version's shape (a DSTU2 server has ``MedicationOrder``),
and a search for a type the version lacks gets what real servers answer: HAPI's 404 with an
OperationOutcome naming the type, a 400 ``not-supported``, or (``lenient``) an empty Bundle.
"""

from __future__ import annotations

import contextlib
import copy
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# How often a test server's loop checks for shutdown (``serve_forever``'s default is 0.5 s).
POLL_SECONDS = 0.02


# The resource types each version's server has, of those the service reads.
TYPES = {
    "R4": {"Patient", "Condition", "MedicationRequest", "ServiceRequest", "Medication"},
    "STU3": {"Patient", "Condition", "MedicationRequest", "ProcedureRequest", "Medication"},
    "DSTU2": {"Patient", "Condition", "MedicationOrder", "ProcedureRequest", "DiagnosticOrder", "Medication"},
}
RELEASES = {"R4": "4.0.1", "STU3": "3.0.2", "DSTU2": "1.0.2"}


def _older_dosage(dosage: dict[str, Any], version: str) -> dict[str, Any]:
    dosage = dict(dosage)
    for dose_and_rate in dosage.pop("doseAndRate", [])[:1]:
        dosage.update(dose_and_rate)
    repeat = dosage.get("timing", {}).get("repeat")
    if version == "DSTU2" and repeat and "periodUnit" in repeat:
        repeat["periodUnits"] = repeat.pop("periodUnit")
    return dosage


def _rename(resource: dict[str, Any], old: str, new: str) -> None:
    if old in resource:
        resource[new] = resource.pop(old)


def in_version(resource: dict[str, Any], version: str) -> dict[str, Any]:
    """An R4 resource as a server of ``version`` holds it (what the service reads back as R4)."""
    if version == "R4":
        return resource
    older = copy.deepcopy(resource)
    kind = older["resourceType"]
    if kind == "Condition":
        for status in ("clinicalStatus", "verificationStatus"):
            if isinstance(older.get(status), dict):
                older[status] = older[status]["coding"][0]["code"]
        if version == "DSTU2":
            _rename(older, "subject", "patient")
            _rename(older, "recordedDate", "dateRecorded")
            older.pop("category", None)  # a single CodeableConcept in DSTU2, of other codes
    elif kind == "MedicationRequest":
        older["dosageInstruction"] = [_older_dosage(d, version) for d in older.get("dosageInstruction", [])]
        if version == "DSTU2":
            older["resourceType"] = "MedicationOrder"
            _rename(older, "subject", "patient")
            _rename(older, "authoredOn", "dateWritten")
            older.pop("intent", None)
    elif kind == "ServiceRequest" and version == "STU3":
        older["resourceType"] = "ProcedureRequest"
    elif kind == "ServiceRequest":  # DSTU2's service orders are DiagnosticOrders
        older["resourceType"] = "DiagnosticOrder"
        older["item"] = [{"code": older.pop("code")}]
        older["event"] = [{"status": "requested", "dateTime": older.pop("authoredOn")}]
        older["status"] = {"active": "requested"}.get(older["status"], older["status"])
        older.pop("intent", None)
    return older


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class FhirTestServer:
    resources: list[dict[str, Any]]
    page_size: int = 50  # what a page holds at most (``_count`` may ask for fewer)
    page_sizes: dict[str, int] = field(default_factory=dict)  # by resource type, where not ``page_size``
    delay: float = 0.0
    # The resource types whose answers take ``delay`` (none named here or below: every answer).
    slow: set[str] = field(default_factory=set)
    # Resource types whose searches' later pages (``_page`` over 0) take ``delay``, the first answered at once.
    slow_later_pages: set[str] = field(default_factory=set)
    fail_status: int | None = None
    # Resource types whose reads and searches fail with 500.
    fail_for: set[str] = field(default_factory=set)
    # Resource types whose searches' later pages (``_page`` over 0) fail with 500, the first answered.
    fail_later_pages: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    base: str = ""
    version: str = "R4"
    # How a search for a type the version lacks is answered: 404 (HAPI), 400, or 200 (lenient).
    unknown_type_status: int = 404
    # Whether ``/metadata`` answers (else 404), and types it leaves out of its CapabilityStatement.
    metadata: bool = True
    unlisted: set[str] = field(default_factory=set)
    # A fixed answer (status, body) to every request for a resource type.
    canned: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    # A ``Set-Cookie`` value sent with every answer (a server that keeps sessions).
    cookie: str | None = None
    # Whether its CapabilityStatement says its order searches can ``_include`` their Medications
    # (it honours ``_include`` either way, as a lenient server ignores what it was not asked).
    includes: bool = True
    # Whether its answers are sent in chunks, their length not declared (a streaming server's way).
    chunked: bool = False
    # Whether it refuses a search with ``_include`` (400) though it says it can, and in which words
    # (``{}``: the include asked).
    refuse_include: bool = False
    include_refusal: str = "Include '{}' is not supported"
    # The ``total`` its searches of a resource type say, where not the number matched: a server
    # that cuts its answer short with no ``next`` link says more, and a broken one no number.
    totals: dict[str, Any] = field(default_factory=dict)

    def add(self, *resources: dict[str, Any]) -> None:
        self.resources.extend(resources)

    def served(self) -> list[dict[str, Any]]:
        return [in_version(r, self.version) for r in self.resources]

    def _capability(self, kind: str) -> dict[str, Any]:
        """A type's entry; the order types say they can ``_include`` their Medications, unless told not to."""
        entry: dict[str, Any] = {"type": kind, "interaction": [{"code": "read"}]}
        if kind in ("MedicationRequest", "MedicationOrder") and self.includes:
            entry["searchInclude"] = [f"{kind}:medication"]
        return entry

    def capability_statement(self) -> tuple[int, dict[str, Any]]:
        if not self.metadata:
            return 404, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
        types = sorted(TYPES[self.version] - self.unlisted)
        return 200, {
            "resourceType": "Conformance" if self.version == "DSTU2" else "CapabilityStatement",
            "status": "active",
            "fhirVersion": RELEASES[self.version],
            "rest": [{"mode": "server", "resource": [self._capability(t) for t in types]}],
        }

    def _named_medications(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        named = {(o.get("medicationReference") or {}).get("reference") for o in orders}
        return [r for r in self.served() if r["resourceType"] == "Medication" and f"Medication/{r['id']}" in named]

    def unknown_type(self, kind: str) -> tuple[int, dict[str, Any]]:
        if self.unknown_type_status == 404:  # HAPI's answer
            message = (
                f"HAPI-0302: Unknown resource type '{kind}' - Server knows how to handle: {sorted(TYPES[self.version])}"
            )
            issue: dict[str, object] = {"severity": "error", "code": "processing", "diagnostics": message}
        else:
            issue = {
                "severity": "error",
                "code": "not-supported",
                "details": {"text": f"Resource type {kind} is not supported"},
            }
        return self.unknown_type_status, {"resourceType": "OperationOutcome", "issue": [issue]}

    def searched(self, resource_type: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(f"/fhir/{resource_type}")]

    def handle(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.seen.append(Seen(path, headers))
        url = urlsplit(path)
        parts = url.path.removeprefix("/fhir/").split("/")
        every = not (self.slow or self.slow_later_pages)
        later = parse_qs(url.query).get("_page", ["0"])[0] != "0"
        if self.delay and (every or parts[0] in self.slow or (later and parts[0] in self.slow_later_pages)):
            time.sleep(self.delay)
        if self.fail_status:
            return self.fail_status, {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "exception"}],
            }
        if parts[0] in self.fail_for:
            return 500, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
        if parts == ["metadata"]:
            return self.capability_statement()
        if parts[0] in self.canned:
            return self.canned[parts[0]]
        if parts[0] not in TYPES[self.version] and self.unknown_type_status != 200:
            return self.unknown_type(parts[0])
        if len(parts) == 2:
            found = [r for r in self.served() if r["resourceType"] == parts[0] and r["id"] == parts[1]]
            return (200, found[0]) if found else (404, {"resourceType": "OperationOutcome", "issue": []})
        query = parse_qs(url.query)
        patient = query.get("patient", [""])[0].removeprefix("Patient/")
        ids = set(query["_id"][0].split(",")) if "_id" in query else None
        matches = [
            r
            for r in self.served()
            if r["resourceType"] == parts[0]
            and (r["id"] in ids if ids is not None else _subject(r) == f"Patient/{patient}")
        ]
        page = int(query.get("_page", ["0"])[0])
        if page and parts[0] in self.fail_later_pages:
            return 500, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
        # The search on every page, as HAPI's links keep it (its ``_include`` too).
        asked = "&".join(f"{name}={value}" for name, values in query.items() if name != "_page" for value in values)
        most = self.page_sizes.get(parts[0], self.page_size)
        size = min(int(query.get("_count", [most])[0]), most)  # its most a page, as HAPI's
        chunk = matches[page * size : (page + 1) * size]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": self.totals.get(parts[0], len(matches)),
            "link": [{"relation": "self", "url": f"{self.base}/{parts[0]}?{asked}&_page={page}"}],
            "entry": [{"fullUrl": f"{self.base}/{r['resourceType']}/{r['id']}", "resource": r} for r in chunk],
        }
        include = query.get("_include", [])
        if include and self.refuse_include:
            issue = {
                "severity": "error",
                "code": "not-supported",
                "diagnostics": self.include_refusal.format(include[0]),
            }
            return 400, {"resourceType": "OperationOutcome", "issue": [issue]}
        if f"{parts[0]}:medication" in include:  # the Medications the page's orders name
            bundle["entry"] += [{"resource": m, "search": {"mode": "include"}} for m in self._named_medications(chunk)]
        if (page + 1) * size < len(matches):
            bundle["link"].append({"relation": "next", "url": f"{self.base}/{parts[0]}?{asked}&_page={page + 1}"})
        return 200, bundle


def _subject(resource: dict[str, Any]) -> str | None:
    return (resource.get("subject") or resource.get("patient") or {}).get("reference")


def demo_resources() -> list[dict[str, Any]]:
    bundle = json.loads((FIXTURES / "fhir" / "demo-patients.json").read_text())
    return [entry["resource"] for entry in bundle["entry"]]


class _Server(ThreadingHTTPServer):
    # ``socketserver``'s listen backlog is 5: eight hook calls at once open ~32 connections, the
    # kernel drops the SYNs past the backlog and the client resends them a second later, which
    # made the fetched call's p99 one second (``make bench``). A real FHIR server listens deeper.
    request_queue_size = 128


def start(
    server_state: FhirTestServer, *, tls: ssl.SSLContext | None = None, name: str = "127.0.0.1"
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serves on loopback; with ``tls``, over https as ``name`` (reached through a proxy that
    knows the name, or a resolver that does)."""

    class Handler(BaseHTTPRequestHandler):
        # Connections kept open, as real FHIR servers keep them; each answer leaves at once
        # (headers and body are two writes: with Nagle's algorithm the second waited 40 ms for
        # the client's delayed ACK).
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            status, body = server_state.handle(self.path, {k.lower(): v for k, v in self.headers.items()})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            if server_state.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                size = 4096
                payload = (
                    b"".join(
                        b"%x\r\n%s\r\n" % (len(part), part)
                        for part in (payload[i : i + size] for i in range(0, len(payload), size))
                    )
                    + b"0\r\n\r\n"
                )
            else:
                self.send_header("Content-Length", str(len(payload)))
            if server_state.cookie:
                self.send_header("Set-Cookie", server_state.cookie)
            # The service may give up on a fetch (its deadline, or its caller hung up): not news.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.end_headers()
                self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = _Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    server_state.base = f"{'https' if tls else 'http'}://{name}:{httpd.server_address[1]}/fhir"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True)
    thread.start()
    return httpd, thread
