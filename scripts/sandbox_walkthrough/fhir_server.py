"""An open FHIR server the CDS Hooks sandbox can reach, serving the demo patients dated for today.

    python scripts/sandbox_walkthrough/fhir_server.py --port 8080            # FHIR R4
    python scripts/sandbox_walkthrough/fhir_server.py --port 8081 --dstu2    # DSTU2, like the sandbox's default

Why it exists: the walk-through needs a FHIR server the browser can reach with CORS, and there is
no Docker here. The sandbox's default server (the public DSTU2 ``launch.smarthealthit.org/v/r2/fhir``)
cannot be reached from this machine either, so ``--dstu2`` emulates it: ``/metadata`` says
``fhirVersion 1.0.2`` (which makes the sandbox build ``MedicationOrder`` drafts), medication history
is served as ``MedicationOrder`` and conditions in DSTU2's shape, imaging orders would be
``DiagnosticOrder``/``ProcedureRequest`` (the demo patients have none), and the R4-only types
(``MedicationRequest``, ``ServiceRequest``) are unknown: 404, as a DSTU2 HAPI server answers.

It implements just what the sandbox and the service ask for: ``GET /metadata``, read, search by
``patient`` (GET, and the sandbox's ``POST {Type}/_search`` form), and ``GET /Patient``. Standard
library only; the data comes from ``tools/demo_data.py``, so every date moves with today.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.demo_data import demo_bundle

R4_ONLY = {"MedicationRequest", "ServiceRequest"}
# The order and history types each version has (searchable, empty when the demo data has none).
TYPES = {
    "1.0.2": {"Patient", "Condition", "MedicationOrder", "DiagnosticOrder", "ProcedureRequest"},
    "4.0.1": {"Patient", "Condition", "MedicationRequest", "ServiceRequest"},
}


def dstu2(resource: dict[str, Any]) -> dict[str, Any] | None:
    """``resource`` as a DSTU2 server holds it (only the fields the demo data has), or None."""
    kind = resource["resourceType"]
    if kind == "MedicationRequest":
        dosage = [
            {"timing": {"repeat": units(d["timing"]["repeat"])}, "doseQuantity": d["doseAndRate"][0]["doseQuantity"]}
            for d in resource.get("dosageInstruction", [])
        ]
        return {
            "resourceType": "MedicationOrder",
            "id": resource["id"],
            "status": resource["status"],
            "patient": resource["subject"],
            "dateWritten": resource["authoredOn"],
            "medicationCodeableConcept": resource["medicationCodeableConcept"],
            "dosageInstruction": dosage,
            "dispenseRequest": resource.get("dispenseRequest", {}),
        }
    if kind == "Condition":
        return {
            "resourceType": "Condition",
            "id": resource["id"],
            "patient": resource["subject"],
            "code": resource["code"],
            "category": resource["category"][0],
            "clinicalStatus": resource["clinicalStatus"]["coding"][0]["code"],
            "verificationStatus": resource["verificationStatus"]["coding"][0]["code"],
            "onsetDateTime": resource["onsetDateTime"],
        }
    return None if kind in R4_ONLY else resource


def units(repeat: dict[str, Any]) -> dict[str, Any]:
    """A timing repeat in DSTU2's spelling (``periodUnits``, R4's ``periodUnit``)."""
    return {("periodUnits" if key == "periodUnit" else key): value for key, value in repeat.items()}


class Store:
    """The resources served, and how they are found."""

    def __init__(self, resources: list[dict[str, Any]], version: str, base: str) -> None:
        self.resources = resources
        self.version = version
        self.base = base

    def types(self) -> set[str]:
        return {r["resourceType"] for r in self.resources} | TYPES[self.version]

    def metadata(self) -> dict[str, Any]:
        kind = "Conformance" if self.version == "1.0.2" else "CapabilityStatement"
        rest = [{"mode": "server", "resource": [{"type": t} for t in sorted(self.types())]}]
        return {"resourceType": kind, "status": "active", "kind": "instance", "fhirVersion": self.version, "rest": rest}

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.removeprefix("/fhir").split("/") if p]
        if parts == ["metadata"]:
            return 200, self.metadata()
        if not parts or parts[0] not in self.types() or len(parts) > 2:
            return 404, outcome(f"Unknown resource type '{parts[0] if parts else ''}'")
        if len(parts) == 2 and parts[1] != "_search":
            found = [r for r in self.resources if r["resourceType"] == parts[0] and r["id"] == parts[1]]
            return (200, found[0]) if found else (404, outcome(f"{parts[0]}/{parts[1]} is not known"))
        patient = query.get("patient", [""])[0].removeprefix("Patient/")
        matches = [r for r in self.resources if r["resourceType"] == parts[0] and (not patient or of(r) == patient)]
        entries = [{"fullUrl": f"{self.base}/{r['resourceType']}/{r['id']}", "resource": r} for r in matches]
        return 200, {"resourceType": "Bundle", "type": "searchset", "total": len(matches), "entry": entries}


def of(resource: dict[str, Any]) -> str:
    """The id of the patient ``resource`` belongs to (a Patient belongs to itself)."""
    reference = resource.get("subject") or resource.get("patient") or {"reference": f"Patient/{resource['id']}"}
    return str(reference.get("reference", "")).removeprefix("Patient/")


def outcome(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "not-found", "diagnostics": text}],
    }


def handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def send(self, status: int, body: dict[str, Any] | None) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            # The sandbox is a browser app on another origin: every answer needs CORS.
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            # The hosted sandbox (a public page) reaching this machine: Chrome's Private Network Access.
            self.send_header("Access-Control-Allow-Private-Network", "true")
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_OPTIONS(self) -> None:
            self.send(204, None)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            self.send(*store.answer(url.path, parse_qs(url.query)))

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            form = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            self.send(*store.answer(url.path, parse_qs(url.query) | parse_qs(form)))

        def log_message(self, format: str, *args: Any) -> None:
            # Method, path (no query string: it names the patient) and status, for the walk-through log.
            if len(args) >= 2:
                line = str(args[0]).split("?")[0].removesuffix(" HTTP/1.1")
                sys.stderr.write(f"fhir {store.version}: {line} -> {args[1]}\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dstu2", action="store_true", help="serve DSTU2 (1.0.2), like the sandbox's default server")
    parser.add_argument("--today", type=date.fromisoformat, help="date the patients for this day (default: today, UTC)")
    args = parser.parse_args(argv)
    resources = [e["resource"] for e in demo_bundle(args.today or datetime.now(UTC).date())["entry"]]
    if args.dstu2:
        resources = [r for r in map(dstu2, resources) if r is not None]
    store = Store(resources, "1.0.2" if args.dstu2 else "4.0.1", f"http://localhost:{args.port}/fhir")
    server = ThreadingHTTPServer((args.host, args.port), handler(store))
    print(f"FHIR {store.version} with the demo patients at {store.base}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
