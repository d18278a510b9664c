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
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from cds_service.errors import Unauthorized
from cds_service.security.allowlist import LOOPBACK, FhirServers, ServerAllowList, base_url, is_loopback
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
MIN_RSA_BITS = 2048


class TrustedClientsError(ValueError):
    """The trusted-clients configuration is unusable; start-up stops with this message."""


@dataclass(frozen=True)
class VerifyingKey:
    kty: str
    crv: str | None
    alg: str | None
    key: Any


def _verifying_keys(jwks: dict[str, Any]) -> dict[str, VerifyingKey]:
    """Signature keys by kid; raises ValueError naming a key that cannot be used."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ValueError("a JWK Set needs a 'keys' list")
    found: dict[str, VerifyingKey] = {}
    for index, jwk in enumerate(keys):
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            raise ValueError(f"key {index} has no kid")
        kty, use = jwk.get("kty"), jwk.get("use", "sig")
        if kty not in ("EC", "RSA") or use != "sig":
            raise ValueError(f"key {jwk['kid']!r} is not an EC or RSA signature key")
        if "d" in jwk:
            raise ValueError(f"key {jwk['kid']!r} is a private key; trust the public key only")
        try:
            key = jwt.PyJWK(jwk).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as error:
            raise ValueError(f"key {jwk['kid']!r} cannot be read: {error}") from None
        if kty == "RSA" and key.key_size < MIN_RSA_BITS:
            raise ValueError(f"key {jwk['kid']!r} is an RSA key under {MIN_RSA_BITS} bits")
        found[jwk["kid"]] = VerifyingKey(kty, jwk.get("crv"), jwk.get("alg"), key)
    return found


class TrustedClient(BaseModel):
    """One EHR (token issuer) the operator trusts, and the FHIR servers it may send us to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    # Fetched when a kid is not in ``jwks``; also the only ``jku`` a token of this issuer may name.
    jwks_url: str | None = None
    # Keys held inline: nothing is fetched for them.
    jwks: dict[str, Any] | None = None
    fhir_servers: FhirServers = []
    # When set, the token's ``tenant`` claim must equal it.
    tenant: str | None = None

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        if value is not None:
            host, base = base_url(value)
            if base.startswith("http:") and not is_loopback(host):
                raise ValueError("must use https (http is allowed only on loopback)")
        return value

    @field_validator("jwks")
    @classmethod
    def _jwks(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _verifying_keys(value)
        return value

    @model_validator(mode="after")
    def _some_keys(self) -> TrustedClient:
        if self.jwks is None and self.jwks_url is None:
            raise ValueError("give the issuer's keys: jwks_url, jwks, or both")
        return self

    @cached_property
    def servers(self) -> ServerAllowList:
        return ServerAllowList(self.fhir_servers)


# The CDS Hooks sandbox (sandbox.cds-hooks.org). Its private key is published in its repository
# (cds-hooks/sandbox keys/ecprivkey.pem), so anyone can mint these tokens: trust it on a test
# deployment only (CDS_TRUST_SANDBOX). Public key copied from the sandbox's
# https://sandbox.cds-hooks.org/.well-known/jwks.json (see ../shared/fixtures/sandbox-jwks-public.json);
# FHIR servers: the sandbox's SMART launcher servers (cds-hooks/sandbox
# src/reducers/fhir-server-reducers.js and README) and any on this machine.
SANDBOX = TrustedClient(
    iss="https://sandbox.cds-hooks.org",
    jwks_url="https://sandbox.cds-hooks.org/.well-known/jwks.json",
    jwks={
        "keys": [
            {
                "kty": "EC",
                "use": "sig",
                "crv": "P-384",
                "kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f",
                "x": "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB",
                "y": "Sm3mLE-n1zYNla_aiE3cb3nZsL51RbC7ysw3q8aJLxGm-hx79RPMYpITDjp7kgzy",
                "alg": "ES384",
            }
        ]
    },
    fhir_servers=[
        "https://launch.smarthealthit.org/v/r2/fhir",
        "https://launch.smarthealthit.org/v/r3/fhir",
        "https://launch.smarthealthit.org/v/r4/fhir",
        LOOPBACK,
    ],
)


def load_trusted_clients(path: Path | None, *, trust_sandbox: bool) -> dict[str, TrustedClient]:
    """Trusted clients by issuer, from the JSON list in ``path`` (and the sandbox when asked)."""
    clients: list[TrustedClient] = []
    if path is not None:
        try:
            raw = json.loads(path.read_text())
        except OSError as error:
            raise TrustedClientsError(f"CDS_TRUSTED_CLIENTS_FILE: cannot read {path}: {error.strerror}") from None
        except ValueError as error:
            raise TrustedClientsError(f"CDS_TRUSTED_CLIENTS_FILE: {path} is not JSON: {error}") from None
        try:
            clients = TypeAdapter(list[TrustedClient]).validate_python(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in error.errors(include_url=False, include_input=False)
            )
            raise TrustedClientsError(f"CDS_TRUSTED_CLIENTS_FILE {path}: {problems}") from None
    if trust_sandbox:
        clients.append(SANDBOX)
    by_issuer: dict[str, TrustedClient] = {}
    for client in clients:
        if client.iss in by_issuer:
            raise TrustedClientsError(f"trusted clients: issuer {client.iss!r} is listed twice")
        by_issuer[client.iss] = client
    return by_issuer


def _location(loc: tuple[int | str, ...]) -> str:
    """``[0].jwks_url`` for the first client's jwks_url: which entry, then which field."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "file"


class KeySet:
    """One issuer's verifying keys: inline ones, and those fetched from its ``jwks_url``."""

    def __init__(self, client: TrustedClient) -> None:
        self._client = client
        self._inline = _verifying_keys(client.jwks) if client.jwks else {}
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
                    self._fetched = _verifying_keys(jwks)
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
