"""The service's front door, the app's outermost layer: CORS, and a path no route may take.

One plain ASGI layer for both (each layer is a frame of every hook call, issue 17):

- a path whose bytes as sent hold an encoded slash or backslash (``%2F``, ``%5C``) is a 404
  before routing. Starlette routes the decoded path, so ``/cds-services/<id>%2ffeedback``
  reached the feedback route, past a proxy's rule on the path as written (docs/security.md);
- Starlette's CORS, with Private Network Access granted only by a preflight that passes: its
  own sent ``Access-Control-Allow-Private-Network: true`` in the 400 to an origin it refused.
"""

from __future__ import annotations

import logging

import orjson
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cds_service.errors import operation_outcome

log = logging.getLogger(__name__)

ENCODED_SEPARATOR = (
    "the path holds an encoded slash or backslash (%2F or %5C): no route of this service has one; "
    "write the path's separators as /"
)
_REFUSED = orjson.dumps(operation_outcome(ENCODED_SEPARATOR, issue_code="not-found"))
_PRIVATE_NETWORK = "Access-Control-Allow-Private-Network"


def has_encoded_separator(raw_path: bytes) -> bool:
    """Whether a path as sent holds ``%2F`` or ``%5C`` (either case), its query left aside. A
    path without ``%``, nearly every call's, costs one search of its bytes."""
    if b"%" not in raw_path:
        return False
    path = raw_path.split(b"?", 1)[0].lower()
    return b"%2f" in path or b"%5c" in path


class Front(CORSMiddleware):
    """``CORSMiddleware`` as configured, behind the check of the path as sent."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # ``raw_path`` is optional in ASGI (uvicorn always sets it). A server that leaves it out
        # gets no check: its decoded ``path`` cannot tell ``%2F`` from ``/``, and is routed as is.
        if scope["type"] == "http" and has_encoded_separator(scope.get("raw_path") or b""):
            log.info("404 for %s on a path with an encoded slash or backslash", scope["method"])
            await Response(_REFUSED, status_code=404, media_type="application/json")(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        """A refused preflight (origin, method or headers) grants no Private Network Access."""
        response = super().preflight_response(request_headers)
        if response.status_code != 200:
            del response.headers[_PRIVATE_NETWORK]
        return response
