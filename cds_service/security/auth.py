"""Who may call the service: CDS Hooks 2.0 §Trusting CDS Clients.

Every call carries ``Authorization: Bearer <JWT>`` signed by the EHR. A call is let in only
when the token's issuer is one the operator trusts (the trusted-clients file), the key named
by ``kid`` is in that issuer's key set (held inline, or fetched from its configured URL, which
is also the only ``jku`` accepted), the algorithm is asymmetric, the signature verifies, the
token is addressed to the very URL called, is within its lifetime, and its ``jti`` has not
been seen before. Any failure is one bare 401; the reason goes to the log, never the caller.

The URL a token must be addressed to comes from configuration (``audience.py``), never from the
request's own headers. Every header and claim is type-checked before use: whatever a caller
puts in a token, the answer is a 401, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import jwt

from cds_service.errors import LONGER_SHOWN_CHARS, Unauthorized, shown, shown_url
from cds_service.security import jws
from cds_service.security.audience import Audience
from cds_service.security.clients import TrustedClient, VerifyingKey, read_keys, verifying_keys
from cds_service.security.outbound import Outbound, OutboundError, get_json

log = logging.getLogger(__name__)

# Asymmetric algorithms only (never ``none`` or HS*), each with the key it needs.
ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
}
# CDS Hooks best practice: client tokens live minutes; replay ids are kept no longer than this.
MAX_LIFETIME_SECONDS = 3600
# An unknown kid triggers at most one key-set fetch per issuer in this interval.
REFETCH_INTERVAL_SECONDS = 60
# Fetched key sets are refreshed after this age, so a withdrawn key stops working.
KEYS_MAX_AGE_SECONDS = 3600
MAX_TOKEN_CHARS = 16_384
MAX_JWKS_BYTES = 256 * 1024
# Times a claim may hold: from the epoch to the end of year 9999, what a datetime can stand for.
LATEST_TIME = 253_402_300_799


class KeySet:
    """One issuer's verifying keys: inline ones, and those fetched from its ``jwks_url``."""

    def __init__(self, client: TrustedClient) -> None:
        self._client = client
        self._inline = verifying_keys(client.jwks) if client.jwks else {}
        self._fetched: dict[str, VerifyingKey] = {}
        self._fetched_at = -math.inf
        self._tried_at = -math.inf
        self._lock = asyncio.Lock()

    async def key(self, kid: str, *, now: float, http: Outbound) -> VerifyingKey | None:
        if kid in self._inline:
            return self._inline[kid]
        url = self._client.jwks_url
        fresh = now - self._fetched_at < KEYS_MAX_AGE_SECONDS
        if url is None or (kid in self._fetched and fresh):
            return self._fetched.get(kid)
        async with self._lock:
            if now - self._tried_at >= REFETCH_INTERVAL_SECONDS and (kid not in self._fetched or not fresh):
                self._tried_at = now
                try:
                    jwks = await get_json(http, url, headers={"Accept": "application/json"}, max_bytes=MAX_JWKS_BYTES)
                    self._fetched, refused = read_keys(jwks)
                    self._fetched_at = now
                    log.info("fetched %d key(s) of issuer %s", len(self._fetched), shown_url(self._client.iss))
                    for reason in refused:
                        log.warning("a key of issuer %s passed by: %s", shown_url(self._client.iss), reason)
                except (OutboundError, ValueError) as error:
                    log.warning(
                        "cannot fetch the keys of issuer %s from its jwks_url: %s", shown_url(self._client.iss), error
                    )
        return self._fetched.get(kid)


# Records a (issuer, jti) until the given expiry; False when it was already recorded.
FirstUse = Callable[[str, str, datetime, datetime], Awaitable[bool]]


class Authenticator:
    def __init__(
        self,
        clients: dict[str, TrustedClient],
        *,
        first_use: FirstUse,
        http: Callable[[], Outbound],
        clock: Callable[[], float],
        leeway: float,
        audience: Audience,
    ) -> None:
        self._clients = clients
        self.audience = audience
        self.issuers = sorted(clients)
        self._keys = {iss: KeySet(client) for iss, client in clients.items()}
        self._first_use = first_use
        self._http = http
        self._clock = clock
        self._leeway = leeway

    async def authenticate(self, authorization: str | None, path: str) -> TrustedClient:
        """The trusted client that signed this call to ``path`` (on one of the configured public
        URLs), or ``Unauthorized`` with the reason."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("no Bearer token")
        token = token.strip()
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("token too long")
        try:
            # Decoded once: the signature is checked on these same parts (``_signed``).
            unverified = jws.parse(token)
        except jws.MalformedToken as error:
            raise Unauthorized(f"malformed token: {error}") from None
        header, claims = unverified.header, unverified.claims
        client, alg, kid = self._issuer(header, claims)
        now = self._clock()
        key = await self._keys[client.iss].key(kid, now=now, http=self._http())
        if key is None:
            raise Unauthorized(f"kid {shown(kid, LONGER_SHOWN_CHARS)} is not a key of issuer {shown_url(client.iss)}")
        kty, crv = ALGORITHMS[alg]
        if key.kty != kty or (crv and key.crv != crv) or (key.alg and key.alg != alg):
            raise Unauthorized(f"alg {alg} does not fit key {shown(kid, LONGER_SHOWN_CHARS)}")
        try:
            signed = _signed(unverified, alg, key.key)
        except jwt.PyJWTError as error:
            raise Unauthorized(f"signature: {error}") from None
        except (ValueError, TypeError, OverflowError, RecursionError) as error:
            raise Unauthorized(f"signature: unreadable ({type(error).__name__})") from None
        if not signed:
            raise Unauthorized("signature: Signature verification failed")  # as PyJWT says it
        # Time, audience and issuer are checked here, on this service's clock.
        expires_at = self._check_claims(claims, client, path, now)
        if not await self._first_use(client.iss, claims["jti"], _utc(expires_at), _utc(now)):
            raise Unauthorized(
                f"jti {shown(claims['jti'], LONGER_SHOWN_CHARS)} of issuer {shown_url(client.iss)} was already used"
            )
        return client

    def _issuer(self, header: dict[str, Any], unverified: dict[str, Any]) -> tuple[TrustedClient, str, str]:
        """The trusted client the unverified token names, with its alg and kid, each type-checked:
        a header is the caller's to write (a list for ``alg``, a number for ``typ``)."""
        alg, kid, iss, typ = header.get("alg"), header.get("kid"), unverified.get("iss"), header.get("typ", "JWT")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise Unauthorized(f"typ {shown(typ, LONGER_SHOWN_CHARS)} is not JWT")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise Unauthorized(f"alg {shown(alg, LONGER_SHOWN_CHARS)} is not allowed")
        if not isinstance(iss, str) or iss not in self._clients:
            raise Unauthorized(f"issuer {shown_url(iss)} is not trusted")
        client = self._clients[iss]
        jku = header.get("jku")
        if jku is not None and jku != client.jwks_url:
            raise Unauthorized(f"jku {shown_url(jku)} is not the key set configured for issuer {shown_url(iss)}")
        if not isinstance(kid, str):
            raise Unauthorized("no kid")
        return client, alg, kid

    def _check_claims(self, claims: dict[str, Any], client: TrustedClient, path: str, now: float) -> float:
        """Lifetime, audience, tenant and jti; returns until when the jti must be remembered."""
        exp, iat = _time(claims, "exp"), _time(claims, "iat")
        nbf = _time(claims, "nbf") if claims.get("nbf") is not None else None
        if exp + self._leeway < now:
            raise Unauthorized("token expired")
        if iat > now + self._leeway or (nbf is not None and nbf > now + self._leeway):
            raise Unauthorized("token not valid yet (iat or nbf in the future)")
        if exp - iat > MAX_LIFETIME_SECONDS:
            raise Unauthorized(f"token lifetime over {MAX_LIFETIME_SECONDS} s")
        if not self.audience.accepts(claims.get("aud"), path):
            raise Unauthorized(
                # Not the path itself: the caller's to fill (the log line names the route).
                f"aud {shown_url(claims.get('aud'))} is not the URL called (under {', '.join(self.audience.bases)})"
            )
        if client.tenant is not None and claims.get("tenant") != client.tenant:
            raise Unauthorized(f"tenant {shown(claims.get('tenant'), LONGER_SHOWN_CHARS)} is not the one configured")
        jti = claims.get("jti")
        # Printable only: the replay cache stores it, and PostgreSQL refuses NUL and lone surrogates.
        if not isinstance(jti, str) or not 0 < len(jti) <= 256 or not jti.isprintable():
            raise Unauthorized("claim jti is missing or not a printable string of at most 256 characters")
        return exp + self._leeway


_JWS = jwt.PyJWS()


def _signed(token: jws.Token, alg: str, key: Any) -> bool:
    """Does the token's signature sign its header and payload under ``key``? What ``jwt.decode``
    checks, on the parts already decoded: it would decode the token a second time, and a third
    to find the issuer's key (~0.07 ms a call, issue 17). The key's type and size were checked
    against ``alg`` before (``authenticate``, ``clients``)."""
    algorithm = _JWS.get_algorithm_by_name(alg)
    return algorithm.verify(token.signing_input, algorithm.prepare_key(key), token.signature)


def _time(claims: dict[str, Any], name: str) -> float:
    """A NumericDate claim as seconds; 10**400, NaN or a year past 9999 is refused, not a 500."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"claim {name} is missing or not a number")
    if not -LATEST_TIME <= value <= LATEST_TIME:  # False for NaN; no float conversion of a huge int
        raise Unauthorized(f"claim {name} is not a time (out of range)")
    return float(value)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
