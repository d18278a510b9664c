"""The service's errors, each mapped to one HTTP status in one place (``api.py``).

    CdsError
    ├── InvalidRequest       400  the body is not a usable CDS Hooks request
    │   └── InvalidFeedback  400  the body is not a usable feedback request
    ├── UnknownService       404  no service has that id
    └── DataUnavailable      412  patient data the rules need is neither prefetched nor fetchable

Messages name the offending field, so an integrator can fix the request without reading
our code; they never contain tokens or patient data.
"""

from __future__ import annotations

from collections.abc import Sequence


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


class UnknownService(CdsError):
    status_code = 404
    issue_code = "not-found"


class DataUnavailable(CdsError):
    status_code = 412
    issue_code = "incomplete"


def operation_outcome(message: str, *, issue_code: str, fields: Sequence[str] = ()) -> dict:
    """The FHIR OperationOutcome every error response carries (CDS Hooks 3.0 asks for one)."""
    issue: dict = {"severity": "error", "code": issue_code, "diagnostics": message}
    if fields:
        issue["expression"] = list(fields)
    return {"resourceType": "OperationOutcome", "issue": [issue]}
