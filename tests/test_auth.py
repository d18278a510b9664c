"""Client authentication (CDS_AUTH_MODE=required) over HTTP, with real ES384 and RS384 tokens."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from tests.conftest import SELECT, Clock, fetching_request, fixture, rule_ids
from tests.fhir_server import POLL_SECONDS, FhirTestServer
from tests.tokens import ISSUER, SigningKey, b64, claims, jwks, unsigned

NOW = 1_795_000_000.0
BASE = "http://testserver"
REQUEST = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"


@pytest.fixture(scope="module")
def es384() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture(scope="module")
def rs384() -> SigningKey:
    return SigningKey.generate("RS384")


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def trust(tmp_path: Path, es384: SigningKey, rs384: SigningKey) -> Callable[..., Path]:
    """Writes a trusted-clients file; by default one EHR holding both test keys inline."""

    def write(*clients: dict[str, Any]) -> Path:
        path = tmp_path / "trusted-clients.json"
        default = {"iss": ISSUER, "jwks": jwks(es384, rs384), "fhir_servers": ["https://fhir.example.org/r4"]}
        path.write_text(json.dumps(list(clients) or [default]))
        return path

    return write


@pytest.fixture
def secure(
    make_client: Callable[..., TestClient], trust: Callable[..., Path], clock: Clock
) -> Callable[..., TestClient]:
    """Clients with authentication required, on the test clock; by default trusting the one test EHR."""

    def make(trusted_file: Path | None = None, **overrides: Any) -> TestClient:
        return make_client(auth_mode="required", trusted_clients_file=trusted_file or trust(), clock=clock, **overrides)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(client: TestClient, token: str | None, path: str = SELECT) -> Any:
    return client.post(path, json=fixture(REQUEST), headers=bearer(token) if token else {})


@pytest.fixture
def rejected(caplog: pytest.LogCaptureFixture) -> Callable[[Any, str], None]:
    """401 for the expected reason: the caller sees the generic answer, the log says why."""

    def check(response: Any, reason: str) -> None:
        assert_401(response)
        assert reason in caplog.text

    return check


def assert_401(response: Any) -> None:
    """Every rejection looks the same: nothing in it tells an attacker which check failed."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "login",
                "diagnostics": "authentication failed: a valid CDS Hooks client JWT is required",
            }
        ],
    }


# --- tokens that pass -----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_valid_token_is_answered(
    secure: Callable[..., TestClient], es384: SigningKey, rs384: SigningKey, alg: str
) -> None:
    key = es384 if alg == "ES384" else rs384
    response = call(secure(), key.sign(claims(BASE + SELECT, NOW)))
    assert response.status_code == 200, response.text
    assert rule_ids(response.json()) == ["cyclobenzaprine-duration"]


def test_epic_style_rs384_token_with_sub_nbf_and_audience_list(
    secure: Callable[..., TestClient], rs384: SigningKey
) -> None:
    token = rs384.sign(claims([BASE + SELECT, "https://other.example.org"], NOW, sub="epic-client-id", nbf=int(NOW)))
    assert call(secure(), token).status_code == 200


def test_discovery_and_feedback_need_a_token_for_their_own_url(
    secure: Callable[..., TestClient], es384: SigningKey
) -> None:
    client = secure()
    assert_401(client.get("/cds-services"))
    discovery = client.get("/cds-services", headers=bearer(es384.sign(claims(BASE + "/cds-services", NOW))))
    assert discovery.status_code == 200
    feedback = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}]}
    path = SELECT + "/feedback"
    assert_401(client.post(path, json=feedback, headers=bearer(es384.sign(claims(BASE + SELECT, NOW)))))
    response = client.post(path, json=feedback, headers=bearer(es384.sign(claims(BASE + path, NOW))))
    assert response.status_code == 200
    assert response.json() == {"received": 1, "stored": 1}


def test_clock_skew_within_the_leeway_is_tolerated(secure: Callable[..., TestClient], es384: SigningKey) -> None:
    token = es384.sign(claims(BASE + SELECT, NOW + 20))  # issued 20 s "in the future": default leeway 30 s
    assert call(secure(), token).status_code == 200


def test_tenant_is_checked_when_configured(
    secure: Callable[..., TestClient], trust: Callable[..., Path], es384: SigningKey
) -> None:
    client = secure(trust({"iss": ISSUER, "jwks": jwks(es384), "tenant": "north-campus"}))
    assert call(client, es384.sign(claims(BASE + SELECT, NOW, tenant="north-campus"))).status_code == 200
    assert_401(call(client, es384.sign(claims(BASE + SELECT, NOW, tenant="south-campus"))))


# --- one test per rejection reason ----------------------------------------------------------


def test_no_token_is_401(secure: Callable[..., TestClient], rejected: Callable[[Any, str], None]) -> None:
    rejected(call(secure(), None), "no Bearer token")


def test_wrong_aud_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    rejected(
        call(secure(), es384.sign(claims(BASE + "/cds-services/back-spasm-order-sign", NOW))), "is not the URL called"
    )


def test_expired_token_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    rejected(call(secure(), es384.sign(claims(BASE + SELECT, NOW - 400))), "token expired")  # expired 100 s ago


def test_future_iat_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    rejected(call(secure(), es384.sign(claims(BASE + SELECT, NOW + 120))), "token not valid yet")


def test_future_nbf_is_401(
    secure: Callable[..., TestClient], rs384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    rejected(call(secure(), rs384.sign(claims(BASE + SELECT, NOW, nbf=int(NOW) + 120))), "token not valid yet")


def test_lifetime_over_an_hour_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    rejected(call(secure(), es384.sign(claims(BASE + SELECT, NOW, lifetime=7200))), "token lifetime over")


def test_replayed_jti_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    client = secure()
    token = es384.sign(claims(BASE + SELECT, NOW))
    assert call(client, token).status_code == 200
    rejected(call(client, token), "was already used")


def test_replay_is_refused_by_another_process_on_the_same_database(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None], postgresql_url: str
) -> None:
    """PostgreSQL: several processes share it, and each checks a token id in it."""
    token = es384.sign(claims(BASE + SELECT, NOW))
    assert call(secure(database_url=postgresql_url), token).status_code == 200
    rejected(call(secure(database_url=postgresql_url), token), "was already used")  # only the database is shared


def test_replay_is_refused_after_a_restart_on_sqlite(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    """SQLite: one process serves the file and checks token ids in its memory, writing them a
    few ms later; the next process on the file starts from what was written."""
    token = es384.sign(claims(BASE + SELECT, NOW))
    first = secure()
    assert call(first, token).status_code == 200
    first.__exit__(None, None, None)  # shut down: what was queued is written
    rejected(call(secure(), token), "was already used")


def test_a_full_token_memory_checks_in_the_database_rather_than_refusing(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    """SQLite's memory of token ids is bounded: once full of unexpired ids, a call is checked in
    the database (which holds them all), not refused, and a replay there is still refused."""
    client = secure()
    first, second = (es384.sign(claims(BASE + SELECT, NOW)) for _ in range(2))
    assert call(client, first).status_code == 200
    client.app.state.runtime.writer.recent_tokens._limit = 1  # type: ignore[attr-defined]
    assert call(client, second).status_code == 200
    rejected(call(client, second), "was already used")
    rejected(call(client, first), "was already used")


def test_unknown_issuer_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    rejected(
        call(secure(), es384.sign(claims(BASE + SELECT, NOW, iss="https://stranger.example.org"))), "is not trusted"
    )


def test_unknown_kid_is_401(secure: Callable[..., TestClient], rejected: Callable[[Any, str], None]) -> None:
    stranger = SigningKey.generate("ES384")
    rejected(call(secure(), stranger.sign(claims(BASE + SELECT, NOW))), "is not a key of issuer")


def test_key_of_the_issuer_under_another_kid_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    """A valid-looking kid must still name the key that made the signature."""
    impostor = SigningKey("ES384", es384.kid, SigningKey.generate("ES384").private)
    rejected(call(secure(), impostor.sign(claims(BASE + SELECT, NOW))), "Signature verification failed")


def test_alg_none_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    token = unsigned({"alg": "none", "typ": "JWT", "kid": es384.kid}, claims(BASE + SELECT, NOW)) + "."
    rejected(call(secure(), token), "alg 'none' is not allowed")


def test_hs256_signed_with_the_public_key_is_401(
    secure: Callable[..., TestClient], rs384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    """The classic key-confusion attack: the public key, which anyone has, used as an HMAC secret."""
    public_pem = rs384.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": rs384.kid}, claims(BASE + SELECT, NOW))
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    rejected(call(secure(), f"{signing_input}.{b64(signature)}"), "alg 'HS256' is not allowed")


def test_jku_not_configured_for_the_issuer_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    token = es384.sign(claims(BASE + SELECT, NOW), jku="https://attacker.example.org/jwks.json")
    rejected(call(secure(), token), "is not the key set configured")


def test_rs384_header_on_an_ec_key_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    token = unsigned({"alg": "RS384", "typ": "JWT", "kid": es384.kid}, claims(BASE + SELECT, NOW)) + ".c2ln"
    rejected(call(secure(), token), "does not fit key")


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "jti"])
def test_missing_required_claim_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None], claim: str
) -> None:
    token_claims = claims(BASE + SELECT, NOW)
    del token_claims[claim]
    reasons = {"iss": "is not trusted", "aud": "is not the URL called", "jti": "claim jti is missing"}
    rejected(call(secure(), es384.sign(token_claims)), reasons.get(claim, f"claim {claim} is missing"))


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not.a.jwt", "Bearer " + "a" * 20_000, "Bearer ...."]
)
def test_malformed_authorization_is_401(secure: Callable[..., TestClient], authorization: str) -> None:
    assert_401(secure().post(SELECT, json=fixture(REQUEST), headers={"Authorization": authorization}))


def test_rejections_are_logged_with_the_reason_never_the_token(
    secure: Callable[..., TestClient], es384: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    token = es384.sign(claims(BASE + SELECT, NOW - 400))
    assert_401(call(secure(), token))
    assert "token expired" in caplog.text
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text


# --- whatever a caller puts in a token: 401, never 500 (issue 16 #6) ------------------------


def signed(key: SigningKey, header: str, payload: str) -> str:
    """A token signed by a trusted key over raw JSON text: header and claims no JWT library would write."""
    signing_input = f"{b64(header.encode())}.{b64(payload.encode())}"
    signature = jwt.algorithms.get_default_algorithms()[key.alg].sign(signing_input.encode(), key.private)
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": ["ES384"], "typ": "JWT"}, "alg ['ES384'] is not allowed"),
        ({"alg": {"ES384": 1}, "typ": "JWT"}, "is not allowed"),
        ({"alg": 384, "typ": "JWT"}, "alg 384 is not allowed"),
        ({"alg": "ES384", "typ": 1}, "typ 1 is not JWT"),
        ({"alg": "ES384", "typ": ["JWT"]}, "typ ['JWT'] is not JWT"),
        ({"alg": "ES384", "typ": None}, "typ None is not JWT"),
        ({"alg": "ES384", "typ": "JWT", "jku": {"url": 1}}, "is not the key set configured"),
        # No JWS extension is understood: a token that names one is refused (RFC 7515 §4.1.11).
        ({"alg": "ES384", "typ": "JWT", "crit": 5}, "malformed token: header crit"),
        ({"alg": "ES384", "typ": "JWT", "crit": ["exp"]}, "malformed token: header crit"),
        ({"alg": "ES384", "typ": "JWT", "b64": False, "crit": ["b64"]}, "malformed token: header crit"),
        ({"alg": "ES384", "typ": "JWT", "b64": False}, "malformed token: header b64"),
    ],
)
def test_hostile_header_types_are_401(
    secure: Callable[..., TestClient],
    es384: SigningKey,
    rejected: Callable[[Any, str], None],
    header: dict[str, Any],
    reason: str,
) -> None:
    token = signed(es384, json.dumps({**header, "kid": es384.kid}), json.dumps(claims(BASE + SELECT, NOW)))
    rejected(call(secure(), token), reason)


def padded(segment: str) -> str:
    return segment + "=" * (-len(segment) % 4)


def header_of_length(key: SigningKey, *, remainder: int) -> str:
    """A header JSON whose length is ``remainder`` past a multiple of 3 (how much padding it needs)."""
    header = {"alg": "ES384", "typ": "JWT", "kid": key.kid, "pad": ""}
    header["pad"] = "x" * ((remainder - len(json.dumps(header))) % 3)
    return json.dumps(header)


def respelled(segment: str) -> str:
    """The same bytes in another spelling: the last character's unused low bit flipped."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) ^ 1]


def test_base64url_padding_is_read_as_pyjwt_reads_it(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    """Some issuers pad their segments (and sign them so): accepted where PyJWT accepts them."""
    header = b64(header_of_length(es384, remainder=1).encode())  # 2 chars past a quantum: "==" pads it
    signing_input = f"{padded(header)}.{padded(b64(json.dumps(claims(BASE + SELECT, NOW)).encode()))}"
    signature = jwt.algorithms.get_default_algorithms()["ES384"].sign(signing_input.encode(), es384.private)
    assert call(secure(), f"{signing_input}.{b64(signature)}").status_code == 200
    head, payload, sig = es384.sign(claims(BASE + SELECT, NOW)).split(".")
    for token, reason in [
        (f"{padded(head)}=.{payload}.{sig}", "header: not base64url"),  # padding past a whole quantum
        (f"{head}.{payload}!.{sig}", "payload: not base64url"),
        (f"{respelled(header)}.{payload}.{sig}", "header: not canonical base64url"),
        (f"{head}.{payload}.{sig}.", "4 segment(s)"),
    ]:
        rejected(call(secure(), token), f"malformed token: {reason}")


@pytest.mark.parametrize("depth", [65, 1000, 1020, 5000])
@pytest.mark.parametrize("part", ["header", "payload"])
def test_a_header_or_claim_nested_deep_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None], part: str, depth: int
) -> None:
    """Deeper than a token needs, and deeper than a log line could repeat: refused, never a 500."""
    nested = "[" * depth + "]" * depth
    header = json.dumps({"alg": "ES384", "typ": "@", "kid": es384.kid})
    payload = json.dumps({**claims(BASE + SELECT, NOW), "iss": "@"})
    if part == "header":
        header = header.replace('"@"', nested)
    else:
        payload = payload.replace('"@"', nested)
    reason = "nests deeper than 64 levels" if depth < 1024 else "not JSON"
    rejected(call(secure(), signed(es384, header, payload)), f"malformed token: {part}: {reason}")


HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("exp", HUGE, "claim exp is not a time"),
        ("iat", HUGE, "claim iat is not a time"),
        ("nbf", HUGE, "claim nbf is not a time"),
        ("exp", "-" + HUGE, "claim exp is not a time"),
        ("exp", "1e400", "claim exp is not a time"),
        ("iat", "NaN", "claim iat is not a time"),
        ("nbf", "-Infinity", "claim nbf is not a time"),
        ("exp", "1" + "0" * 5000, "malformed token"),  # past Python's 4300-digit limit
        ("exp", '"soon"', "claim exp is missing or not a number"),
        ("jti", '"a\\u0000b"', "claim jti is missing or not a printable string"),
        ("jti", '"\\ud800"', "claim jti is missing or not a printable string"),
        ("jti", '"' + "j" * 300 + '"', "claim jti is missing or not a printable string"),
        ("aud", '[[1], {"a": 2}, null]', "is not the URL called"),
        ("aud", '"http://testserver/cds-services/x?y#z"', "is not the URL called"),
    ],
)
def test_hostile_claim_values_are_401(
    secure: Callable[..., TestClient],
    es384: SigningKey,
    rejected: Callable[[Any, str], None],
    claim: str,
    value: str,
    reason: str,
) -> None:
    body = {**claims(BASE + SELECT, NOW), "nbf": int(NOW), claim: "@"}
    payload = json.dumps(body).replace('"@"', value)
    rejected(
        call(secure(), signed(es384, json.dumps({"alg": "ES384", "typ": "JWT", "kid": es384.kid}), payload)), reason
    )


def test_a_nul_in_jti_is_401_on_postgresql_too(
    secure: Callable[..., TestClient], es384: SigningKey, postgresql_url: str, rejected: Callable[[Any, str], None]
) -> None:
    """Issue 16 #5/#6: the replay cache stores the jti, and PostgreSQL refuses NUL (it was a 500)."""
    client = secure(database_url=postgresql_url)
    token = es384.sign({**claims(BASE + SELECT, NOW), "jti": "a\u0000b"})
    rejected(call(client, token), "not a printable string")
    assert call(client, es384.sign(claims(BASE + SELECT, NOW))).status_code == 200


# --- behind a proxy -------------------------------------------------------------------------


PUBLIC = "https://cds.hospital.example.org"
OTHER = "https://cds.other-hospital.example.org"


def test_aud_must_name_the_configured_public_url_whatever_the_headers_say(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    """Issue 16 #3: the audience is configuration. Behind the proxy the service sees its own
    address; the token names the public URL, and no header is needed or heeded."""
    client = secure(public_url=[PUBLIC, "http://testserver"])
    assert call(client, es384.sign(claims(PUBLIC + SELECT, NOW))).status_code == 200
    assert call(client, es384.sign(claims("HTTPS://CDS.hospital.example.org:443" + SELECT, NOW))).status_code == 200
    assert call(client, es384.sign(claims(BASE + SELECT, NOW))).status_code == 200  # the second public URL
    rejected(call(client, es384.sign(claims(OTHER + SELECT, NOW))), f"is not the URL called ({SELECT} on {PUBLIC}")


def test_a_token_for_another_deployment_sent_with_its_host_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    """The attack of issue 16 #3: a trusted issuer's token for another deployment, replayed here
    with that deployment's Host (TestClient's base URL sets Host) and forwarded headers."""
    client = secure(base_url=OTHER, public_url=[PUBLIC])
    token = es384.sign(claims(OTHER + SELECT, NOW))
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "cds.other-hospital.example.org"}
    rejected(
        client.post(SELECT, json=fixture(REQUEST), headers={**bearer(token), **forwarded}), "is not the URL called"
    )


def test_leftmost_forwarded_host_never_wins(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    client = secure(public_url=[PUBLIC])
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "cds.other-hospital.example.org, cds.hospital.example.org",
    }
    token = es384.sign(claims(OTHER + SELECT, NOW))
    rejected(
        client.post(SELECT, json=fixture(REQUEST), headers={**bearer(token), **forwarded}), "is not the URL called"
    )
    token = es384.sign(claims(PUBLIC + SELECT, NOW))
    assert client.post(SELECT, json=fixture(REQUEST), headers={**bearer(token), **forwarded}).status_code == 200


# --- the sandbox ----------------------------------------------------------------------------


def test_sandbox_jwt_vector_verifies_at_its_own_time(
    secure: Callable[..., TestClient], trust: Callable[..., Path], clock: Clock
) -> None:
    """The token the sandbox really sent (fixtures/sandbox/jwt-vector.json).

    Its aud names a service this project does not have, so passing authentication shows as 404.
    """
    vector = fixture("sandbox/jwt-vector.json")
    iat = vector["decoded"]["claims"]["iat"]
    clock.now = iat + 60
    headers = {"Authorization": vector["authorization_header"]}
    path = "/cds-services/harness-order-select"
    body = fixture("sandbox/order-select-r4.json")

    not_trusted = secure(public_url=["http://127.0.0.1:8092"])
    assert_401(not_trusted.post(path, json=body, headers=headers))

    sandbox = secure(trust(), public_url=["http://127.0.0.1:8092"], trust_sandbox=True)
    response = sandbox.post(path, json=body, headers=headers)
    assert response.status_code == 404, response.text
    assert "harness-order-select" in response.json()["issue"][0]["diagnostics"]

    clock.now = iat + 400  # after its exp (iat + 300) and the leeway
    later = secure(trust(), public_url=["http://127.0.0.1:8092"], trust_sandbox=True)
    assert_401(later.post(path, json=body, headers=headers))


# --- keys fetched from the issuer's jwks_url ------------------------------------------------


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


# --- FHIR servers: only the caller's own ----------------------------------------------------


def test_fhir_server_not_listed_for_the_caller_is_never_contacted(
    secure: Callable[..., TestClient], es384: SigningKey, fhir_server: FhirTestServer
) -> None:
    client = secure()  # the caller's list: https://fhir.example.org/r4 only
    token = es384.sign(claims(BASE + SELECT, NOW))
    response = client.post(SELECT, json=fetching_request(fhir_server.base), headers=bearer(token))
    assert response.status_code == 412, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["prefetch.conditions", "prefetch.medications"]
    assert "not on this service's list of FHIR servers" in issue["diagnostics"]
    assert fhir_server.seen == []


def test_fhir_server_listed_for_the_caller_is_fetched_from(
    secure: Callable[..., TestClient], trust: Callable[..., Path], es384: SigningKey, fhir_server: FhirTestServer
) -> None:
    client = secure(trust({"iss": ISSUER, "jwks": jwks(es384), "fhir_servers": [fhir_server.base + "/"]}))
    token = es384.sign(claims(BASE + SELECT, NOW))
    response = client.post(SELECT, json=fetching_request(fhir_server.base), headers=bearer(token))
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-duration" in rule_ids(response.json())
    assert len([seen for seen in fhir_server.seen if not seen.path.endswith("/metadata")]) == 4


def test_with_auth_off_only_the_configured_servers_are_fetched_from(
    make_client: Callable[..., TestClient], fhir_server: FhirTestServer
) -> None:
    """The test settings list "loopback" (the default lists nothing: tests/test_security_defaults.py)."""
    outside = make_client().post(SELECT, json=fetching_request("https://fhir.elsewhere.example.org/r4"))
    assert outside.status_code == 412
    assert "not on this service's list" in outside.json()["issue"][0]["diagnostics"]
    plain_http = make_client().post(SELECT, json=fetching_request("http://fhir.elsewhere.example.org/r4"))
    assert "must use https" in plain_http.json()["issue"][0]["diagnostics"]

    listed_elsewhere = make_client(fhir_servers=["https://fhir.example.org/r4"])
    assert listed_elsewhere.post(SELECT, json=fetching_request(fhir_server.base)).status_code == 412
    assert fhir_server.seen == []
    assert make_client().post(SELECT, json=fetching_request(fhir_server.base)).status_code == 200
    assert fhir_server.seen
