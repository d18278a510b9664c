"""A scripted clinical session against a running service, checked against its own analytics.

Sends N hook calls (the firing fixtures, round robin, each with a fresh hookInstance and a
patient of its own, so that each card is an alert of its own: grouping cards into alerts is
tested in tests/test_storage.py) from several client processes, then F feedback items on the
cards it got back (accepted with their suggestion, or overridden with one of the card's
reasons, or with none), resending a tenth of them from another process as clients do. It
then reads ``GET /analytics`` for today and compares it, rule by rule, with what it counted
itself from the responses: alerts issued, accepted, overridden, ignored, cards shown, and
override reasons.

    python scripts/feedback_session.py --url http://127.0.0.1:8000 --calls 1000 --feedback 300

Prints the comparison as JSON (``expected``, ``reported``, ``match``) and exits 1 on any
difference. The service must run with authentication off (a local test deployment) on a fresh
database: the comparison counts everything the database holds for today.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NOTICES = "urn:back-spasm-cds:notice"
SERVICE = {"order-select": "back-spasm-order-select", "order-sign": "back-spasm-order-sign"}


def requests() -> list[dict[str, Any]]:
    """Every firing fixture of every rule: a realistic mix of cards and indicators."""
    return [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*/fires-*.json"))]


def _own_patient(body: dict[str, Any], n: int) -> dict[str, Any]:
    """The request for a patient of its own (its id, the Patient resource, every reference)."""
    patient = body["context"]["patientId"]
    text = json.dumps(body).replace(f'"{patient}"', f'"{patient}-c{n}"')
    return json.loads(text.replace(f'"Patient/{patient}"', f'"Patient/{patient}-c{n}"'))


def _calls(args: tuple[str, list[tuple[int, dict[str, Any]]]]) -> list[tuple[str, dict[str, Any]]]:
    url, bodies = args
    answered = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for n, body in bodies:
            service = SERVICE[body["hook"]]
            sent = {**_own_patient(body, n), "hookInstance": str(uuid.uuid4())}
            response = client.post(f"/cds-services/{service}", json=sent)
            response.raise_for_status()
            # A notice (the service's word on the call, not a rule's) is no alert: never recorded.
            cards = response.json()["cards"]
            answered.extend((service, card) for card in cards if card["source"]["topic"]["system"] != NOTICES)
    return answered


def _feedback(args: tuple[str, list[tuple[str, dict[str, Any]]]]) -> int:
    url, items = args
    with httpx.Client(base_url=url, timeout=30) as client:
        for service, item in items:
            response = client.post(f"/cds-services/{service}/feedback", json={"feedback": [item]})
            response.raise_for_status()
    return len(items)


def _chunks(items: list[Any], n: int) -> list[list[Any]]:
    return [items[i::n] for i in range(n)]


def session(url: str, calls: int, feedback: int, clients: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    pool = requests()
    bodies = [(i, pool[i % len(pool)]) for i in range(calls)]
    with ProcessPoolExecutor(clients) as executor:
        cards = [c for chunk in executor.map(_calls, [(url, b) for b in _chunks(bodies, clients)]) for c in chunk]
        if len(cards) < feedback:
            raise SystemExit(f"only {len(cards)} cards for {feedback} feedback items: send more calls")
        expected: dict[str, Counter[str]] = defaultdict(Counter)
        reasons: dict[str, Counter[str]] = defaultdict(Counter)
        for _, card in cards:
            expected[card["source"]["topic"]["code"]]["issued"] += 1
        items = []
        stamp = "2026-01-01T00:00:00Z"
        for service, card in rng.sample(cards, feedback):
            rule = card["source"]["topic"]["code"]
            item: dict[str, Any] = {"card": card["uuid"], "outcomeTimestamp": stamp}
            if card.get("suggestions") and rng.random() < 0.5:
                item |= {"outcome": "accepted", "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
                expected[rule]["accepted"] += 1
            else:
                item["outcome"] = "overridden"
                offered = card.get("overrideReasons", [])
                if offered and rng.random() < 0.8:
                    reason = rng.choice(offered)
                    item["overrideReason"] = {"reason": {"system": reason["system"], "code": reason["code"]}}
                    reasons[rule][reason["code"]] += 1
                else:
                    reasons[rule]["(none)"] += 1
                expected[rule]["overridden"] += 1
            items.append((service, item))
        resent = rng.sample(items, feedback // 10)
        batches = _chunks(items, clients)
        batches[-1].extend(resent)  # the same items again, from another process
        sent = sum(executor.map(_feedback, [(url, batch) for batch in batches]))
    want = {
        rule: {
            "issued": c["issued"],
            "accepted": c["accepted"],
            "overridden": c["overridden"],
            "ignored": c["issued"] - c["accepted"] - c["overridden"],
            "cards_shown": c["issued"],
            "override_reasons": dict(sorted(reasons[rule].items())),
        }
        for rule, c in sorted(expected.items())
    }
    got = _reported(url, want)
    return {
        "calls": calls,
        "cards": len(cards),
        "feedback_sent": sent,
        "expected": want,
        "reported": got,
        "match": got == want,
    }


def _reported(url: str, want: dict[str, Any], patience: float = 10.0) -> dict[str, Any]:
    """Today's analytics per rule; card writes happen just after each response, so allow a moment."""
    deadline = time.monotonic() + patience
    while True:
        body = httpx.get(f"{url}/analytics", params={"period": "day"}, timeout=30).json()
        got = {
            rule["rule_id"]: {
                "issued": rule["issued"],
                "accepted": rule["accepted"],
                "overridden": rule["overridden"],
                "ignored": rule["ignored"],
                "cards_shown": rule["cards_shown"],
                "override_reasons": dict(sorted((r["code"] or "(none)", r["count"]) for r in rule["override_reasons"])),
            }
            for rule in sorted(body["rules"], key=lambda r: r["rule_id"])
        }
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the service's base URL (authentication off)")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--feedback", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    started = time.perf_counter()
    result = session(args.url.rstrip("/"), args.calls, args.feedback, args.clients, args.seed)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))
    return 0 if result["match"] else 1


if __name__ == "__main__":
    sys.exit(main())
