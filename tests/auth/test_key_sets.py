"""Keys fetched from the issuer's jwks_url: cached, refetched for an unknown kid at most once a
minute, and a slow or unreachable key set a 401 at the deadline."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from tests.auth.conftest import BASE, NOW, assert_401, call
from tests.conftest import SELECT, Clock
from tests.fhir_server import POLL_SECONDS
from tests.tokens import ISSUER, SigningKey, claims, jwks


class JwksServer:
    """Serves one JWK Set at /jwks.json over real HTTP and counts the fetches."""

    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = keys
        self.hits = 0
        # Seconds to send the key set a byte every 0.1 s for (then hang up), instead of at once.
        self.drip = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps(server.keys).encode()
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drip:
                    with contextlib.suppress(OSError):
                        for byte in body[: int(server.drip * 10)]:
                            self.wfile.write(bytes([byte]))
                            time.sleep(0.1)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server(es384: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer(jwks(es384))
    yield server
    server.close()


def test_keys_are_fetched_once_and_refetched_for_an_unknown_kid_at_most_once_a_minute(
    secure: Callable[..., TestClient],
    trust: Callable[..., Path],
    es384: SigningKey,
    jwks_server: JwksServer,
    clock: Clock,
) -> None:
    client = secure(trust({"iss": ISSUER, "jwks_url": jwks_server.url}))
    assert call(client, es384.sign(claims(BASE + SELECT, NOW))).status_code == 200
    assert call(client, es384.sign(claims(BASE + SELECT, NOW))).status_code == 200
    assert jwks_server.hits == 1

    rotated = SigningKey.generate("ES384")
    jwks_server.keys = jwks(es384, rotated)
    clock.now = NOW + 30
    assert_401(call(client, rotated.sign(claims(BASE + SELECT, clock.now))))  # unknown kid, fetched < 1 min ago
    assert_401(call(client, SigningKey.generate("ES384").sign(claims(BASE + SELECT, clock.now))))
    assert jwks_server.hits == 1

    clock.now = NOW + 61
    assert call(client, rotated.sign(claims(BASE + SELECT, clock.now))).status_code == 200
    assert jwks_server.hits == 2


def test_jku_equal_to_the_configured_jwks_url_is_accepted(
    secure: Callable[..., TestClient], trust: Callable[..., Path], es384: SigningKey, jwks_server: JwksServer
) -> None:
    client = secure(trust({"iss": ISSUER, "jwks_url": jwks_server.url}))
    assert call(client, es384.sign(claims(BASE + SELECT, NOW), jku=jwks_server.url)).status_code == 200


def test_keys_the_service_cannot_use_beside_the_signing_key_are_passed_by(
    secure: Callable[..., TestClient],
    trust: Callable[..., Path],
    es384: SigningKey,
    jwks_server: JwksServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hunt's finding: a published key with ``"alg": "none"`` answered every call with a 500, and
    an encryption key or an Ed25519 one beside the signing key made the whole set unusable (every
    call a 401). Each is passed by, named in the log, as is an RSA key too short to trust (under
    2048 bits); the signing key verifies."""
    jwks_server.keys["keys"] += [
        {**es384.jwk(), "kid": "none", "alg": "none"},
        {**es384.jwk(), "kid": "encryption", "use": "enc"},
        {"kty": "OKP", "kid": "edwards", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {**json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 1024).public_key())), "kid": "short"},
    ]
    client = secure(trust({"iss": ISSUER, "jwks_url": jwks_server.url}))
    assert call(client, es384.sign(claims(BASE + SELECT, NOW))).status_code == 200
    passed = sorted(
        r.getMessage().rpartition("passed by: ")[2] for r in caplog.records if "passed by" in r.getMessage()
    )
    assert passed == [
        "key 'edwards' is not an EC or RSA signature key",
        "key 'encryption' is not an EC or RSA signature key",
        "key 'none' cannot be read (NotImplementedError)",
        "key 'short' is an RSA key under 2048 bits",
    ]


def test_unreachable_jwks_url_is_401_not_500(
    secure: Callable[..., TestClient], trust: Callable[..., Path], es384: SigningKey, jwks_server: JwksServer
) -> None:
    url = jwks_server.url
    jwks_server.close()
    client = secure(trust({"iss": ISSUER, "jwks_url": url}))
    assert_401(call(client, es384.sign(claims(BASE + SELECT, NOW))))


def test_a_key_set_sent_a_byte_at_a_time_is_given_up_at_the_deadline(
    secure: Callable[..., TestClient],
    trust: Callable[..., Path],
    es384: SigningKey,
    jwks_server: JwksServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each byte in time for a read timeout, the whole never: the fetch (which holds the issuer's
    key-set lock) ends at the deadline, not when the server stops (here after 5 s)."""
    jwks_server.drip = 5.0
    client = secure(trust({"iss": ISSUER, "jwks_url": jwks_server.url}), fhir_deadline_seconds=1.0)
    assert_401(call(client, es384.sign(claims(BASE + SELECT, NOW))))
    [line] = [r.getMessage() for r in caplog.records if "cannot fetch the keys" in r.getMessage()]
    assert line.endswith(": TimeoutError"), line


def test_a_key_withdrawn_from_the_key_set_stops_verifying_after_an_hour(
    secure: Callable[..., TestClient],
    trust: Callable[..., Path],
    es384: SigningKey,
    jwks_server: JwksServer,
    clock: Clock,
    rejected: Callable[[Any, str], None],
) -> None:
    """Fetched keys are kept an hour, then fetched again even for a kid already known: a key the
    issuer withdrew (rotated out, or leaked) stops verifying within that hour, not never."""
    client = secure(trust({"iss": ISSUER, "jwks_url": jwks_server.url}))
    assert call(client, es384.sign(claims(BASE + SELECT, NOW))).status_code == 200
    jwks_server.keys = jwks(SigningKey.generate("ES384"))  # es384 withdrawn
    clock.now = NOW + 3599
    assert call(client, es384.sign(claims(BASE + SELECT, clock.now))).status_code == 200
    assert jwks_server.hits == 1
    clock.now = NOW + 3600
    rejected(call(client, es384.sign(claims(BASE + SELECT, clock.now))), "is not a key of issuer")
    assert jwks_server.hits == 2


def test_the_key_set_lines_mask_a_trusted_issuer_s_password(
    secure: Callable[..., TestClient],
    trust: Callable[..., Path],
    es384: SigningKey,
    jwks_server: JwksServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/security.md: a trusted client's ``iss`` is logged with its user and password masked,
    in the lines about its key set too (fetched, a key passed by, not fetched)."""
    caplog.set_level(logging.INFO)
    user_iss = "https://ops:hunter2@ehr.example.org"
    jwks_server.keys = {"keys": [*jwks(es384)["keys"], {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"}]}
    fetching = secure(trust({"iss": user_iss, "jwks_url": jwks_server.url}))
    assert call(fetching, es384.sign(claims(BASE + SELECT, NOW, iss=user_iss))).status_code == 200
    missing = secure(trust({"iss": user_iss, "jwks_url": jwks_server.url + ".gone"}))
    assert_401(call(missing, es384.sign(claims(BASE + SELECT, NOW, iss=user_iss))))
    masked = "issuer 'https://***@ehr.example.org'"
    for said in (f"fetched 1 key(s) of {masked}", f"a key of {masked} passed by", f"cannot fetch the keys of {masked}"):
        assert said in caplog.text
    assert "hunter2" not in caplog.text
