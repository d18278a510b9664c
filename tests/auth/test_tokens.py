"""Tokens that pass, and one test per reason a token is refused: each a 401 that says nothing, the
reason in the log."""

from __future__ import annotations

import hashlib
import hmac
import logging
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from tests.auth.conftest import BASE, NOW, REQUEST, assert_401, bearer, call
from tests.conftest import SELECT, Clock, fixture, rule_ids
from tests.tokens import ISSUER, SigningKey, b64, claims, jwks, unsigned

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
    feedback = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-18T11:00:00Z"}]}
    path = SELECT + "/feedback"
    assert_401(client.post(path, json=feedback, headers=bearer(es384.sign(claims(BASE + SELECT, NOW)))))
    response = client.post(path, json=feedback, headers=bearer(es384.sign(claims(BASE + path, NOW))))
    assert response.status_code == 200
    assert response.json() == {"received": 1, "stored": 1}


def test_a_refusal_is_logged_by_the_route_template_not_the_path_called(
    secure: Callable[..., TestClient], es384: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    """A path is the caller's to fill (an EHR's misconfigured URL may carry a patient id): the
    log names the route, as the access line does."""
    client = secure()
    for path, route in (
        ("/cds-services/pt-canary-7731", "/cds-services/{service_id}"),
        ("/cds-services/pt-canary-7731/feedback", "/cds-services/{service_id}/feedback"),
    ):
        assert_401(client.post(path, json=fixture(REQUEST)))
        assert f"401 for POST {route}: no Bearer token" in caplog.text
        assert_401(client.post(path, json=fixture(REQUEST), headers=bearer(es384.sign(claims(BASE + SELECT, NOW)))))
        assert f"401 for POST {route}: aud '{BASE + SELECT}' is not the URL called" in caplog.text
    assert "pt-canary-7731" not in caplog.text


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


def test_a_token_id_the_database_refuses_loses_no_card_record(
    secure: Callable[..., TestClient],
    es384: SigningKey,
    rejected: Callable[[Any, str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SQLite: token ids are written behind the answers, in the card records' rounds. One the
    database refuses (here a trigger a DBA added; not an outage) is dropped with an error logged,
    and still refused by this process; the card records of that round and every later one are
    written (they were all lost: the refusal ended the writer, and each new one met it again)."""
    client = secure()
    database = Path(client.app.state.runtime.store.engine.url.database)  # type: ignore[attr-defined]
    with closing(sqlite3.connect(database)) as db, db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON seen_tokens WHEN NEW.jti LIKE 'refused-%' "
            "BEGIN SELECT RAISE(ABORT, 'refused by policy'); END"
        )
    refused = es384.sign(claims(BASE + SELECT, NOW, jti="refused-1"))
    [card] = call(client, refused).json()["cards"]
    path = SELECT + "/feedback"  # waits for the card's round, the refused id's with it
    feedback = {
        "feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-18T11:00:00Z"}]
    }
    answer = client.post(path, json=feedback, headers=bearer(es384.sign(claims(BASE + path, NOW))))
    assert (answer.status_code, answer.json()) == (200, {"received": 1, "stored": 1})
    for _ in range(3):
        assert call(client, es384.sign(claims(BASE + SELECT, NOW))).status_code == 200
    rejected(call(client, refused), "was already used")
    assert "a token id of issuer 'https://ehr.example.org' refused by the database (IntegrityError)" in caplog.text
    client.__exit__(None, None, None)  # shut down: what was queued is written
    with closing(sqlite3.connect(database)) as db:
        [(cards,)] = db.execute("SELECT count(*) FROM issued_cards")
        jtis = {jti for (jti,) in db.execute("SELECT jti FROM seen_tokens")}
    assert cards == 4
    assert len(jtis) == 4 and "refused-1" not in jtis  # the feedback's and the three calls' ids


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


USER_URL = "http://ops:hunter2@testserver"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda key: key.sign(claims(USER_URL + SELECT, NOW)), "aud 'http://***@testserver/cds-services/"),
        (lambda key: key.sign(claims([USER_URL + SELECT, 7], NOW)), "aud ['http://***@testserver/cds-services/"),
        (lambda key: key.sign(claims(BASE + SELECT, NOW, iss=USER_URL)), "issuer 'http://***@testserver' is not"),
        (lambda key: key.sign(claims(BASE + SELECT, NOW), jku=USER_URL + "/jwks"), "jku 'http://***@testserver/jwks'"),
    ],
    ids=["aud", "aud-list", "iss", "jku"],
)
def test_a_url_claim_is_logged_without_its_user_and_password(
    secure: Callable[..., TestClient],
    es384: SigningKey,
    rejected: Callable[[Any, str], None],
    caplog: pytest.LogCaptureFixture,
    token: Callable[[SigningKey], str],
    reason: str,
) -> None:
    """docs/security.md: a URL's user and password are masked in the log, a token's too."""
    rejected(call(secure(), token(es384)), reason)
    assert "hunter2" not in caplog.text


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


def test_a_trusted_issuer_is_logged_without_its_user_and_password(
    secure: Callable[..., TestClient],
    trust: Callable[..., Path],
    es384: SigningKey,
    rejected: Callable[[Any, str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/security.md: a URL's user and password are masked in the log, a configured issuer's
    too: the refusals that name the token's trusted issuer, and the start-up line listing them."""
    caplog.set_level(logging.INFO)
    client = secure(trust({"iss": USER_URL, "jwks": jwks(es384)}))
    masked = "issuer 'http://***@testserver'"
    stranger = SigningKey.generate("ES384")
    rejected(call(client, stranger.sign(claims(BASE + SELECT, NOW, iss=USER_URL))), f"is not a key of {masked}")
    foreign = es384.sign(claims(BASE + SELECT, NOW, iss=USER_URL), jku="https://k.example/jwks")
    rejected(call(client, foreign), f"configured for {masked}")
    replayed = claims(BASE + SELECT, NOW, iss=USER_URL)
    answered = call(client, es384.sign(replayed))
    assert answered.status_code == 200
    rejected(call(client, es384.sign(replayed)), f"of {masked} was already used")
    assert "trusted issuers: 'http://***@testserver'" in caplog.text
    # The feedback writer names the sender too: an item accepting a suggestion its card did not offer.
    path = SELECT + "/feedback"
    at = datetime.fromtimestamp(NOW, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    item = {"card": answered.json()["cards"][0]["uuid"], "outcome": "accepted", "outcomeTimestamp": at}
    item["acceptedSuggestions"] = [{"id": "no-such-suggestion"}]
    token = es384.sign(claims(BASE + path, NOW, iss=USER_URL))
    assert client.post(path, json={"feedback": [item]}, headers=bearer(token)).status_code == 200
    assert "from 'http://***@testserver' accept only suggestions their card did not offer" in caplog.text
    assert "hunter2" not in caplog.text
