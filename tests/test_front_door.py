"""What the service answers before any route runs, and what its web page may do (an adversarial
review): Private Network Access granted to a passing preflight only, a path with an encoded
slash or backslash refused, no Swagger UI OAuth2 page, and the report page under a strict
Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, Clock, fixture
from tests.tokens import ISSUER, SigningKey, claims, jwks

SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
FEEDBACK_BODY = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}]}
ENCODED = ["%2ffeedback", "%2Ffeedback", "%5cfeedback", "%5Cfeedback"]
NOW = 1_795_000_000.0


def _preflight(client: TestClient, origin: str, method: str = "POST") -> dict[str, str]:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
        "Access-Control-Request-Private-Network": "true",
    }
    response = client.options(SELECT, headers=headers)
    return {"status": str(response.status_code), **{k.lower(): v for k, v in response.headers.items()}}


def test_private_network_access_goes_only_with_a_preflight_that_passes(defaults: Callable[..., TestClient]) -> None:
    """Starlette's CORS granted it in the 400 to any origin, `null` (a sandboxed frame, a file)
    included: only the allowed origin's preflight, asking for what is allowed, gets it."""
    client = defaults(auth_mode="off", cors_origins=[SANDBOX_ORIGIN], cors_private_network=True)
    granted = _preflight(client, SANDBOX_ORIGIN)
    assert granted["status"] == "200" and granted["access-control-allow-private-network"] == "true"
    for origin in ("https://evil.example", "null", SANDBOX_ORIGIN + ".evil.example", "http://sandbox.cds-hooks.org"):
        refused = _preflight(client, origin)
        assert refused["status"] == "400", origin
        assert "access-control-allow-private-network" not in refused, origin
        assert "access-control-allow-origin" not in refused, origin
    wrong_method = _preflight(client, SANDBOX_ORIGIN, method="PUT")
    assert wrong_method["status"] == "400" and "access-control-allow-private-network" not in wrong_method


@pytest.mark.parametrize("encoded", ENCODED)
def test_a_path_with_an_encoded_separator_is_refused_before_routing(
    defaults: Callable[..., TestClient], encoded: str
) -> None:
    """`/cds-services/<id>%2ffeedback` was routed as `/cds-services/<id>/feedback` (Starlette
    matches the decoded path) and stored the feedback, past a proxy rule on the path as written."""
    client = defaults(auth_mode="off")
    assert client.post(f"{SELECT}/feedback", json=FEEDBACK_BODY).status_code == 200  # the path as written
    response = client.post(f"{SELECT}{encoded}", json=FEEDBACK_BODY)
    assert response.status_code == 404, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "encoded slash or backslash" in outcome["issue"][0]["diagnostics"]
    # A hook call, discovery and a page alike; the query string may hold them (a date, a reason).
    assert (
        client.post(SELECT.replace("/back", "%2Fback"), json=fixture("sandbox/order-select-r4.json")).status_code == 404
    )
    # A 404 either way (a trailing slash is no route): the front door's is the one that says why.
    discovery = client.get("/cds-services%2f")
    assert discovery.status_code == 404 and "encoded slash" in discovery.json()["issue"][0]["diagnostics"]
    answered = client.get("/analytics?from=2026%2F11%2F01")
    assert answered.status_code == 400 and "encoded slash" not in answered.text


def test_a_feedback_token_is_not_taken_at_an_encoded_path(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """With authentication on: the token's audience, the feedback URL, matched the decoded path."""
    key = SigningKey.generate("ES384")
    trusted = tmp_path / "trusted-clients.json"
    trusted.write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(key)}]))
    client = make_client(auth_mode="required", trusted_clients_file=trusted, clock=Clock(NOW))
    token = key.sign(claims(f"http://testserver{SELECT}/feedback", NOW))
    response = client.post(f"{SELECT}%2ffeedback", json=FEEDBACK_BODY, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404, response.text


def test_swagger_uis_oauth2_page_is_not_served_and_docs_still_is(defaults: Callable[..., TestClient]) -> None:
    client = defaults(auth_mode="off")
    assert client.get("/docs/oauth2-redirect").status_code == 404
    page = client.get("/docs")
    assert page.status_code == 200 and "oauth2-redirect" not in page.text


def test_the_report_page_runs_under_a_strict_content_security_policy(defaults: Callable[..., TestClient]) -> None:
    """No script, no style attribute, nothing from elsewhere: the policy allows the page's one
    style sheet by its hash and nothing else, and no other page may frame it."""
    client = defaults(auth_mode="off")
    client.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))  # a bar, a legend
    page = client.get("/analytics/report")
    assert page.status_code == 200 and "swatch" in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    (sheet,) = re.findall(r"<style>(.*?)</style>", page.text, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(sheet.encode()).digest()).decode()
    assert policy == {
        "default-src": "'none'",
        "style-src": f"'sha256-{digest}'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
    }
    assert not re.search(r"<script|\sstyle=|\son[a-z]+=|<link|<img|<iframe", page.text, flags=re.IGNORECASE)
    head = client.head("/analytics/report")
    assert head.headers["content-security-policy"] == page.headers["content-security-policy"]
