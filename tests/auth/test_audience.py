"""Behind a proxy: a token's aud must name the configured public URL, whatever the headers say
(issue 16 #3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.auth.conftest import BASE, NOW, REQUEST, bearer, call
from tests.conftest import SELECT, fixture
from tests.tokens import SigningKey, claims

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
    rejected(call(client, es384.sign(claims(OTHER + SELECT, NOW))), f"is not the URL called (under {PUBLIC}")


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
