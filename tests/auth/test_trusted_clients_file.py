"""The trusted-clients file is read strictly: an entry the service would not apply as written
stops start-up, naming it, rather than being passed over (issue 17's mutation audit)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cds_service.security.clients import TrustedClientsError, load_trusted_clients
from tests.tokens import ISSUER, SigningKey, jwks


def test_a_misspelt_field_stops_start_up_naming_it(trust: Callable[..., Path], es384: SigningKey) -> None:
    """``tennant`` for ``tenant``: ignored, every campus's token of this issuer would pass."""
    path = trust({"iss": ISSUER, "jwks": jwks(es384), "tennant": "north-campus"})
    with pytest.raises(TrustedClientsError, match=r"\[0\]\.tennant: Extra inputs are not permitted"):
        load_trusted_clients(path, trust_sandbox=False)


def test_a_private_ec_key_stops_start_up(trust: Callable[..., Path], es384: SigningKey) -> None:
    """An EC key with its ``d``: the operator pasted the EHR's private key, which must not sit in
    this service's configuration (and would be what verifies)."""
    private = {**es384.jwk(), "d": "AQAB"}
    with pytest.raises(TrustedClientsError, match=r"is a private key; trust the public key only"):
        load_trusted_clients(trust({"iss": ISSUER, "jwks": {"keys": [private]}}), trust_sandbox=False)
