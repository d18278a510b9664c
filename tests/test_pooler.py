"""Behind a connection pooler in transaction mode (PgBouncer before 1.21, or without
``max_prepared_statements``) each transaction may run on another server connection, where a
statement prepared on the last one does not exist: the service prepares none, however often it
runs a statement."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import make_url

from tests.conftest import NOON, SELECT, SIGN, Clock, fixture
from tests.feedback_calls import overridden, send_feedback
from tests.postgres_proxy import WatchingProxy

REQUEST = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
CALLS = 12  # each hook's statements run more than psycopg's five before it would prepare them


def test_no_statement_is_prepared_on_the_server(postgresql_url: str, make_client: Callable[..., TestClient]) -> None:
    direct = make_url(postgresql_url)
    proxy = WatchingProxy((direct.host or "127.0.0.1", direct.port or 5432))
    try:
        # In plain text, so that the proxy reads the statements (a server may offer TLS).
        behind = direct.set(host="127.0.0.1", port=proxy.port).update_query_dict({"sslmode": "disable"})
        behind = behind.render_as_string(False)
        client = make_client(clock=Clock(NOON), database_url=behind)
        cards = []
        for _ in range(CALLS):
            for path, hook in ((SELECT, "order-select"), (SIGN, "order-sign")):
                response = client.post(path, json=fixture(REQUEST) | {"hook": hook})
                assert response.status_code == 200, response.text
                cards += response.json()["cards"]
        card = cards[0]
        for _ in range(CALLS):
            send_feedback(client, overridden(card))  # a resend of the same item is answered 200
            assert client.get("/analytics").status_code == 200
        assert proxy.names == {b""}, proxy.names  # statements were sent, each unnamed
    finally:
        proxy.close()
