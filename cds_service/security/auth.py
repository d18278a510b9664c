"""Who may call the service: CDS Hooks 2.0 §Trusting CDS Clients.

Every call carries ``Authorization: Bearer <JWT>`` signed by the EHR. A call is let in only
when the token's issuer is one the operator trusts (the trusted-clients file), the key named
by ``kid`` is in that issuer's key set (held inline, or fetched from its configured URL, which
is also the only ``jku`` accepted), the algorithm is asymmetric, the signature verifies, the
token is addressed to the very URL called, is within its lifetime, and its ``jti`` has not
been seen before. Any failure is one bare 401; the reason goes to the log, never the caller.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

from cds_service.errors import Unauthorized
from cds_service.security.allowlist import base_url
from cds_service.security.clients import TrustedClient, VerifyingKey, verifying_keys
from cds_service.security.outbound import OutboundError, get_json

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


class KeySet:
    """One issuer's verifying keys: inline ones, and those fetched from its ``jwks_url``."""

    def __init__(self, client: TrustedClient) -> None:
        self._client = client
        self._inline = verifying_keys(client.jwks) if client.jwks else {}
        self._fetched: dict[str, VerifyingKey] = {}
        self._fetched_at = -math.inf
        self._tried_at = -math.inf
        self._lock = asyncio.Lock()

    async def key(self, kid: str, *, now: float, http: httpx.AsyncClient) -> VerifyingKey | None:
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
                    self._fetched = verifying_keys(jwks)
                    self._fetched_at = now
                    log.info("fetched %d key(s) of issuer %r", len(self._fetched), self._client.iss)
                except (OutboundError, ValueError) as error:
                    log.warning("cannot fetch the keys of issuer %r from its jwks_url: %s", self._client.iss, error)
        return self._fetched.get(kid)


# Records a (issuer, jti) until the given expiry; False when it was already recorded.
FirstUse = Callable[[str, str, datetime, datetime], Awaitable[bool]]


class Authenticator:
    def __init__(
        self,
        clients: dict[str, TrustedClient],
        *,
        first_use: FirstUse,
        http: Callable[[], httpx.AsyncClient],
        clock: Callable[[], float],
        leeway: float,
    ) -> None:
        self._clients = clients
        self.issuers = sorted(clients)
        self._keys = {iss: KeySet(client) for iss, client in clients.items()}
        self._first_use = first_use
        self._http = http
        self._clock = clock
        self._leeway = leeway

    async def authenticate(self, authorization: str | None, url: str) -> TrustedClient:
        """The trusted client that signed this call to ``url``, or ``Unauthorized`` with the reason."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("no Bearer token")
        token = token.strip()
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("token too long")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise Unauthorized(f"malformed token: {error}") from None
        alg, kid, iss = header.get("alg"), header.get("kid"), unverified.get("iss")
        if header.get("typ", "JWT").upper() != "JWT":
            raise Unauthorized(f"typ {header.get('typ')!r} is not JWT")
        if alg not in ALGORITHMS:
            raise Unauthorized(f"alg {alg!r} is not allowed")
        if not isinstance(iss, str) or iss not in self._clients:
            raise Unauthorized(f"issuer {iss!r} is not trusted")
        client = self._clients[iss]
        jku = header.get("jku")
        if jku is not None and jku != client.jwks_url:
            raise Unauthorized(f"jku {jku!r} is not the key set configured for issuer {iss!r}")
        if not isinstance(kid, str):
            raise Unauthorized("no kid")
        now = self._clock()
        key = await self._keys[iss].key(kid, now=now, http=self._http())
        if key is None:
            raise Unauthorized(f"kid {kid!r} is not a key of issuer {iss!r}")
        kty, crv = ALGORITHMS[alg]
        if key.kty != kty or (crv and key.crv != crv) or (key.alg and key.alg != alg):
            raise Unauthorized(f"alg {alg} does not fit key {kid!r}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                # Time, audience and issuer are checked below, on this service's clock.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(f"signature: {error}") from None
        expires_at = self._check_claims(claims, client, url, now)
        if not await self._first_use(iss, claims["jti"], _utc(expires_at), _utc(now)):
            raise Unauthorized(f"jti {claims['jti']!r} of issuer {iss!r} was already used")
        return client

    def _check_claims(self, claims: dict[str, Any], client: TrustedClient, url: str, now: float) -> float:
        """Lifetime, audience, tenant and jti; returns until when the jti must be remembered."""
        exp, iat = _time(claims, "exp"), _time(claims, "iat")
        nbf = _time(claims, "nbf") if claims.get("nbf") is not None else None
        if exp + self._leeway < now:
            raise Unauthorized("token expired")
        if iat > now + self._leeway or (nbf is not None and nbf > now + self._leeway):
            raise Unauthorized("token not valid yet (iat or nbf in the future)")
        if exp - iat > MAX_LIFETIME_SECONDS:
            raise Unauthorized(f"token lifetime over {MAX_LIFETIME_SECONDS} s")
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or not any(_same_url(a, url) for a in audiences):
            raise Unauthorized(f"aud {claims.get('aud')!r} is not the URL called ({url})")
        if client.tenant is not None and claims.get("tenant") != client.tenant:
            raise Unauthorized(f"tenant {claims.get('tenant')!r} is not the one configured")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise Unauthorized("claim jti is missing or not a string of at most 256 characters")
        return exp + self._leeway


def _time(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Unauthorized(f"claim {name} is missing or not a number")
    return float(value)


def _same_url(audience: object, url: str) -> bool:
    if not isinstance(audience, str):
        return False
    try:
        return base_url(audience)[1] == base_url(url)[1]
    except ValueError:
        return False


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
