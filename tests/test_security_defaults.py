"""Safe defaults (issue 16 #3 and #8): what a service started with no security settings lets a
stranger do. With authentication off (`make run`) or the sandbox's public key trusted, any web
page on the machine could call the service; so by default it fetches from no FHIR server, lets
no browser origin read its answers, answers no Private Network Access preflight, and its 412s
name what is missing, never what the network answered. The audience a token must name comes from
configuration, and proxy headers count only from the proxies the operator names."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.pipeline.knowledge import Knowledge
from cds_service.security.clients import TrustedClientsError, load_trusted_clients
from cds_service.settings import Settings
from tests.conftest import SELECT, Served, fetching_request
from tests.fhir_server import FhirTestServer
from tests.serving import free_port
from tests.tokens import ISSUER, SigningKey, claims, jwks

SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"


# --- FHIR servers: none by default ----------------------------------------------------------


def test_with_auth_off_no_fhir_server_is_fetched_from_by_default(
    defaults: Callable[..., TestClient], fhir_server: FhirTestServer
) -> None:
    """A page on the machine could otherwise make the service probe every local port (it was
    `["loopback"]` by default)."""
    response = defaults(auth_mode="off").post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 412, response.text
    assert "not on this service's list" in response.json()["issue"][0]["diagnostics"]
    assert fhir_server.seen == []

    configured = defaults(auth_mode="off", fhir_servers=["loopback"])
    assert configured.post(SELECT, json=fetching_request(fhir_server.base)).status_code == 200
    assert fhir_server.seen


def test_the_sandbox_may_send_the_service_only_to_its_smart_launcher_unless_configured() -> None:
    """Anyone can sign as the sandbox (its private key is published): by default it reaches the SMART
    launcher's servers only, never this machine; CDS_FHIR_SERVERS adds a local server on purpose."""
    sandbox = load_trusted_clients(None, trust_sandbox=True)[SANDBOX_ISSUER].servers
    assert sandbox.refusal("https://launch.smarthealthit.org/v/r4/fhir") is None
    for local in ("http://127.0.0.1:8080/fhir", "http://localhost:22/", "http://[::1]:5432/fhir"):
        assert sandbox.refusal(local) is not None, local
    widened = load_trusted_clients(None, trust_sandbox=True, sandbox_fhir_servers=["loopback"])[SANDBOX_ISSUER]
    assert widened.servers.refusal("http://127.0.0.1:8080/fhir") is None


# --- 412s that name what is missing, not what the network answered --------------------------


class HostileServer:
    """Answers every GET as told: a redirect, a page that is not JSON, or nothing for a while."""

    def __init__(self) -> None:
        self.mode = "redirect"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if server.mode == "slow":
                    time.sleep(1.5)
                body = b"<html>login</html>"
                self.send_response(302 if server.mode == "redirect" else 200)
                self.send_header("Location", "http://127.0.0.1:1/")
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


def test_a_412_does_not_say_what_the_network_answered(
    defaults: Callable[..., TestClient], hostile: HostileServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused, redirected, not JSON or late: the caller gets one and the same answer (a port
    scanner learns nothing from it); the service log keeps the detail."""
    client = defaults(auth_mode="off", fhir_servers=["loopback"], fhir_deadline_seconds=1.0)
    answers = {}
    for mode, server in [
        ("closed", f"http://127.0.0.1:{free_port()}/fhir"),
        ("redirect", hostile.base),
        ("html", hostile.base),
        ("slow", hostile.base),
    ]:
        hostile.mode = mode
        response = client.post(SELECT, json=fetching_request(server))
        assert response.status_code == 412, response.text
        answers[mode] = response.json()["issue"][0]
    assert len({json.dumps(issue, sort_keys=True) for issue in answers.values()}) == 1, answers
    diagnostics = answers["closed"]["diagnostics"]
    assert (
        "prefetch.conditions, prefetch.medications" in diagnostics
        and "fetching it from fhirServer failed" in diagnostics
    )
    for detail in ("ClientConnectorError", "HTTP 302", "not JSON", "within", "timeout", "1 s"):
        assert detail not in diagnostics
    for detail in ("ClientConnectorError", "HTTP 302", "not JSON"):
        assert detail in caplog.text


def test_a_non_ascii_access_token_is_not_echoed(
    defaults: Callable[..., TestClient], fhir_server: FhirTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = defaults(auth_mode="off", fhir_servers=["loopback"])
    response = client.post(SELECT, json=fetching_request(fhir_server.base, access_token="secret-tökén-42"))
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["fhirAuthorization.access_token"]
    assert fhir_server.seen == []
    for echoed in ("ö", "é", "\\xf6", "position", "secret", "codec"):
        assert echoed not in response.text
        assert echoed not in caplog.text


def test_an_access_token_with_a_line_break_is_never_sent(
    defaults: Callable[..., TestClient], fhir_server: FhirTestServer
) -> None:
    """A line break in a header would start a header of the caller's choosing: the fetch is not
    made at all (nothing reaches the FHIR server), and the call is a 400 naming the token."""
    client = defaults(auth_mode="off", fhir_servers=["loopback"])
    response = client.post(SELECT, json=fetching_request(fhir_server.base, access_token="abc\r\nX-Injected: 1"))
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["fhirAuthorization.access_token"]
    assert "X-Injected" not in response.text
    assert fhir_server.seen == []


def test_a_cookie_a_fhir_server_sets_never_goes_out_with_a_later_call(
    defaults: Callable[..., TestClient], fhir_server: FhirTestServer
) -> None:
    """A server's session cookie is set for one call's access token: were it kept, the next
    call (another clinician's token, another patient) would carry it."""
    fhir_server.cookie = "session=first-callers-session; Path=/"
    client = defaults(auth_mode="off", fhir_servers=["loopback"])
    for token in ("first-token", "second-token"):
        server = fhir_server.base.replace("127.0.0.1", "localhost")  # a cookie jar refuses IP hosts
        response = client.post(SELECT, json=fetching_request(server, access_token=token))
        assert response.status_code == 200, response.text
    assert len(fhir_server.seen) >= 8
    assert [seen.headers.get("cookie") for seen in fhir_server.seen if "cookie" in seen.headers] == []


def test_proxy_settings_of_the_environment_are_said_to_be_unused_at_start_up(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The FHIR client connects directly; a site that set HTTPS_PROXY for it (httpx, the client
    before, read it) learns so when the service starts, not from fetches that time out."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.hospital.example:3128")
    make_client(auth_mode="off")
    assert (
        "HTTPS_PROXY set but not used: FHIR servers and key sets are reached directly (CDS_OUTBOUND_PROXY"
        in caplog.text
    )


# --- CORS: configured origins only, no Private Network Access unless asked ------------------


def _preflight(client: TestClient, origin: str, *, private_network: bool = True) -> Any:
    """A browser's preflight for a hook call; Chrome adds the Private Network Access header when a
    public page calls a service on this machine."""
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    if private_network:
        headers["Access-Control-Request-Private-Network"] = "true"
    return client.options(SELECT, headers=headers)


def test_by_default_no_browser_origin_may_call_and_no_private_network_preflight_is_answered(
    defaults: Callable[..., TestClient],
) -> None:
    client = defaults(auth_mode="off")
    preflight = _preflight(client, "https://any-page.example.com")
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-private-network" not in preflight.headers
    simple = client.get("/cds-services", headers={"Origin": "https://any-page.example.com"})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


def test_configured_origins_are_answered_and_private_network_access_only_when_set(
    defaults: Callable[..., TestClient],
) -> None:
    client = defaults(auth_mode="off", cors_origins=[SANDBOX_ORIGIN])
    preflight = _preflight(client, SANDBOX_ORIGIN, private_network=False)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == SANDBOX_ORIGIN
    assert {"authorization", "content-type"} <= set(
        preflight.headers["access-control-allow-headers"].lower().split(", ")
    )
    assert "access-control-allow-private-network" not in _preflight(client, SANDBOX_ORIGIN).headers
    assert "access-control-allow-origin" not in _preflight(client, "https://any-page.example.com").headers

    private = defaults(auth_mode="off", cors_origins=[SANDBOX_ORIGIN], cors_private_network=True)
    assert _preflight(private, SANDBOX_ORIGIN).headers["access-control-allow-private-network"] == "true"


# --- the audience: configuration, not request headers ---------------------------------------

KEY = SigningKey.generate("ES384")
OTHER_DEPLOYMENT = "https://cds.other-hospital.example.org"
PUBLIC = "https://cds.hospital.example.org"


def _trusted_file(directory: Path) -> str:
    path = directory / "trusted-clients.json"
    path.write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(KEY)}]))
    return str(path)


def test_auth_on_with_no_public_url_refuses_to_start_unless_on_loopback(
    tmp_path: Path, knowledge_for: Callable[[Settings], Knowledge | None]
) -> None:
    settings = Settings(data_dir=tmp_path, trusted_clients_file=_trusted_file(tmp_path), host="0.0.0.0")
    with pytest.raises(TrustedClientsError, match=r"CDS_PUBLIC_URL is not set and the service listens on 0\.0\.0\.0"):
        create_app(settings, knowledge=knowledge_for(settings))
    listed = settings.model_copy(update={"public_url": [PUBLIC]})
    assert create_app(listed, knowledge=knowledge_for(listed)).state.runtime.authenticator.audience.bases == (PUBLIC,)


def _get(port: int, path: str, aud: str | None = None, **headers: str) -> requests.Response:
    if aud is not None:
        headers["Authorization"] = f"Bearer {KEY.sign(claims(aud + path, time.time()))}"
    return requests.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10, allow_redirects=False)


@pytest.mark.serve(CDS_TRUSTED_CLIENTS_FILE=_trusted_file)
def test_served_on_loopback_a_token_for_another_deployment_is_401_whatever_the_headers(served: Served) -> None:
    """`cds-service serve` with auth on and nothing else: the audience is this machine's loopback
    URL; another deployment's token sent with its Host and X-Forwarded-Proto from 127.0.0.1 (which
    uvicorn trusted by default) is refused, and uvicorn does not take the scheme from the header."""
    server, port = served
    try:
        forged = {"Host": "cds.other-hospital.example.org", "X-Forwarded-Proto": "https"}
        assert _get(port, "/cds-services", OTHER_DEPLOYMENT, **forged).status_code == 401
        assert _get(port, "/cds-services", f"http://127.0.0.1:{port}").status_code == 200
        assert _get(port, "/cds-services", f"http://localhost:{port}").status_code == 200
        slashed = _get(port, "/cds-services/", **{"X-Forwarded-Proto": "https"})
        assert slashed.status_code == 404 and "location" not in slashed.headers  # no redirect to shape
    finally:
        server.terminate()
        server.wait(timeout=10)
    # The operator reads at start-up which URLs tokens must name.
    assert f"tokens must be addressed to http://localhost:{port}/cds-services" in server.stdout.read().decode()  # type: ignore[union-attr]


@pytest.mark.serve(CDS_TRUSTED_CLIENTS_FILE=_trusted_file, CDS_PUBLIC_URL=PUBLIC, CDS_TRUSTED_PROXIES="127.0.0.1")
def test_served_behind_a_named_proxy_the_public_url_decides_and_headers_do_not(served: Served) -> None:
    server, port = served
    try:
        assert _get(port, "/cds-services", PUBLIC).status_code == 200
        leftmost = {"X-Forwarded-Host": "cds.other-hospital.example.org, cds.hospital.example.org"}
        assert _get(port, "/cds-services", OTHER_DEPLOYMENT, **leftmost).status_code == 401
        assert _get(port, "/cds-services", PUBLIC, **leftmost).status_code == 200
        assert _get(port, "/cds-services", f"http://127.0.0.1:{port}").status_code == 401  # not a public URL
        # From a named proxy uvicorn takes the scheme from X-Forwarded-Proto; it shaped only the
        # trailing-slash redirects, which are gone (a Host header named their target).
        slashed = _get(port, "/cds-services/", **{"X-Forwarded-Proto": "https"})
        assert slashed.status_code == 404 and "location" not in slashed.headers
    finally:
        server.terminate()
        server.wait(timeout=10)
