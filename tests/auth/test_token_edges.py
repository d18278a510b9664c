"""The edges of the token checks, each on the test clock: what is tolerated (the leeway, the
scheme's case, the longest lifetime and jti) and what is one step past it (issue 17's mutation
audit: each test fails with the check it names loosened or tightened by one)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.auth.conftest import BASE, NOW, REQUEST, call
from tests.conftest import SELECT, Clock, fixture
from tests.tokens import ISSUER, SigningKey, claims, unsigned

LEEWAY = 30  # the default CDS_TOKEN_LEEWAY_SECONDS


def test_the_bearer_scheme_is_read_in_any_case(secure: Callable[..., TestClient], es384: SigningKey) -> None:
    """An auth-scheme is case-insensitive (RFC 7235 §2.1): an EHR that writes ``bearer`` is let in."""
    token = es384.sign(claims(BASE + SELECT, NOW))
    response = secure().post(SELECT, json=fixture(REQUEST), headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200, response.text


def test_a_token_over_16384_characters_is_refused_before_it_is_read(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    """Validly signed, but longer than any client token: not decoded or verified (the bound on
    the work a caller can ask for)."""
    token = es384.sign(claims(BASE + SELECT, NOW, filler="x" * 12_300))
    assert len(token) > 16_384
    rejected(call(secure(), token), "token too long")


def test_the_leeway_tolerates_a_clock_behind_or_ahead_on_exp_and_nbf(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    """The EHR's clock may differ from ours by the leeway either way: expired 20 s ago, or not
    valid for another 20 s, passes; expired a second past the leeway does not."""
    client = secure()
    assert call(client, es384.sign(claims(BASE + SELECT, NOW - 320))).status_code == 200  # exp NOW - 20
    assert call(client, es384.sign(claims(BASE + SELECT, NOW, nbf=int(NOW) + 20))).status_code == 200
    rejected(call(client, es384.sign(claims(BASE + SELECT, NOW - 300 - LEEWAY - 1))), "token expired")


def test_a_lifetime_of_exactly_an_hour_passes_and_a_second_more_does_not(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None]
) -> None:
    client = secure()
    assert call(client, es384.sign(claims(BASE + SELECT, NOW, lifetime=3600))).status_code == 200
    rejected(call(client, es384.sign(claims(BASE + SELECT, NOW, lifetime=3601))), "token lifetime over 3600 s")


@pytest.mark.parametrize(("jti", "status"), [("", 401), ("j" * 256, 200), ("j" * 257, 401)])
def test_a_jti_is_one_to_256_characters(
    secure: Callable[..., TestClient], es384: SigningKey, caplog: pytest.LogCaptureFixture, jti: str, status: int
) -> None:
    """An empty jti names no token (every token would share it); 256 is what the replay cache stores."""
    response = call(secure(), es384.sign(claims(BASE + SELECT, NOW, jti=jti)))
    assert response.status_code == status, response.text
    assert ("claim jti is missing" in caplog.text) == (status == 401)


def test_a_replay_is_refused_for_as_long_as_the_token_itself_would_pass(
    secure: Callable[..., TestClient], es384: SigningKey, clock: Clock, rejected: Callable[[Any, str], None]
) -> None:
    """The token id is kept until exp plus the leeway, the last moment the token passes: sent
    again 10 s after its exp (the token still within the leeway), it is a replay."""
    client = secure()
    token = es384.sign(claims(BASE + SELECT, NOW))  # exp NOW + 300
    assert call(client, token).status_code == 200
    clock.now = NOW + 300 + 10
    rejected(call(client, token), "was already used")


def test_typ_is_read_in_any_case(secure: Callable[..., TestClient], es384: SigningKey) -> None:
    """``typ`` is a media type name, compared without regard to case (RFC 7515 §4.1.9)."""
    assert call(secure(), es384.sign(claims(BASE + SELECT, NOW), typ="jwt")).status_code == 200


@pytest.mark.parametrize(("signer", "alg"), [("rs384", "RS256"), ("es384", "RS384"), ("es384", "ES256")])
def test_an_alg_that_does_not_fit_the_key_is_401(
    secure: Callable[..., TestClient],
    trust: Callable[..., Path],
    request: pytest.FixtureRequest,
    rejected: Callable[[Any, str], None],
    signer: str,
    alg: str,
) -> None:
    """A key's own ``alg`` binds it (RS256 with a key published for RS384 is refused, though it
    verifies), and a key published without one still binds its type and curve (RS384 or ES256
    on a P-384 key), whatever the signature library would say next."""
    key: SigningKey = request.getfixturevalue(signer)
    published = key.jwk() if signer == "rs384" else {k: v for k, v in key.jwk().items() if k != "alg"}
    client = secure(trust({"iss": ISSUER, "jwks": {"keys": [published]}}))
    if alg == "RS256":
        token = SigningKey(alg, key.kid, key.private).sign(claims(BASE + SELECT, NOW))
    else:
        token = unsigned({"alg": alg, "typ": "JWT", "kid": key.kid}, claims(BASE + SELECT, NOW)) + ".c2ln"
    rejected(call(client, token), f"alg {alg} does not fit key")
