"""A small real FHIR server over HTTP on loopback, serving ``fixtures/fhir/demo-patients.json``.

Enough of the FHIR REST API for the service's fetches: read (``GET /fhir/Patient/x``) and
search by patient (``GET /fhir/Condition?patient=x``), paged with ``next`` links. Tests can
make it slow or failing, and read back what it was asked and with which headers.
"""

from __future__ import annotations

import json
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


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class FhirTestServer:
    resources: list[dict[str, Any]]
    page_size: int = 50
    delay: float = 0.0
    fail_status: int | None = None
    # Resource types whose reads and searches fail with 500.
    fail_for: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    base: str = ""

    def add(self, *resources: dict[str, Any]) -> None:
        self.resources.extend(resources)

    def searched(self, resource_type: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(f"/fhir/{resource_type}")]

    def handle(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.seen.append(Seen(path, headers))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_status:
            return self.fail_status, {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "exception"}],
            }
        url = urlsplit(path)
        parts = url.path.removeprefix("/fhir/").split("/")
        if parts[0] in self.fail_for:
            return 500, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
        if len(parts) == 2:
            found = [r for r in self.resources if r["resourceType"] == parts[0] and r["id"] == parts[1]]
            return (200, found[0]) if found else (404, {"resourceType": "OperationOutcome", "issue": []})
        query = parse_qs(url.query)
        patient = query.get("patient", [""])[0].removeprefix("Patient/")
        matches = [
            r
            for r in self.resources
            if r["resourceType"] == parts[0]
            and (r.get("subject") or r.get("patient") or {}).get("reference") == f"Patient/{patient}"
        ]
        page = int(query.get("_page", ["0"])[0])
        chunk = matches[page * self.page_size : (page + 1) * self.page_size]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": [{"relation": "self", "url": f"{self.base}/{parts[0]}?patient={patient}&_page={page}"}],
            "entry": [{"fullUrl": f"{self.base}/{r['resourceType']}/{r['id']}", "resource": r} for r in chunk],
        }
        if (page + 1) * self.page_size < len(matches):
            bundle["link"].append(
                {"relation": "next", "url": f"{self.base}/{parts[0]}?patient={patient}&_page={page + 1}"}
            )
        return 200, bundle


def demo_resources() -> list[dict[str, Any]]:
    bundle = json.loads((FIXTURES / "fhir" / "demo-patients.json").read_text())
    return [entry["resource"] for entry in bundle["entry"]]


def start(server_state: FhirTestServer) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = server_state.handle(self.path, {k.lower(): v for k, v in self.headers.items()})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.base = f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True)
    thread.start()
    return httpd, thread
