"""Which FHIR servers the service may call: its boundary against server-side request forgery.

A hook request names its own ``fhirServer``, so anyone who can call the service could point
it at a host inside the hospital network, with a bearer token to match. The service fetches
only from servers its operator listed for the calling client (``fhir_servers`` in the
trusted-clients file; with authentication off, ``CDS_FHIR_SERVERS``, none by default), and
only over https unless the server is on this machine. Servers on this machine are never on a
list by default: with authentication off, or with the sandbox's public key, anyone could
otherwise make the service probe its own ports.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

from cds_service.errors import shown_url

# The entry that stands for any server on this machine (http allowed), whatever its port.
LOOPBACK = "loopback"

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Both checks below are pure and asked on every hook call (the fhirServer, the token's aud, the
# bases it is compared with: ~40 µs of urllib and ipaddress a call, issue 17); a deployment sees
# a handful of URLs, and a caller sending new ones each time only churns this many.
KNOWN_URLS = 1024


@lru_cache(maxsize=KNOWN_URLS)
def is_loopback(host: str) -> bool:
    """By name or literal address only: a name is never resolved, so DNS cannot widen the list."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=KNOWN_URLS)
def base_url(url: str) -> tuple[str, str]:
    """(host, canonical base URL): lower-case scheme and host, no default port or trailing slash.

    Raises ``ValueError`` saying what is wrong, for URLs that are not a plain http(s) base.
    """
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    host = parts.hostname
    if not host:
        raise ValueError("has no host")
    try:
        port = parts.port
    except ValueError:  # its message repeats what stands in the port
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        netloc += f":{port}"
    return host, f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


class ServerAllowList:
    """FHIR server bases one client may send us to; built once from configuration."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.loopback = False
        bases: set[str] = set()
        for entry in entries:
            if entry == LOOPBACK:
                self.loopback = True
                continue
            try:
                host, base = base_url(entry)
            except ValueError as error:
                raise ValueError(f"FHIR server {shown_url(entry)} {error}") from None
            if base.startswith("http:") and not is_loopback(host):
                raise ValueError(f"FHIR server {shown_url(entry)} must use https (http is allowed only on loopback)")
            bases.add(base)
        self.bases = frozenset(bases)

    def refusal(self, url: str) -> str | None:
        """Why the service must not call ``url``, or None when it may."""
        try:
            host, base = base_url(url)
        except ValueError as error:
            return f"fhirServer {error}"
        loopback = is_loopback(host)
        if base.startswith("http:") and not loopback:
            return "fhirServer must use https"
        if base in self.bases or (loopback and self.loopback):
            return None
        return "fhirServer is not on this service's list of FHIR servers for the calling client"


def _checked(servers: list[str]) -> list[str]:
    ServerAllowList(servers)
    return servers


# A list of FHIR servers in settings or a trusted-client entry: each entry is checked on load.
FhirServers = Annotated[list[str], AfterValidator(_checked)]


def on_server(link: str, base: str) -> bool:
    """Is ``link`` (a search's ``next`` page, written by the server) under the FHIR base ``base``,
    as it will be sent and as the server will read it? Printable ASCII without spaces only (the
    client rewrites anything else before sending it); a path past the base of plain segments
    only: no ``.`` or ``..`` (the client removes them, so ``{base}/../admin`` would be ``/admin``,
    with the access token), no escapes (a server that decodes ``%2F`` or ``%252e`` before the dots
    climbs out) and no ``;`` (Tomcat and Jetty, HAPI FHIR's hosts, read ``..;`` as ``..``). A
    FHIR server's page links put their state in the query, which is left as written."""
    if not link.isascii() or not link.isprintable() or " " in link:
        return False
    if not link.startswith((base + "/", base + "?")):
        return False
    path = link[len(base) :].split("?", 1)[0].split("#", 1)[0]
    return _PLAIN_PATH.fullmatch(path) is not None and not any(s in (".", "..") for s in path.split("/"))


# Segments of letters, digits and "-._~" (RFC 3986's unreserved characters) and the slashes between.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~/]*")
