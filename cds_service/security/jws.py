"""A client's token taken apart (JWS Compact Serialization, RFC 7515 §7.1) before its signature
is checked: header and claims as JSON objects, the signed bytes, the signature.

PyJWT 2.15 checks each segment's base64url alphabet one character at a time, in Python: 60–90 µs
of a call whose whole Python work is a few hundred (issue 17). The same checks are made here
with a compiled pattern, and the JSON read by orjson, or by ``json`` where orjson refuses it (a
NaN, 1e400, a lone surrogate: PyJWT's parser, so such values reach the claim checks, which
refuse them with a reason; an integer past 64 bits orjson reads as a float, out of every time
claim's range either way); the signature is still verified by PyJWT's
algorithm (``auth._signed``). Stricter than PyJWT where the service needs nothing more: no
``crit`` extension is understood, so a token naming one is refused (RFC 7515 §4.1.11), and so is
an unencoded payload (``b64``, RFC 7797).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from cds_service.fhir.json import MAX_DEPTH, too_deep

# base64url, with the padding some issuers add (PyJWT accepts it too); RFC 7515 omits it.
_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*={0,2}")


class MalformedToken(ValueError):
    """Not a compact JWS whose header and payload are JSON objects; says which part."""


@dataclass(frozen=True, slots=True)
class Token:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes  # what the signature signs: the first two segments, as sent
    signature: bytes


def parse(token: str) -> Token:
    """The parts of ``token``, each checked; ``MalformedToken`` names the first that is not sound."""
    if not token.isascii():
        raise MalformedToken("not ASCII")
    segments = token.encode().split(b".")
    if len(segments) != 3:
        raise MalformedToken(f"{len(segments)} segment(s), not 3")
    header = _json_object(_decoded(segments[0], "header"), "header")
    if "crit" in header:
        raise MalformedToken("header crit: no extension is understood")
    if header.get("b64", True) is not True:
        raise MalformedToken("header b64: an unencoded payload is not accepted")
    claims = _json_object(_decoded(segments[1], "payload"), "payload")
    return Token(header, claims, segments[0] + b"." + segments[1], _decoded(segments[2], "signature"))


def _decoded(segment: bytes, name: str) -> bytes:
    """A segment's bytes; only canonical base64url (no stray bits in the last character), so
    that the bytes have one spelling, padding aside (accepted as PyJWT accepts it)."""
    stripped = segment.rstrip(b"=")
    padded = len(stripped) != len(segment)
    if _SEGMENT.fullmatch(segment) is None or (padded and len(segment) % 4) or len(stripped) % 4 == 1:
        raise MalformedToken(f"{name}: not base64url")
    decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
        raise MalformedToken(f"{name}: not canonical base64url")
    return decoded


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, a number past Python's limit
            raise MalformedToken(f"{name}: not JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"{name}: not a JSON object")
    # orjson reads 1,024 levels, more than Python's own recursion (``repr`` of a refused value
    # in the log line) survives; no header or claim nests more than a few.
    if too_deep(value):
        raise MalformedToken(f"{name}: nests deeper than {MAX_DEPTH} levels")
    return value
