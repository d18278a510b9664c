"""The proxy the cross-process tests hold a statement's answer with (``tests.postgres_proxy``)
finds the statement however psycopg sends it: its text at first, and only the name it was
prepared under once it has run five times on a connection."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
from sqlalchemy import make_url

from tests.postgres_proxy import HoldingProxy

DEADLINE_SECONDS = 10.0
MARKED = "SELECT %s::int AS held_here"


def test_a_statement_is_held_by_its_text_and_by_its_prepared_name(postgresql_url: str) -> None:
    direct = make_url(postgresql_url)
    proxy = HoldingProxy((direct.host or "127.0.0.1", direct.port or 5432))
    try:
        with psycopg.connect(
            host="127.0.0.1", port=proxy.port, user=direct.username, dbname=direct.database, autocommit=True
        ) as connection:
            for runs in (1, 8):  # the second time, psycopg has prepared it and sends only its name
                for i in range(runs):
                    assert connection.execute(MARKED, (i,)).fetchone() == (i,)
                proxy.held.clear()
                proxy.hold(b"held_here")
                with ThreadPoolExecutor(1) as pool:
                    answer = pool.submit(lambda: connection.execute(MARKED, (42,)).fetchone())
                    assert proxy.held.wait(DEADLINE_SECONDS), f"not held after {runs} run(s)"
                    assert not answer.done()
                    proxy.release()
                    assert answer.result(DEADLINE_SECONDS) == (42,)
            assert connection.prepare_threshold is not None and runs > connection.prepare_threshold
    finally:
        proxy.close()
