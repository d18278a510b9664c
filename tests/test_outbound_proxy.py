"""An egress proxy for outbound calls (`CDS_OUTBOUND_PROXY`): a hospital network that lets
servers out only through a forward proxy. Configured once, never read from the environment
per request; its password goes to the proxy alone and never into a log or an error message."""

from __future__ import annotations

import base64
import http.client
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.cli import main
from cds_service.pipeline.knowledge import Knowledge
from cds_service.settings import Settings
from tests.conftest import NOON, SELECT, Clock, fixture
from tests.fhir_server import FhirTestServer

PASSWORD = "s3cret-proxy-pass"


@dataclass
class ForwardProxy:
    """An HTTP forward proxy: absolute-form GETs, relayed to the server they name, each seen
    request kept; with ``credentials`` set, anything without them is answered 407."""

    credentials: str | None = None
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def relay(self, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
        self.seen.append((target, headers))
        expected = f"Basic {base64.b64encode(self.credentials.encode()).decode()}" if self.credentials else None
        if expected is not None and headers.get("proxy-authorization") != expected:
            return 407, b""
        parts = urlsplit(target)
        hop_by_hop = {"proxy-authorization", "proxy-connection", "connection", "host", "keep-alive"}
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request("GET", path, headers={k: v for k, v in headers.items() if k not in hop_by_hop})
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()


@pytest.fixture
def forward_proxy() -> Iterator[ForwardProxy]:
    state = ForwardProxy()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, body = state.relay(self.path, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            if status == 407:
                self.send_header("Proxy-Authenticate", 'Basic realm="egress"')
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def proxied(
    tmp_path: Path, knowledge_for: Callable[[Settings], Knowledge | None]
) -> Iterator[Callable[..., TestClient]]:
    """Clients of apps whose outbound calls go through ``outbound_proxy`` (validated as from the environment)."""
    clients: list[TestClient] = []

    def make(outbound_proxy: str) -> TestClient:
        settings = Settings(
            data_dir=tmp_path / "var", auth_mode="off", fhir_servers=["loopback"], outbound_proxy=outbound_proxy
        )
        client = TestClient(create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _fetching_request(server: str) -> dict[str, Any]:
    """The sandbox's order with no prefetch and the EHR's access token: the history is fetched."""
    request = fixture("sandbox/order-select-r4.json")
    request["fhirServer"] = server
    request["context"]["patientId"] = "harness-pt-1"
    request.pop("prefetch", None)
    request["fhirAuthorization"] = {
        "access_token": "ehr-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    return request


def test_every_fetch_goes_through_the_configured_proxy_with_its_credentials(
    proxied: Callable[..., TestClient],
    forward_proxy: ForwardProxy,
    fhir_server: FhirTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    forward_proxy.credentials = f"cds-service:{PASSWORD}"
    proxy_url = forward_proxy.url.replace("http://", f"http://cds-service:{PASSWORD}@")
    response = proxied(proxy_url).post(SELECT, json=_fetching_request(fhir_server.base))
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-duration" in [card["source"]["topic"]["code"] for card in response.json()["cards"]]
    assert len(fhir_server.seen) >= 4  # the Patient, and the searches
    assert len(forward_proxy.seen) == len(fhir_server.seen)
    for target, headers in forward_proxy.seen:
        assert target.startswith(fhir_server.base)
        assert headers["authorization"] == "Bearer ehr-access-token"  # the EHR's token, for the FHIR server
    # The proxy's password reached the proxy, and nothing else: not the FHIR server, not a log line.
    assert all("proxy-authorization" not in seen.headers for seen in fhir_server.seen)
    assert f"through the proxy at {urlsplit(forward_proxy.url).netloc}" in caplog.text
    assert PASSWORD not in caplog.text


def test_a_proxy_that_refuses_the_service_is_a_fhir_server_not_reached(
    proxied: Callable[..., TestClient], forward_proxy: ForwardProxy, fhir_server: FhirTestServer
) -> None:
    """No credentials for a proxy that wants them (407): the history could not be had, and the
    answer says so as for any server out of reach; no card is made from half a history."""
    forward_proxy.credentials = f"cds-service:{PASSWORD}"
    response = proxied(forward_proxy.url).post(SELECT, json=_fetching_request(fhir_server.base))
    assert response.status_code == 412, response.text
    assert forward_proxy.seen and not fhir_server.seen


@pytest.mark.parametrize(
    "value",
    [
        f"ftp://cds-service:{PASSWORD}@proxy.hospital.example:21",
        f"http://cds-service:{PASSWORD}@proxy.hospital.example:3128/path",
        f"http://cds-service:{PASSWORD}@proxy.hospital.example:port",
        f"http://cds-service:{PASSWORD}@:3128",
        "proxy.hospital.example:3128",
    ],
)
def test_a_bad_proxy_url_stops_start_up_naming_the_setting_and_not_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.setenv("CDS_OUTBOUND_PROXY", value)
    monkeypatch.setattr("cds_service.cli.get_settings", Settings)
    assert main(["rules"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration: outbound_proxy:" in err, err
    assert PASSWORD not in err
