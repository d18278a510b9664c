"""Client JWTs with arbitrary header fields and claims, and arbitrary analytics query parameters
(issue 16 #6)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import NOON, SELECT
from tests.fuzz.conftest import (
    FUZZ,
    KEY,
    SECURE_APP,
    assert_no_server_error,
    json_values,
)
from tests.tokens import claims

_numbers = st.integers() | st.floats() | st.sampled_from([10**400, -(10**400), int(NOON), int(NOON) + 60])
_token_values = json_values | _numbers | st.text(min_size=200, max_size=2000)


@st.composite
def client_tokens(draw: st.DrawFn) -> str:
    """Tokens signed by the trusted key (so every check runs) with some header fields and claims
    replaced by arbitrary JSON: lists, objects, null, huge and non-finite numbers, long strings."""
    import jwt

    from tests.tokens import b64

    header: dict[str, Any] = {"alg": "ES384", "typ": "JWT", "kid": KEY.kid}
    payload = claims(f"http://testserver{SELECT}", NOON)
    for name in draw(st.sets(st.sampled_from(["alg", "typ", "kid", "jku", "crit", "x5u"]))):
        header[name] = draw(_token_values)
    for name in draw(st.sets(st.sampled_from(["iss", "aud", "exp", "iat", "nbf", "jti", "tenant"]), min_size=1)):
        payload[name] = draw(_token_values)
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = jwt.algorithms.get_default_algorithms()["ES384"].sign(signing_input.encode(), KEY.private)
    return f"{signing_input}.{b64(signature)}"


@FUZZ
@given(token=client_tokens())
def test_arbitrary_jwt_headers_and_claims_never_get_a_5xx(token: str) -> None:
    with TestClient(SECURE_APP) as client:
        response = client.post(SELECT, json={"hook": "order-select"}, headers={"Authorization": f"Bearer {token}"})
    assert_no_server_error(response)


# Dates anywhere Python can hold them (years 1 to 9999, where the period arithmetic overflowed),
# spelled every way ``date.fromisoformat`` reads (the basic form a 400), or any text at all.
_days = st.dates().map(date.isoformat) | st.dates().map(lambda d: d.strftime("%Y%m%d"))
_query_values = st.none() | _days | st.text(max_size=40) | st.sampled_from(["", "0001-01-01", "9999-12-31"])


@FUZZ
@given(
    path=st.sampled_from(["/analytics", "/analytics/report"]),
    start=_query_values,
    end=_query_values,
    period=st.none() | st.sampled_from(["day", "week", "month"]) | st.text(max_size=12),
)
def test_arbitrary_analytics_parameters_never_get_a_5xx(
    client: TestClient, path: str, start: str | None, end: str | None, period: str | None
) -> None:
    params = {name: value for name, value in (("from", start), ("to", end), ("period", period)) if value is not None}
    response = client.get(path, params=params)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        [issue] = response.json()["issue"]
        assert issue["expression"][0] in params
