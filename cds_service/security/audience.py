"""Where the service is reached: the ``aud`` a client token must carry, and the proxies trusted.

CDS Hooks 2.0 asks that a token's ``aud`` be the URL called. The service must not learn that
URL from the request: ``Host`` and ``X-Forwarded-*`` are chosen by whoever sends it, so a token
a trusted EHR signed for another deployment would pass when sent with that deployment's
``Host``. The operator names the base URLs instead (``CDS_PUBLIC_URL``); a token passes when its
``aud`` is one of them followed by the path called. With none named, only a service listening
on loopback has a safe answer (the loopback URLs of its own port); anywhere else start-up stops.

Proxy headers are honoured by the HTTP server only from the proxy addresses the operator names
(``CDS_TRUSTED_PROXIES``), and even then they never decide the audience.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

from cds_service.errors import shown, shown_url
from cds_service.security.allowlist import base_url, is_loopback
from cds_service.security.clients import TrustedClientsError


def _split(value: object) -> object:
    """A list from the environment: a JSON list, or URLs/addresses separated by commas or spaces."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part for part in text.replace(",", " ").split() if part]
    return value


def _public_urls(urls: list[str]) -> list[str]:
    """Each a plain http(s) base; https is the deployment's business (TLS ends at its proxy)."""
    for url in urls:
        try:
            base_url(url)
        except ValueError as error:
            raise ValueError(f"public URL {shown_url(url)} {error}") from None
    return urls


def _proxies(addresses: list[str]) -> list[str]:
    for address in addresses:
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise ValueError(f"trusted proxy {shown(address)} is not an IP address or network") from None
    return addresses


# CDS_PUBLIC_URL: base URLs up to, not including, ``/cds-services``.
PublicUrls = Annotated[list[str], NoDecode, BeforeValidator(_split), AfterValidator(_public_urls)]
# CDS_TRUSTED_PROXIES: IP addresses or networks of the reverse proxies in front of the service.
ProxyAddresses = Annotated[list[str], NoDecode, BeforeValidator(_split), AfterValidator(_proxies)]


class Audience:
    """The base URLs this deployment is reached at; a token's ``aud`` must be one of them plus the path."""

    def __init__(self, bases: Iterable[str]) -> None:
        self.bases = tuple(dict.fromkeys(base_url(base)[1] for base in bases))

    @classmethod
    def configured(cls, public_urls: list[str], *, host: str, port: int) -> Audience:
        """From ``CDS_PUBLIC_URL``; unset, the loopback URLs of ``port`` when the service listens on
        loopback only. Raises ``TrustedClientsError`` (start-up stops) for a service listening
        elsewhere with no public URL: no request header may stand in for it."""
        if public_urls:
            return cls(public_urls)
        if not is_loopback(host):
            raise TrustedClientsError(
                f"CDS_PUBLIC_URL is not set and the service listens on {host}, not loopback: name the "
                "base URL(s) clients call it at (e.g. CDS_PUBLIC_URL=https://cds.hospital.example.org), "
                "which a token's aud must name; request headers never decide it"
            )
        return cls(f"http://{name}:{port}" for name in ("localhost", "127.0.0.1", "[::1]"))

    def accepts(self, audiences: object, path: str) -> bool:
        """True when ``aud`` (a string or a list) names one of the bases followed by ``path``."""
        listed = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(listed, list):
            return False
        expected = {_canonical(base + path) for base in self.bases} - {None}
        return any(isinstance(aud, str) and _canonical(aud) in expected for aud in listed)


def _canonical(url: str) -> str | None:
    try:
        return base_url(url)[1]
    except ValueError:
        return None
