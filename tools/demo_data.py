"""The demo patients, dated relative to the day they are loaded.

    python tools/demo_data.py                          # the bundle, shifted to today, on stdout
    python tools/demo_data.py --today 2027-03-01       # ... to another day
    python tools/demo_data.py --post http://localhost:8080/fhir   # load it into a FHIR server

``fixtures/fhir/demo-patients.json`` is written as of ``ANCHOR`` (the tests' day, so the tests'
FHIR server serves it as it is). Loaded on another day, every date in it moves by the same
number of days: a course "three weeks ago" stays three weeks ago and a 78-year-old stays 78, so
the README's sandbox walk-through shows the same cards next year. Standard library only: the
docker-compose seed container runs it with a bare Python image.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

BUNDLE = Path(__file__).resolve().parent.parent / "fixtures" / "fhir" / "demo-patients.json"
# The day the fixtures are dated for (``tools.fixture_day``: written here, which the seed runs alone).
ANCHOR = date(2026, 11, 21)
# A FHIR date or the date part of a dateTime/instant: YYYY-MM-DD, then nothing or a time.
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T.*)?$")


def shifted(value: Any, days: int) -> Any:
    """``value`` with every full date in it moved by ``days``; everything else as it was."""
    if isinstance(value, dict):
        return {key: shifted(item, days) for key, item in value.items()}
    if isinstance(value, list):
        return [shifted(item, days) for item in value]
    if isinstance(value, str) and (match := _DATE.match(value)):
        moved = date.fromisoformat(match.group(1)) + timedelta(days=days)
        return moved.isoformat() + (match.group(2) or "")
    return value


def demo_bundle(today: date) -> dict[str, Any]:
    return shifted(json.loads(BUNDLE.read_text()), (today - ANCHOR).days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--today", type=date.fromisoformat, help="the day to date the patients for (default: today, UTC)"
    )
    parser.add_argument("--post", metavar="FHIR_BASE", help="POST the transaction Bundle to this FHIR server")
    args = parser.parse_args(argv)
    bundle = demo_bundle(args.today or datetime.now(UTC).date())
    if args.post is None:
        json.dump(bundle, sys.stdout, indent=1)
        print()
        return 0
    request = urllib.request.Request(
        args.post.rstrip("/"),
        data=json.dumps(bundle).encode(),
        headers={"Content-Type": "application/fhir+json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        print(f"demo patients loaded: HTTP {response.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
