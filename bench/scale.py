"""Throughput by worker processes: ``cds-service serve --workers N`` on PostgreSQL, N = 1, 2, 4.

Several workers need a shared database (``serve`` refuses ``--workers`` on SQLite), so this runs
against PostgreSQL (``--database-url``, default the test server), in a schema of its own that
is dropped afterwards. Each N is driven by wrk at concurrency 32 with authentication off, after a
warm-up; the bare echo (one process) is the reference. Prints a table; not part of ``make bench``.

    python bench/scale.py [--database-url postgresql+psycopg://…] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import ECHO, OFF, Bench  # noqa: E402
from bench.scenarios import scenarios  # noqa: E402

DEFAULT_URL = os.environ.get("CDS_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
WORKERS = (1, 2, 4)
# (label, scenario, a new patient each call): the bench's other calls are all for one patient,
# whose quiet answer each worker keeps after its first call; a new patient's is read.
SCENARIOS = (
    ("sandbox order", "sandbox order", False),
    ("sandbox order, a new patient each call", "sandbox order", True),
    ("50 prefetch entries", "50 prefetch entries", False),
    ("500 prefetch entries", "500 prefetch entries", False),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    schema = f"cds_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(args.database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    rows = []
    try:
        for workers in WORKERS:
            with tempfile.TemporaryDirectory(prefix="cds-scale-") as tmp:
                database_url = url.render_as_string(hide_password=False)
                bench = Bench(Path(tmp), targets=(OFF,), workers=workers, database_url=database_url)
                try:
                    bodies = scenarios(bench.fhir.base)
                    for name, scenario, new_patients in SCENARIOS:
                        body = bodies[scenario]
                        loads = bench.measure(
                            body, (OFF, ECHO), args.concurrency, args.seconds, new_patients=new_patients
                        )
                        service, echo = loads[OFF], loads[ECHO]
                        rows.append((name, workers, service, echo))
                        print(
                            f"{name:40} workers={workers}  {service.rps:5.0f} req/s  p50 {service.p50_ms:6.1f} ms  "
                            f"p99 {service.p99_ms:6.1f} ms  CPU {service.cpu_ms_per_call:.2f} ms/call  "
                            f"(echo, 1 process: {echo.rps:.0f} req/s)",
                            flush=True,
                        )
                finally:
                    bench.stop()
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    print(f"\n| scenario | workers | req/s at c={args.concurrency} | p50 / p99 ms | CPU ms/call | echo req/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, workers, s, echo in rows:
        print(
            f"| {name} | {workers} | {s.rps:,.0f} | {s.p50_ms:.1f} / {s.p99_ms:.1f} | {s.cpu_ms_per_call:.2f} "
            f"| {echo.rps:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
