"""Whatever a caller puts in a token is a 401, never a 500 (issue 16 #6)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.auth.conftest import BASE, NOW, call
from tests.conftest import SELECT
from tests.tokens import SigningKey, b64, claims


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
        ({"alg": "ES384", "typ": "JWT", "b64": 0}, "malformed token: header b64"),  # RFC 7797: a boolean
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


@pytest.mark.parametrize("kid", ["null", '["k"]', '{"k": 1}', "7", None])
def test_a_kid_that_is_not_a_string_is_401(
    secure: Callable[..., TestClient], es384: SigningKey, rejected: Callable[[Any, str], None], kid: str | None
) -> None:
    """The key set is looked up by kid: a list there was an unhashable key (a 500)."""
    header = '{"alg": "ES384", "typ": "JWT"' + (f', "kid": {kid}' if kid else "") + "}"
    rejected(call(secure(), signed(es384, header, json.dumps(claims(BASE + SELECT, NOW)))), "no kid")


@pytest.mark.parametrize(("header", "payload"), [("[]", "{}"), ("{}", "[1]"), ("{}", '"claims"'), ("{}", "null")])
def test_a_header_or_payload_that_is_no_json_object_is_401(
    secure: Callable[..., TestClient],
    es384: SigningKey,
    rejected: Callable[[Any, str], None],
    header: str,
    payload: str,
) -> None:
    """JSON, but not the object a JOSE header and a claims set must be (RFC 7515 §4, RFC 7519 §7.2)."""
    if header == "{}":
        header = json.dumps({"alg": "ES384", "typ": "JWT", "kid": es384.kid})
    part = "header" if header == "[]" else "payload"
    rejected(call(secure(), signed(es384, header, payload)), f"malformed token: {part}: not a JSON object")


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
        (f"{head}.{payload}.{sig}A", "signature: not base64url"),  # 1 past a quantum: no byte has 6 bits
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
        ("nbf", "true", "claim nbf is missing or not a number"),  # a bool is no NumericDate, not 1 s past 1970
        ("jti", '"a\\u0000b"', "claim jti is missing or not a printable string"),
        ("jti", '"\\ud800"', "claim jti is missing or not a printable string"),
        ("jti", '"' + "j" * 300 + '"', "claim jti is missing or not a printable string"),
        ("aud", '[[1], {"a": 2}, null]', "is not the URL called"),
        ("aud", json.dumps({BASE + SELECT: 1}), "is not the URL called"),  # a string or a list of them only
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
