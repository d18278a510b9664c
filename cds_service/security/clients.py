"""The clients an operator trusts (the trusted-clients file): issuers, their keys, and the
FHIR servers each may send the service to. Loaded and checked once at start-up; a problem
stops start-up with the file and entry named."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from cds_service.errors import shown_url
from cds_service.security.allowlist import FhirServers, ServerAllowList, base_url, is_loopback

MIN_RSA_BITS = 2048


class TrustedClientsError(ValueError):
    """The trusted-clients configuration is unusable; start-up stops with this message."""


@dataclass(frozen=True)
class VerifyingKey:
    kty: str
    crv: str | None
    alg: str | None
    key: Any


def verifying_keys(jwks: dict[str, Any]) -> dict[str, VerifyingKey]:
    """Signature keys by kid, every key usable (an operator's own file: one that is not is a
    mistake to mend); raises ValueError naming the first that cannot be used."""
    found, refused = read_keys(jwks)
    if refused:
        raise ValueError(refused[0])
    return found


def read_keys(jwks: dict[str, Any]) -> tuple[dict[str, VerifyingKey], list[str]]:
    """The signature keys by kid, and why each other key cannot be used. A key set an issuer
    publishes may hold encryption keys and types this service does not read beside its signing
    keys (RFC 7517 lets a reader pass them by): they cost the issuer none of its usable keys."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ValueError("a JWK Set needs a 'keys' list")
    found: dict[str, VerifyingKey] = {}
    refused: list[str] = []
    for index, jwk in enumerate(keys):
        try:
            kid, key = _verifying_key(index, jwk)
        except ValueError as error:
            refused.append(str(error))
        else:
            found[kid] = key
    return found, refused


# A JWK's private members (RFC 7518 §6.2.2, §6.3.2, §6.4.1): refused before any library reads them.
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _verifying_key(index: int, jwk: Any) -> tuple[str, VerifyingKey]:
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
        raise ValueError(f"key {index} has no kid")
    kty, use = jwk.get("kty"), jwk.get("use", "sig")
    if kty not in ("EC", "RSA") or use != "sig":
        raise ValueError(f"key {jwk['kid']!r} is not an EC or RSA signature key")
    if _PRIVATE.intersection(jwk):
        raise ValueError(f"key {jwk['kid']!r} is a private key; trust the public key only")
    try:
        key = jwt.PyJWK(jwk).key
    # NotImplementedError: PyJWT's answer to an "alg" it has no verifier for ("none"). Its class
    # only: some of PyJWT's messages repeat the whole key, which is then logged on every fetch.
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, NotImplementedError) as error:
        raise ValueError(f"key {jwk['kid']!r} cannot be read ({type(error).__name__})") from None
    if kty == "RSA" and key.key_size < MIN_RSA_BITS:
        raise ValueError(f"key {jwk['kid']!r} is an RSA key under {MIN_RSA_BITS} bits")
    return jwk["kid"], VerifyingKey(kty, jwk.get("crv"), jwk.get("alg"), key)


class TrustedClient(BaseModel):
    """One EHR (token issuer) the operator trusts, and the FHIR servers it may send us to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # At most what the replay check stores (storage/schema.py, seen_tokens.issuer): a longer one
    # would fail every token's write on PostgreSQL, so it is refused at start-up instead.
    iss: str = Field(min_length=1, max_length=500)
    # Fetched when a kid is not in ``jwks``; also the only ``jku`` a token of this issuer may name.
    jwks_url: str | None = None
    # Keys held inline: nothing is fetched for them.
    jwks: dict[str, Any] | None = None
    fhir_servers: FhirServers = []
    # When set, the token's ``tenant`` claim must equal it.
    tenant: str | None = None
    # An operator's client (a hospital's informatics team) reads analytics of every client's
    # cards; any other client, its own issuer's and tenant's only. Never the sandbox.
    operator: bool = False

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
            verifying_keys(value)
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
# https://sandbox.cds-hooks.org/.well-known/jwks.json;
# FHIR servers: the sandbox's SMART launcher servers only (cds-hooks/sandbox
# src/reducers/fhir-server-reducers.js and README). Whoever holds the key could otherwise send the
# service to any port of its own machine; a local FHIR server is added by configuration
# (CDS_FHIR_SERVERS), never by default.
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
    ],
)


def load_trusted_clients(
    path: Path | None, *, trust_sandbox: bool, sandbox_fhir_servers: list[str] | None = None
) -> dict[str, TrustedClient]:
    """Trusted clients by issuer, from the JSON list in ``path`` (and the sandbox when asked, with
    ``sandbox_fhir_servers`` beside its SMART launcher servers)."""
    clients: list[TrustedClient] = []
    if path is not None:
        try:
            raw = json.loads(path.read_bytes())  # JSON's own encodings; a wrong one is a ValueError
        except OSError as error:
            raise TrustedClientsError(f"CDS_TRUSTED_CLIENTS_FILE: cannot read {path}: {error.strerror}") from None
        except ValueError as error:
            raise TrustedClientsError(f"CDS_TRUSTED_CLIENTS_FILE: {path} is not JSON: {error}") from None
        except RecursionError:  # the standard parser's limit: a file no operator wrote
            raise TrustedClientsError(f"CDS_TRUSTED_CLIENTS_FILE: {path} is nested too deep") from None
        try:
            clients = TypeAdapter(list[TrustedClient]).validate_python(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in error.errors(include_url=False, include_input=False)
            )
            raise TrustedClientsError(f"CDS_TRUSTED_CLIENTS_FILE {path}: {problems}") from None
    if trust_sandbox:
        extra = [server for server in sandbox_fhir_servers or () if server not in SANDBOX.fhir_servers]
        sandbox = SANDBOX.model_dump(exclude={"fhir_servers"})  # a new model: no cached allow-list
        clients.append(TrustedClient(**sandbox, fhir_servers=[*SANDBOX.fhir_servers, *extra]))
    by_issuer: dict[str, TrustedClient] = {}
    for client in clients:
        if client.iss in by_issuer:
            raise TrustedClientsError(f"trusted clients: issuer {shown_url(client.iss)} is listed twice")
        by_issuer[client.iss] = client
    return by_issuer


def required_clients(
    path: Path | None, *, trust_sandbox: bool, sandbox_fhir_servers: list[str] | None = None
) -> dict[str, TrustedClient]:
    """``load_trusted_clients`` where authentication is required: none is a ``TrustedClientsError``,
    since a service that would answer every caller 401 is a configuration that cannot work."""
    clients = load_trusted_clients(path, trust_sandbox=trust_sandbox, sandbox_fhir_servers=sandbox_fhir_servers)
    if not clients:
        raise TrustedClientsError(
            "CDS_AUTH_MODE is required but no client is trusted: set CDS_TRUSTED_CLIENTS_FILE "
            "(or, on a test deployment, CDS_TRUST_SANDBOX=true), or CDS_AUTH_MODE=off on a developer's machine"
        )
    return clients


def _location(loc: tuple[int | str, ...]) -> str:
    """``[0].jwks_url`` for the first client's jwks_url: which entry, then which field."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "file"
