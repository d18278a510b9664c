from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from cds_service.app import create_app
from cds_service.settings import Settings
from tests.fhir_server import FhirTestServer, demo_resources, start

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TODAY = date(2026, 11, 21)
# The instant every test app starts at unless the test sets its own clock: noon UTC of TODAY.
NOON = datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC).timestamp()
SELECT = "/cds-services/back-spasm-order-select"
SIGN = "/cds-services/back-spasm-order-sign"
# The PostgreSQL the storage tests also run against (each test in a schema of its own).
TEST_DATABASE_URL = os.environ.get("CDS_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Clock:
    """The app's one clock, set by the test. ``now`` is in epoch seconds (what JWT claims are
    minted with); calling it gives the UTC instant, as ``create_app(clock=...)`` takes."""

    def __init__(self, start: float) -> None:
        self.start = self.now = start

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def set(self, *, days: float = 0, minutes: float = 0) -> None:
        """Move to ``days`` and ``minutes`` after the start."""
        self.now = self.start + days * 86400 + minutes * 60


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def cards_for(body: dict[str, Any], rule_id: str) -> list[dict[str, Any]]:
    return [card for card in body["cards"] if card["source"]["topic"]["code"] == rule_id]


def rule_ids(body: dict[str, Any]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in body["cards"]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", fhir_deadline_seconds=1.0, auth_mode="off")


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Clients on the same settings (and so the same database), as after a restart."""
    clients: list[TestClient] = []

    def make(base_url: str = "http://testserver", clock: Clock | None = None, **overrides: Any) -> TestClient:
        app = create_app(settings.model_copy(update=overrides), clock=clock or Clock(NOON))
        client = TestClient(app, base_url=base_url)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def fhir_server() -> Iterator[FhirTestServer]:
    state = FhirTestServer(resources=demo_resources())
    httpd, thread = start(state)
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="session")
def postgresql_server() -> str:
    """The server of CDS_TEST_DATABASE_URL; the tests that need it skip, saying so, when none answers."""
    engine = create_engine(TEST_DATABASE_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        where = make_url(TEST_DATABASE_URL).render_as_string(hide_password=True)
        pytest.skip(f"no PostgreSQL answers at {where} (CDS_TEST_DATABASE_URL): {error.orig}")
    finally:
        engine.dispose()
    return TEST_DATABASE_URL


@pytest.fixture
def postgresql_url(postgresql_server: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped afterwards: reruns start clean."""
    schema = f"cds_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgresql_server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgresql_server).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on the embedded SQLite file and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cds-service.db'}"
    return request.getfixturevalue("postgresql_url")
