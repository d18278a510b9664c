"""The service's errors, each mapped to one HTTP status in one place (``app.py``).

    CdsError
    ├── InvalidRequest        400  the body is not a usable CDS Hooks request
    │   └── InvalidFeedback   400  the body is not a usable feedback request
    ├── Unauthorized          401  the caller did not prove it is a trusted client
    ├── UnknownService        404  no service has that id
    ├── DataUnavailable       412  patient data the rules need is neither prefetched nor fetchable
    ├── TooLarge              413  the body, or the number of entries in it, is over the limit
    ├── UnsupportedMediaType  415  the body is not declared as JSON
    └── StorageUnavailable    503  the database is out of reach: ask again after Retry-After

Messages name the offending field, so an integrator can fix the request without reading
our code; they never contain tokens or patient data. ``Unauthorized`` is the exception: its
reason goes to the log only, and the caller learns nothing an attacker could use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

# How much of a caller's value an error message repeats: enough to recognise it, never a whole
# body's worth of it (a 100 kB hook name was a 100 kB answer); a log line and a URL, more.
SHOWN_CHARS = 40
LONGER_SHOWN_CHARS = 80
# What stands before a URL's user and password, however mistyped ("https:/", "//", none at all).
_URL_START = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:[/\\]+|[/\\]+)?")


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A caller-chosen value as a message may repeat it: its ``repr`` (quotes and control
    characters escaped, so it can forge no log line), cut short; the type alone when even
    ``repr`` cannot take it."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested past Python's limit; an int past 4,300 digits
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "…"


def shown_url(value: object) -> str:
    """A URL as a message may repeat it (an error printed, a log line): everything before its
    last ``@`` short of a query masked, the user and password however the URL is mistyped (no
    scheme, a ``/`` unencoded in the password). A token's claim or header said to be a URL
    (``iss``, ``jku``, ``aud``) may be anything: each string of it is masked (``aud`` may be a
    list), the rest shown as it is."""
    if isinstance(value, list):
        value = [_masked(item) if isinstance(item, str) else item for item in value]
    elif isinstance(value, str):
        value = _masked(value)
    return shown(value, LONGER_SHOWN_CHARS)


def _masked(url: str) -> str:
    end = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    at = url.rfind("@", 0, end)
    if at >= 0:
        start = _URL_START.match(url).end()  # type: ignore[union-attr]  # it matches the empty string
        url = url[:start] + "***" + url[max(at, start) :]
    return url


class CdsError(Exception):
    status_code = 500
    issue_code = "exception"

    def __init__(self, message: str, *, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.fields = tuple(fields)


class InvalidRequest(CdsError):
    status_code = 400
    issue_code = "invalid"


class InvalidFeedback(InvalidRequest):
    pass


class Unauthorized(CdsError):
    status_code = 401
    issue_code = "login"
    # The one message every authentication failure answers with.
    public_message = "authentication failed: a valid CDS Hooks client JWT is required"

    def __init__(self, reason: str) -> None:
        super().__init__(self.public_message)
        self.reason = reason


class UnknownService(CdsError):
    status_code = 404
    issue_code = "not-found"


class DataUnavailable(CdsError):
    status_code = 412
    issue_code = "incomplete"


class TooLarge(CdsError):
    status_code = 413
    issue_code = "too-costly"


class UnsupportedMediaType(CdsError):
    status_code = 415
    issue_code = "not-supported"


class StorageUnavailable(CdsError):
    status_code = 503
    issue_code = "transient"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        # Why the database is out of reach (``DatabaseUnavailable``'s word): for the log and the
        # readiness probe, not the client, whose message says what to do.
        self.reason = reason


def operation_outcome(message: str, *, issue_code: str, fields: Sequence[str] = ()) -> dict:
    """The FHIR OperationOutcome every error response carries (CDS Hooks 3.0 asks for one)."""
    issue: dict = {"severity": "error", "code": issue_code, "diagnostics": message}
    if fields:
        issue["expression"] = list(fields)
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def describe(error: ValidationError | list[dict[str, Any]], *, prefix: str = "") -> tuple[str, list[str]]:
    """One readable message naming each bad field, and the field paths themselves: the one
    place validation errors (pydantic's, FastAPI's) become what an OperationOutcome says."""
    items = error.errors(include_url=False, include_input=False) if isinstance(error, ValidationError) else error
    fields: list[str] = []
    parts: list[str] = []
    for item in items[:_MOST_NAMED]:
        path = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        message = item["msg"].removeprefix("Value error, ")
        fields.append(path or "body")
        parts.append(f"{path}: {message}" if path else message)
    if len(items) > _MOST_NAMED:
        parts.append(f"and {len(items) - _MOST_NAMED} more")
    return "; ".join(parts), fields


# A message names the first errors: 1,000 bad feedback items made a 4 MB answer of 53,000 fields,
# written on the event loop (a performance review). The client fixes these and is told the rest.
_MOST_NAMED = 20
