from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.api import create_app
from cds_service.settings import Settings
from tests.fhir_server import FhirTestServer, demo_resources, start

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TODAY = date(2026, 11, 21)
SELECT = "/cds-services/back-spasm-order-select"
SIGN = "/cds-services/back-spasm-order-sign"


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

    def make(
        base_url: str = "http://testserver", clock: Callable[[], float] = time.time, **overrides: Any
    ) -> TestClient:
        app = create_app(settings.model_copy(update=overrides), today=lambda: TODAY, clock=clock)
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
