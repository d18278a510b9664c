from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from cds_service.app import create_app
from cds_service.pipeline.knowledge import Knowledge, load_knowledge
from cds_service.settings import Settings
from tests.fhir_server import FhirTestServer, demo_resources, start
from tests.serving import free_ports, launch, wait_until_listening
from tools.fixture_day import FIXTURES, TODAY
from tools.golden import hook_url

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


def for_patient(request: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """``request`` made another patient's: its context, its drafts' subject and its Patient record
    (a resource of another patient than the context's is refused: tests/test_one_patient.py)."""
    request["context"]["patientId"] = patient_id
    for entry in request["context"]["draftOrders"]["entry"]:
        draft = entry["resource"]
        draft["patient" if "patient" in draft else "subject"] = {"reference": f"Patient/{patient_id}"}
    patient = (request.get("prefetch") or {}).get("patient")
    if isinstance(patient, dict) and patient.get("resourceType") == "Patient":
        patient["id"] = patient_id
    return request


def fetching_request(server: str, **authorization: str) -> dict[str, Any]:
    """The sandbox's 10 mg / 30-day order with no prefetch: everything must come from ``server``
    (with ``access_token=...``, under the EHR's ``fhirAuthorization``)."""
    request = fixture("sandbox/order-select-r4.json")
    request["fhirServer"] = server
    request["context"]["patientId"] = "harness-pt-1"
    request.pop("prefetch", None)
    if authorization:
        request["fhirAuthorization"] = {
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
            **authorization,
        }
    return request


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "serve(*args, **env): the test runs its own `cds-service serve` with these arguments and CDS_ "
        "settings (a setting may be a function of the process's data directory); the `served` fixture gives it",
    )


def ago(days: int) -> str:
    """The day ``days`` before the pinned ``TODAY``, as FHIR writes a date."""
    return (TODAY - timedelta(days=days)).isoformat()


def cards_for(body: dict[str, Any], rule_id: str) -> list[dict[str, Any]]:
    return [card for card in body["cards"] if card["source"]["topic"]["code"] == rule_id]


def the_update(card: dict[str, Any]) -> dict[str, Any]:
    """The resource a card's one suggestion, an update, writes back."""
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    assert action["type"] == "update"
    return dict(action["resource"])


def answered(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    """The 200 answer to ``request``, posted to the service of its hook."""
    response = client.post(hook_url(request), json=request)
    assert response.status_code == 200, response.text
    return response.json()


class After(threading.Thread):
    """``threading.Timer``'s job, its wait slept out: a Timer waits on a timed lock that
    libfaketime does not shift, so under ``faketime`` it never fired and the test hung (the suite
    must pass on another date). Started at once; ``cancel`` before it fires, ``join`` to wait."""

    def __init__(self, seconds: float, action: Callable[..., object], *args: object) -> None:
        super().__init__(daemon=True)
        self.until, self.action, self.args, self.cancelled = time.monotonic() + seconds, action, args, False
        self.start()

    def cancel(self) -> None:
        self.cancelled = True

    def run(self) -> None:
        while not self.cancelled and time.monotonic() < self.until:
            time.sleep(0.01)
        if not self.cancelled:
            self.action(*self.args)


def rule_ids(body: dict[str, Any]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in body["cards"]]


def settings_in(data_dir: Path) -> Settings:
    """The test settings: TestClient's base URL is the public URL tokens name, the test FHIR
    servers on loopback may be fetched from, and the sandbox's page may call (as in the README's
    walk-through). None of these is a default: tests/test_security_defaults.py."""
    return Settings(
        data_dir=data_dir,
        fhir_deadline_seconds=1.0,
        auth_mode="off",
        public_url=["http://testserver"],
        fhir_servers=["loopback"],
        cors_origins=["https://sandbox.cds-hooks.org"],
        cors_private_network=True,
    )


@pytest.fixture
def cards(tmp_path: Path) -> Path:
    """A site's own copy of the clinical content (``CDS_CARDS_DIR``), to edit."""
    target = tmp_path / "cards"
    shutil.copytree(FIXTURES.parent / "cards", target)
    return target


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_in(tmp_path / "var")


# What ``load_knowledge`` reads from the settings: apps whose settings agree on these share one load.
KNOWLEDGE_SETTINGS = ("cards_dir", "local_codes_file", "rules", "snooze_days", "timezone")


@pytest.fixture(scope="session")
def knowledge_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Settings], Knowledge | None]:
    """The clinical content, loaded once per session (it is only read): for settings that load
    the same content as the test settings, else ``None`` (``create_app`` then loads its own)."""
    base = settings_in(tmp_path_factory.mktemp("knowledge"))
    knowledge = load_knowledge(base)

    def shared(settings: Settings) -> Knowledge | None:
        same = all(getattr(settings, name) == getattr(base, name) for name in KNOWLEDGE_SETTINGS)
        return knowledge if same else None

    return shared


@pytest.fixture
def make_client(
    settings: Settings, knowledge_for: Callable[[Settings], Knowledge | None]
) -> Iterator[Callable[..., TestClient]]:
    """Clients on the same settings (and so the same database), as after a restart."""
    clients: list[TestClient] = []

    def make(base_url: str = "http://testserver", clock: Clock | None = None, **overrides: Any) -> TestClient:
        changed = settings.model_copy(update=overrides)
        app = create_app(changed, knowledge=knowledge_for(changed), clock=clock or Clock(NOON))
        client = TestClient(app, base_url=base_url)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def defaults(
    tmp_path: Path, knowledge_for: Callable[[Settings], Knowledge | None]
) -> Iterator[Callable[..., TestClient]]:
    """Clients of apps on the shipped defaults (not the suite's test settings), plus ``overrides``
    (validated as they would be from the environment)."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = Settings(**{"data_dir": tmp_path / "var", "fhir_deadline_seconds": 1.0, **overrides})
        client = TestClient(create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """A client of its own app and database, for a test that reads back what it stored or moves the clock."""
    return make_client()


@pytest.fixture(scope="module")
def module_client(
    tmp_path_factory: pytest.TempPathFactory, knowledge_for: Callable[[Settings], Knowledge | None]
) -> Iterator[TestClient]:
    """One app for a whole module, on the test settings and clock, for tests that only send
    requests and read the answers: a module uses it as its ``client`` where no test of it reads
    stored state back (feedback, analytics, metrics, the database) or moves the clock."""
    settings = settings_in(tmp_path_factory.mktemp("module") / "var")
    with TestClient(create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON))) as client:
        yield client


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


# Schemas a test's own apps still held when it ended, dropped when the session ends.
_SCHEMAS_LEFT: list[tuple[str, str]] = []  # and the test that left each


@pytest.fixture
def postgresql_url(postgresql_server: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped afterwards: reruns start clean.

    An app of the test may still be open when this ends (fixtures end in the reverse order of
    their start) and hold a lock in the schema, waiting on nothing the drop can end: the drop
    then waited for as long as the app's transaction lasted (once ten minutes, once fourteen, in
    loaded runs). So it waits 2 s at most, and a schema still held is dropped with the session."""
    schema = f"cds_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgresql_server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgresql_server).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    if not _dropped(admin, schema):
        _SCHEMAS_LEFT.append((schema, os.environ.get("PYTEST_CURRENT_TEST", "?").rpartition(" ")[0]))
    admin.dispose()


def _dropped(admin: Engine, schema: str) -> bool:
    """Dropped within 2 s: a lock held in the schema makes the drop wait as long as it is held."""
    try:
        with admin.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '2s'"))
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    except OperationalError:
        return False
    return True


@pytest.fixture(scope="session", autouse=True)
def _drop_schemas_left() -> Iterator[None]:
    """The schemas ``postgresql_url`` could not drop, once every app of the session is closed.
    One still held (the lock outlived its test's apps: a suite once stalled here for minutes) is
    left, with a warning naming what holds it: its name is never reused."""
    yield
    if not _SCHEMAS_LEFT:
        return
    admin = create_engine(TEST_DATABASE_URL)
    held = [(schema, test) for schema, test in _SCHEMAS_LEFT if not _dropped(admin, schema)]
    if held:
        with admin.connect() as connection:
            holders = connection.execute(
                text(
                    "SELECT state, now() - xact_start, client_port, left(query, 120) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                )
            ).all()
        warnings.warn(
            f"test schemas left, still held (schema, test): {held}; open transactions: {holders}", stacklevel=1
        )
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on the embedded SQLite file and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cds-service.db'}"
    return request.getfixturevalue("postgresql_url")


Served = tuple[subprocess.Popen[bytes], int]


@pytest.fixture(scope="session", autouse=True)
def serves_started_early(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Served]]:
    """The ``cds-service serve`` processes of the selected tests marked ``serve``, by test, all
    started as the session starts. Each spends a second or so of CPU importing and loading before
    it listens or refuses to start: started early, that runs on the second core while the tests
    run in this process, and each marked test finds its process ready (``served``)."""
    marked = [(item.nodeid, marker) for item in request.session.items if (marker := item.get_closest_marker("serve"))]
    processes: dict[str, Served] = {}
    for (nodeid, marker), port in zip(marked, free_ports(len(marked)), strict=True):
        directory = tmp_path_factory.mktemp("serve")
        env = {name: value(directory) if callable(value) else value for name, value in marker.kwargs.items()}
        processes[nodeid] = launch(directory, *marker.args, port=port, **env)
    yield processes
    for server, _ in processes.values():
        if server.poll() is None:
            server.kill()
        server.wait()
        server.stdout.close()  # type: ignore[union-attr]


@pytest.fixture
def served(request: pytest.FixtureRequest, serves_started_early: dict[str, Served]) -> Served:
    """The test's own ``cds-service serve`` (its ``serve`` mark) and its port, once it listens or has exited."""
    server, port = serves_started_early[request.node.nodeid]
    wait_until_listening(server, port)
    return server, port


@pytest.fixture(autouse=True)
def logging_as_pytest_had_it() -> Iterator[None]:
    """A test that runs ``cds-service`` in this process has it configure logging: its handler
    writes to the standard error pytest captured for that test, closed when the test ends, and a
    later test's lines (asyncio's among them) would meet a closed file; and it takes Python's
    hooks for uncaught exceptions. Each test ends with the root logger's handlers, the service's
    level and those hooks as they were."""
    root, service = logging.getLogger(), logging.getLogger("cds_service")
    handlers, levels = root.handlers[:], (root.level, service.level)
    hooks = sys.excepthook, threading.excepthook, sys.unraisablehook
    yield
    root.handlers[:] = handlers
    root.setLevel(levels[0])
    service.setLevel(levels[1])
    sys.excepthook, threading.excepthook, sys.unraisablehook = hooks
