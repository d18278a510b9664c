"""Every outbound HTTP call the service makes: EHR FHIR servers and trusted clients' key sets.

Both are addressed by URLs that arrive from outside, so each call is a GET with no redirects
(a redirect could leave the allow-listed host) and a bounded response: a misbehaving server
can cost us at most ``max_bytes`` of memory and the caller's deadline in time.

The client is aiohttp's (httpx until issue 17): a GET cost ~0.9–1.7 ms of CPU through httpx and
its connection pool, 0.1–0.55 ms through aiohttp (docs/performance-log.md, sixth pass).
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import aiohttp
import certifi
import orjson
from pydantic import AfterValidator, SecretStr

from cds_service import __version__
from cds_service.fhir.json import too_deep
from cds_service.security.allowlist import is_loopback

log = logging.getLogger(__name__)

# Proxy settings of the environment, which this client does not read (``open_client``).
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _proxy_url(value: SecretStr) -> SecretStr:
    """A forward proxy's address, read once from configuration (``CDS_OUTBOUND_PROXY``), checked
    as the client will use it, so that a value accepted here works on every call. Secret, and
    never repeated in a message: it may hold the proxy's password."""
    try:
        url = urlsplit(value.get_secret_value())
        host, port = url.hostname, url.port  # ``port`` refuses one that is not a number
    except ValueError:
        raise ValueError("is not a URL (percent-encode any of @ : / ? # % in user:password@)") from None
    if url.scheme.lower() not in ("http", "https") or not host or not port or url.path not in ("", "/"):
        raise ValueError("must be http://host:port or https://host:port (port 1-65535), user:password@ allowed")
    if url.query or url.fragment:
        raise ValueError("must end at the port (percent-encode any of / ? # in user:password@)")
    try:
        _proxy(value)
    except ValueError:  # a ":" in the user, which Basic authentication cannot carry
        raise ValueError("the user of user:password@ cannot hold a ':'") from None
    return value


def _proxy(value: SecretStr) -> tuple[str, dict[str, str] | None]:
    """The proxy's URL without its credentials, and the header that carries them. The client
    never holds the password in a URL, so no error or log line of aiohttp's can show it."""
    url = urlsplit(value.get_secret_value())
    address = f"{url.scheme.lower()}://{url.netloc.rpartition('@')[2]}"
    if url.username is None:
        return address, None
    login, password = unquote(url.username), unquote(url.password or "")
    return address, {"Proxy-Authorization": aiohttp.encode_basic_auth(login, password)}  # UTF-8 (RFC 7617)


ProxyUrl = Annotated[SecretStr, AfterValidator(_proxy_url)]

# How much of a 400 or 404 answer is read for its OperationOutcome (which says, for instance,
# that the server has no such resource type).
OUTCOME_BYTES = 64 * 1024


class OutboundError(Exception):
    """The call failed; the message says how, without the URL's query or any header.

    ``status`` is the HTTP status when the server answered (200 for an answer too large or not
    JSON object), None when it did not (refused, timed out); ``outcome`` the OperationOutcome
    of a 400 or 404 answer, when it sent one (small enough to read)."""

    def __init__(self, message: str, *, status: int | None = None, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


@dataclass(eq=False)
class Outbound:
    """The process's one outbound client: aiohttp's session, and the forward proxy (if any)."""

    session: aiohttp.ClientSession
    proxy: str | None = None
    proxy_headers: dict[str, str] | None = None

    def route(self, url: str) -> dict[str, Any]:
        """aiohttp's proxy arguments for a GET of ``url``. A server on this machine is never
        reached through the proxy: there, "localhost" would be the proxy's own host (its admin
        pages), and the plain-http request allowed on loopback, token and all, would cross the
        network. Every other server is https (the allow-lists): a tunnel, the credentials in
        its ``CONNECT`` alone."""
        if self.proxy is None or is_loopback(urlsplit(url).hostname or ""):
            return {}
        return {"proxy": self.proxy, "proxy_headers": self.proxy_headers}


@asynccontextmanager
async def open_client(deadline: float, proxy: SecretStr | None = None) -> AsyncIterator[Outbound]:
    """The process's one outbound client (opened in the app's lifespan, in its event loop); no
    request of it lasts longer than ``deadline`` seconds.

    No cookies are kept: a FHIR server's session cookie, set for one call's access token, would
    otherwise go out with the next call's. The environment is not read for each request
    (``trust_env``: a proxy and a ``.netrc`` looked up in a thread, twice a GET); connections
    go straight to the allow-listed servers, or through ``proxy`` to those not on this machine
    (https ones tunnelled, the server's certificate checked end to end; ``user:password@``
    sent to the proxy only)."""
    ignored = sorted(name for name in PROXY_VARIABLES if os.environ.get(name))
    address, proxy_headers = _proxy(proxy) if proxy is not None else (None, None)
    if address is not None:
        log.info("FHIR servers and key sets are reached through the proxy at %s", address)
    elif ignored:  # httpx, the client before, used them: say so at start-up, not in a timeout later
        log.warning(
            "%s set but not used: FHIR servers and key sets are reached directly (CDS_OUTBOUND_PROXY names a proxy)",
            ", ".join(ignored),
        )
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=tls_context()),
        # ``total`` too: a server that sends a byte a second never trips a read timeout, and a
        # key-set fetch (which holds its issuer's lock) has no other bound.
        timeout=aiohttp.ClientTimeout(total=deadline, connect=deadline, sock_read=deadline),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        # Who calls, for the FHIR server's and key-set host's operators (not Python's and aiohttp's versions).
        headers={"User-Agent": f"cds-service/{__version__}"},
    ) as session:
        yield Outbound(session, address, proxy_headers)


@cache
def tls_context() -> ssl.SSLContext:
    """The CA certificates a FHIR server's or key set's certificate must chain to: those of
    ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set (a hospital's own CA), else certifi's, as
    httpx chose them. Loaded once a process (25 ms).

    ``SSLKEYLOGFILE``, which Python's default context obeys, is not: it would have every
    connection's secrets written to that file (a debugging aid some images set), enough to read
    the EHR's tokens and the patients' histories off the wire. (Python writes the file's first
    line, no secret, as a default context is made: this one, and the one aiohttp makes when it is
    imported and the service never uses.)"""
    if os.environ.get("SSL_CERT_FILE"):
        context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    elif os.environ.get("SSL_CERT_DIR"):
        context = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    context.keylog_filename = None  # type: ignore[assignment]  # typeshed's str only; None turns it off
    return context


async def _outcome(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > OUTCOME_BYTES:
            return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome" and not too_deep(value):
        return value
    return None


async def get_json(http: Outbound, url: str, *, headers: dict[str, str], max_bytes: int) -> dict[str, Any]:
    # A header carries printable ASCII only (a line break would start a header of the caller's
    # choosing); aiohttp would send an access token of other characters as UTF-8.
    if not all(value.isascii() and value.isprintable() for value in headers.values()):
        raise OutboundError("a request header (the access token?) is not printable ASCII: not sent")
    try:
        async with http.session.get(url, headers=headers, allow_redirects=False, **http.route(url)) as response:
            if response.status != 200:
                status = response.status
                outcome = await _outcome(response) if status in (400, 404) else None
                raise OutboundError(f"HTTP {status}", status=status, outcome=outcome)
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise OutboundError(f"response of {declared} bytes is over the {max_bytes}-byte limit", status=200)
            body = bytearray()
            async for chunk in response.content.iter_any():
                body += chunk
                if len(body) > max_bytes:
                    raise OutboundError(f"response is over the {max_bytes}-byte limit", status=200)
    # Only the type's name: a URL in an error's message may hold a patient's id.
    # ValueError: what aiohttp raises for a URL or header it cannot send.
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:  # its timeouts are both
        raise OutboundError(type(error).__name__) from None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise OutboundError("response is not JSON", status=200) from None
    if not isinstance(value, dict):
        raise OutboundError("response is not a JSON object", status=200)
    if too_deep(value):
        raise OutboundError("response nests too deep to be FHIR", status=200)
    return value
