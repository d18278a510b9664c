"""The one place errors become HTTP responses: every error body is a FHIR OperationOutcome
naming the offending field (``errors.describe`` formats validation errors for all of them)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service.errors import CdsError, StorageUnavailable, Unauthorized, describe, operation_outcome
from cds_service.storage.availability import RETRY_AFTER_SECONDS

log = logging.getLogger(__name__)


def _error(status: int, message: str, issue_code: str, fields: tuple[str, ...] | list[str] = ()) -> JSONResponse:
    return JSONResponse(operation_outcome(message, issue_code=issue_code, fields=fields), status_code=status)


async def _cds_error(request: Request, error: CdsError) -> JSONResponse:
    response = _error(error.status_code, error.message, error.issue_code, error.fields)
    if isinstance(error, Unauthorized):
        # The route's template, as the access line names it: a path is the caller's to fill with anything.
        route = getattr(request.scope.get("route"), "path", "an unmatched path")
        log.warning("401 for %s %s: %s", request.method, route, error.reason)
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, StorageUnavailable):
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
    message, fields = describe(list(error.errors()))
    return _error(400, message, "invalid", fields)


async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
    code = "not-found" if error.status_code == 404 else "not-supported"
    response = _error(error.status_code, str(error.detail), code)
    response.headers.update(error.headers or {})  # a 405's Allow (RFC 9110 requires it)
    return response


async def _unexpected(_: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error")
    return _error(500, "internal error; the service log has the details", "exception")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CdsError, _cds_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
