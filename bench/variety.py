"""The facts and rules of 500-entry histories as a site sends them, against the one history
``make bench`` repeats.

``make bench`` sends one history over and over: every call after the first meets concepts and
dosing plans the process has already read (``fhir/memo.py``). A site's patients differ: problem
lists drawn from thousands of codes, orders for hundreds of products, dosages dated per order,
and, from Epic, drugs named by ``medicationReference`` to Medication resources included beside
the orders. This script builds such histories (seeded, so the same on every run), parses and
prepares each as the service does, then times ``pipeline.assess`` (the patient's facts and the
rules: the stage a history's variety reaches) over them, in one process:

- the bench's history, repeated (what ``make bench`` measures);
- varied histories, drugs named inline: the first pass over them (concepts and plans met for the
  first time, as after a start or at a site's first calls), then again (the tables warm: a site's
  steady state, its patients' concepts all met before);
- the same with drugs named by reference (another seed, so its concepts are new to the process).

    python bench/variety.py [--patients 200] [--problems 2000] [--products 800]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scenarios import CONDITIONS, MEDICATIONS, SELECT, TODAY, sandbox_order, scenarios  # noqa: E402
from cds_service.clock import at_noon  # noqa: E402
from cds_service.pipeline import evaluate as pipeline  # noqa: E402
from cds_service.pipeline.knowledge import load_knowledge  # noqa: E402
from cds_service.pipeline.prefetch import complete_prefetch  # noqa: E402
from cds_service.protocol.body import parse_body  # noqa: E402
from cds_service.protocol.services import SERVICES  # noqa: E402
from cds_service.settings import Settings  # noqa: E402

ENTRIES = 500
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


class Pools:
    """The codes a site's histories draw from: made-up problem codes (ICD-10-CM- and SNOMED-shaped,
    none a rule reads) and products, with the bench's own known ones among them."""

    def __init__(self, rng: random.Random, problems: int, products: int) -> None:
        self.problems = [_problem(rng) for _ in range(problems)] + CONDITIONS
        self.products = [
            (str(rng.randrange(100_000, 2_000_000)), f"product {i} 10 MG Oral Tablet") for i in range(products)
        ]
        self.products += MEDICATIONS


def _problem(rng: random.Random) -> tuple[str, str, str]:
    if rng.random() < 0.6:
        code = f"{rng.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ')}{rng.randrange(100):02d}.{rng.randrange(100):02d}"
        return "http://hl7.org/fhir/sid/icd-10-cm", code, f"Problem {code}"
    code = str(rng.randrange(10**8, 10**9))
    return "http://snomed.info/sct", code, f"Finding {code}"


def _condition(i: int, rng: random.Random, pools: Pools, subject: dict[str, str], on: date) -> dict[str, Any]:
    system, code, text = rng.choice(pools.problems)
    return {
        "resourceType": "Condition",
        "id": f"c{i}",
        "subject": subject,
        "onsetDateTime": on.isoformat(),
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": rng.choice(["active", "resolved"])}]},
        "code": {"coding": [{"system": system, "code": code, "display": text}], "text": text},
    }


def _order(i: int, rng: random.Random, pools: Pools, subject: dict[str, str], on: date) -> dict[str, Any]:
    """An order as Epic writes one: its dosage bounded by dates, its supply counted in tablets."""
    code, text = rng.choice(pools.products)
    days = rng.choice([5, 7, 10, 14, 30, 90])
    timing = {"boundsPeriod": {"start": on.isoformat(), "end": (on + timedelta(days=days)).isoformat()}}
    return {
        "resourceType": "MedicationRequest",
        "id": f"m{i}",
        "status": rng.choice(["completed", "stopped", "active"]),
        "intent": "order",
        "subject": subject,
        "authoredOn": f"{on.isoformat()}T{rng.randrange(8, 18):02d}:{rng.randrange(60):02d}:00Z",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": text}], "text": text},
        "dosageInstruction": [
            {
                "text": "Take 1 tablet by mouth 3 times a day as needed",
                "asNeededBoolean": True,
                "timing": {"repeat": {**timing, "frequency": 3, "period": 1, "periodUnit": "d"}},
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral"}]},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
            }
        ],
        "dispenseRequest": {
            "quantity": {"value": 3 * days, "unit": "tablet"},
            "numberOfRepeatsAllowed": 0,
            "expectedSupplyDuration": {
                "value": days,
                "unit": "days",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            },
        },
    }


def _by_reference(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each order's drug named by a Medication resource included beside the orders (Epic's way)."""
    medications: dict[str, dict[str, Any]] = {}
    for order in orders:
        concept = order.pop("medicationCodeableConcept")
        id_ = f"med-{concept['coding'][0]['code']}"
        medications[id_] = {"resourceType": "Medication", "id": id_, "code": concept}
        order["medicationReference"] = {"reference": f"Medication/{id_}", "display": concept["text"]}
    return [*orders, *medications.values()]


def request(rng: random.Random, pools: Pools, *, by_reference: bool) -> dict[str, Any]:
    """The sandbox's order with a history of ``ENTRIES`` entries (3 : 6 : 1 as the bench's)."""
    body = sandbox_order()
    subject = {"reference": f"Patient/{body['context']['patientId']}"}
    drawn: dict[str, list[dict[str, Any]]] = {"conditions": [], "medications": [], "imaging": []}
    for i in range(ENTRIES - 1):
        on, kind = TODAY - timedelta(days=rng.randrange(730)), i % 10
        if kind < 3:
            drawn["conditions"].append(_condition(i, rng, pools, subject, on))
        elif kind < 9:
            drawn["medications"].append(_order(i, rng, pools, subject, on))
        else:
            code = {
                "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": str(70_000 + rng.randrange(3_000))}]
            }
            drawn["imaging"].append(
                {"resourceType": "ServiceRequest", "id": f"s{i}", "status": "completed", "intent": "order"}
                | {"subject": subject, "authoredOn": on.isoformat(), "code": code}
            )
    if by_reference:
        drawn["medications"] = _by_reference(drawn["medications"])
    bundles = {
        k: {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in v]}
        for k, v in drawn.items()
    }
    patient = {"resourceType": "Patient", "id": body["context"]["patientId"], "birthDate": "1971-07-02"}
    body["prefetch"] = {"patient": patient, **bundles}
    return body


class Assess:
    """``pipeline.assess`` over prepared calls, as the service makes them from a request."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(data_dir=data_dir)
        self.knowledge = load_knowledge(self.settings)
        self.service = SERVICES[SELECT]
        self.now = at_noon(TODAY)()

    def prepare(self, body: dict[str, Any]) -> tuple[Any, Any]:
        parsed = parse_body(orjson.dumps(body), self.settings.body_limits)
        call = pipeline.read_request(self.service, parsed, self.knowledge, 200)
        prefetch = parsed.get("prefetch") or {}
        return call, asyncio.run(
            complete_prefetch(self.service.prefetch, prefetch, call.context.patientId, None, deadline=1)
        )

    def time(self, calls: list[tuple[Any, Any]]) -> float:
        """µs a call, over ``calls`` once."""
        started = time.perf_counter()
        for call, data in calls:
            pipeline.assess(call, data, self.knowledge, self.now)
        return (time.perf_counter() - started) / len(calls) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--problems", type=int, default=2000, help="problem codes a site's histories draw from")
    parser.add_argument("--products", type=int, default=800, help="medication products they draw from")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cds-variety-") as tmp:
        assess = Assess(Path(tmp))
        repeated = [assess.prepare(scenarios("http://127.0.0.1:1/fhir")["500 prefetch entries"])] * args.patients
        rows = [("the bench's history, repeated (make bench)", min(assess.time(repeated) for _ in range(3)))]
        for seed, by_reference, named in ((11, False, "inline"), (12, True, "by reference")):
            rng = random.Random(seed)
            pools = Pools(rng, args.problems, args.products)
            calls = [assess.prepare(request(rng, pools, by_reference=by_reference)) for _ in range(args.patients)]
            rows.append((f"{args.patients} patients, drugs {named}: first pass", assess.time(calls)))
            rows.append((f"{args.patients} patients, drugs {named}: again", min(assess.time(calls) for _ in range(3))))
    sizes = f"{ENTRIES} entries, {args.problems:,} problem codes, {args.products:,} products"
    print(f"Patient facts and rules, µs a call ({sizes}):\n")
    print("| histories | µs |\n|---|---:|")
    for name, us in rows:
        print(f"| {name} | {us:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
