"""An egress proxy for outbound calls (`CDS_OUTBOUND_PROXY`): a hospital network that lets
servers out only through a forward proxy. Configured once, never read from the environment
per request. An https server is reached through a tunnel, its certificate checked end to end
and the EHR's token inside it; the proxy's password goes to the proxy alone, never into a log
or an error message; servers on this machine are never reached through it."""

from __future__ import annotations

import base64
import datetime
import json
import logging
import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from cds_service.cli import main
from cds_service.security.outbound import tls_context
from cds_service.settings import Settings, read_settings
from tests.conftest import NOON, SELECT, fetching_request, fixture
from tests.fhir_server import FhirTestServer, demo_resources, start
from tests.tokens import ISSUER, SigningKey, claims, jwks

FHIR_HOST = "fhir.hospital.example"  # known to the proxy only, as internal names would be
KEYS_HOST = "keys.ehr.example"
UNNAMED_HOST = "records.hospital.example"  # the proxy reaches the FHIR server by it; its certificate does not name it
REQUEST = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
USER, PASSWORD = "cds-service", "s3cret@€:/#"
EHR_TOKEN = "ehr-access-token"
IN_URL = f"{USER}:{quote(PASSWORD, safe='')}"  # as written in CDS_OUTBOUND_PROXY: percent-encoded


@dataclass
class ConnectProxy:
    """A forward proxy that tunnels (``CONNECT host:port``) to the names it knows, each request
    head kept; with ``credentials`` set, a request without them is answered 407."""

    credentials: str | None = None
    heads: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def allowed(self, headers: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        return headers.get("proxy-authorization") == f"Basic {base64.b64encode(self.credentials.encode()).decode()}"


def _tunnel(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 5)
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (b if source is a else a).sendall(data)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    state = ConnectProxy()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request_line = self.rfile.readline().decode("latin-1").strip()
            headers = {}
            while (line := self.rfile.readline().decode("latin-1").strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            state.heads.append((request_line, headers))
            method, target, _ = request_line.split(" ")
            host, _, port = target.rpartition(":")
            if not state.allowed(headers):
                self.wfile.write(
                    b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\n'
                )
                self.wfile.write(b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if method != "CONNECT" or host not in (FHIR_HOST, KEYS_HOST, UNNAMED_HOST):
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            with socket.create_connection(("127.0.0.1", int(port))) as upstream:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                _tunnel(self.connection, upstream)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _certificates(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA (its certificate written for the service to trust) and the FHIR server's TLS context."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: Any, issuer: str, signer: Any, ca: bool, names: tuple[str, ...] = ()
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(map(x509.DNSName, names))), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("Test hospital CA", ca_key, "Test hospital CA", ca_key, ca=True)
    leaf = certificate(FHIR_HOST, server_key, "Test hospital CA", ca_key, ca=False, names=(FHIR_HOST, KEYS_HOST))
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (directory / "server.key").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    return directory / "ca.pem", context


@pytest.fixture
def hospital_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    return _certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def internal_fhir(hospital_ca: tuple[Path, ssl.SSLContext]) -> Iterator[FhirTestServer]:
    """The EHR's FHIR server over https, by a name only the proxy resolves."""
    state = FhirTestServer(resources=demo_resources())
    httpd, thread = start(state, tls=hospital_ca[1], name=FHIR_HOST)
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def trusting(hospital_ca: tuple[Path, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The service trusts the hospital's CA (``SSL_CERT_FILE``, read once a process)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(hospital_ca[0]))
    tls_context.cache_clear()
    yield
    tls_context.cache_clear()


def test_an_https_fhir_server_is_reached_through_the_proxy_its_token_inside_the_tunnel(
    defaults: Callable[..., TestClient],
    proxy: ConnectProxy,
    internal_fhir: FhirTestServer,
    trusting: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy.credentials = f"{USER}:{PASSWORD}"
    outbound_proxy = proxy.url.replace("http://", f"http://{IN_URL}@")
    client = defaults(auth_mode="off", fhir_servers=[internal_fhir.base], outbound_proxy=outbound_proxy)
    response = client.post(SELECT, json=fetching_request(internal_fhir.base, access_token=EHR_TOKEN))
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-duration" in [card["source"]["topic"]["code"] for card in response.json()["cards"]]
    assert len(internal_fhir.seen) >= 4  # the Patient, and the searches
    assert all(seen.headers["authorization"] == f"Bearer {EHR_TOKEN}" for seen in internal_fhir.seen)
    port = internal_fhir.base.split(":")[2].split("/")[0]
    assert proxy.heads and all(line.startswith(f"CONNECT {FHIR_HOST}:{port} ") for line, _ in proxy.heads)
    # The proxy saw its own credentials and not the EHR's token; the FHIR server, the other way round.
    assert all(proxy.allowed(headers) and "authorization" not in headers for _, headers in proxy.heads)
    assert all("proxy-authorization" not in seen.headers for seen in internal_fhir.seen)
    assert f"through the proxy at {proxy.url}" in caplog.text
    assert "s3cret" not in caplog.text


def test_no_tls_secrets_are_written_where_sslkeylogfile_says(
    defaults: Callable[..., TestClient],
    proxy: ConnectProxy,
    internal_fhir: FhirTestServer,
    trusting: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Python's default TLS context writes each session's secrets to the file ``SSLKEYLOGFILE``
    names (a debugging aid some images set): the service's writes none."""
    secrets = tmp_path / "tls-secrets.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(secrets))
    tls_context.cache_clear()
    client = defaults(auth_mode="off", fhir_servers=[internal_fhir.base], outbound_proxy=proxy.url)
    response = client.post(SELECT, json=fetching_request(internal_fhir.base, access_token=EHR_TOKEN))
    assert response.status_code == 200, response.text
    assert internal_fhir.seen  # fetched over https
    # Python writes the file's first line as a default context is made; no session's secret follows
    # (TLS 1.3's lines name each secret, TLS 1.2's begin CLIENT_RANDOM: none but comments).
    assert not secrets.exists() or all(line.startswith("#") for line in secrets.read_text().splitlines())


def test_the_servers_certificate_is_checked_through_the_tunnel(
    defaults: Callable[..., TestClient], proxy: ConnectProxy, internal_fhir: FhirTestServer
) -> None:
    """The hospital's CA not trusted (certifi's public CAs only): the tunnel opens, TLS inside
    it fails, and the history is not had, as for any server out of reach."""
    tls_context.cache_clear()
    client = defaults(auth_mode="off", fhir_servers=[internal_fhir.base], outbound_proxy=proxy.url)
    response = client.post(SELECT, json=fetching_request(internal_fhir.base, access_token=EHR_TOKEN))
    assert response.status_code == 412, response.text
    assert proxy.heads and not internal_fhir.seen


def test_a_certificate_for_another_host_is_refused(
    defaults: Callable[..., TestClient], proxy: ConnectProxy, internal_fhir: FhirTestServer, trusting: None
) -> None:
    """The server's certificate chains to the trusted CA but names other hosts: TLS fails, and
    the history is not had, as for any server out of reach."""
    base = internal_fhir.base.replace(FHIR_HOST, UNNAMED_HOST)
    client = defaults(auth_mode="off", fhir_servers=[base], outbound_proxy=proxy.url)
    response = client.post(SELECT, json=fetching_request(base, access_token=EHR_TOKEN))
    assert response.status_code == 412, response.text
    assert proxy.heads and proxy.heads[0][0].startswith(f"CONNECT {UNNAMED_HOST}:")
    assert not internal_fhir.seen


def test_a_proxy_that_refuses_the_service_is_a_fhir_server_not_reached(
    defaults: Callable[..., TestClient], proxy: ConnectProxy, internal_fhir: FhirTestServer, trusting: None
) -> None:
    """No credentials for a proxy that wants them (407): the answer is the 412 of any server out
    of reach; no card is made from half a history."""
    proxy.credentials = f"{USER}:{PASSWORD}"
    client = defaults(auth_mode="off", fhir_servers=[internal_fhir.base], outbound_proxy=proxy.url)
    response = client.post(SELECT, json=fetching_request(internal_fhir.base, access_token=EHR_TOKEN))
    assert response.status_code == 412, response.text
    assert proxy.heads and not internal_fhir.seen


def test_servers_on_this_machine_are_reached_directly_not_through_the_proxy(
    defaults: Callable[..., TestClient], proxy: ConnectProxy, fhir_server: FhirTestServer
) -> None:
    """Through the proxy, "localhost" would be the proxy's own host, and the plain-http request
    allowed on loopback, token and all, would cross the network."""
    client = defaults(auth_mode="off", fhir_servers=["loopback"], outbound_proxy=proxy.url)
    response = client.post(SELECT, json=fetching_request(fhir_server.base, access_token=EHR_TOKEN))
    assert response.status_code == 200, response.text
    assert fhir_server.seen and not proxy.heads


def test_an_issuers_key_set_is_fetched_through_the_proxy(
    defaults: Callable[..., TestClient],
    proxy: ConnectProxy,
    hospital_ca: tuple[Path, ssl.SSLContext],
    trusting: None,
    tmp_path: Path,
) -> None:
    """The EHR's keys published on the internet, the service inside the hospital: the client's
    token is checked against the key set fetched through the proxy."""
    key = SigningKey.generate("ES384")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(jwks(key)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = hospital_ca[1].wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        keys = f"https://{KEYS_HOST}:{httpd.server_address[1]}/jwks.json"
        (tmp_path / "clients.json").write_text(json.dumps([{"iss": ISSUER, "jwks_url": keys}]))
        client = defaults(
            outbound_proxy=proxy.url, trusted_clients_file=tmp_path / "clients.json", public_url=["http://testserver"]
        )
        token = key.sign(claims(f"http://testserver{SELECT}", NOON))
        response = client.post(SELECT, json=fixture(REQUEST), headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert [line.split(" ")[:2] for line, _ in proxy.heads] == [
            ["CONNECT", f"{KEYS_HOST}:{httpd.server_address[1]}"]
        ]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    "value",
    [
        f"ftp://{IN_URL}@proxy.hospital.example:21",
        f"http://{IN_URL}@proxy.hospital.example:3128/path",
        f"http://{IN_URL}@proxy.hospital.example:port",
        f"http://{IN_URL}@proxy.hospital.example:0",
        f"http://{IN_URL}@proxy.hospital.example",  # no port: say which
        f"http://{IN_URL}@:3128",
        f"http://{USER}:s3cret#proxy@proxy.hospital.example:3128",  # a "#" not percent-encoded
        "http://cds%3Aservice:s3cret@proxy.hospital.example:3128",  # a ":" in the user
        "proxy.hospital.example:3128",
    ],
)
def test_a_bad_proxy_url_stops_start_up_naming_the_setting_and_not_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.setenv("CDS_OUTBOUND_PROXY", value)
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration: outbound_proxy:" in err, err
    assert "s3cret" not in err


def test_an_empty_proxy_setting_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """An env file's ``CDS_OUTBOUND_PROXY=`` line: no proxy, as when it is unset."""
    monkeypatch.setenv("CDS_OUTBOUND_PROXY", "")
    assert Settings().outbound_proxy is None
