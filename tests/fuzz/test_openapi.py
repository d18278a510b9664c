"""Schemathesis, from the service's own OpenAPI document: schema-valid and schema-violating
requests, with authentication off and required."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from schemathesis import GenerationMode

from tests.conftest import NOON
from tests.fuzz.conftest import (
    FUZZ,
    KEY,
    SECURE_APP,
    fuzz_app,
    secure_app,
)
from tests.tokens import claims

# The one bound of feedback its schema cannot state: an outcomeTimestamp no more than 5 minutes
# after the service's clock (its description says so). Feedback is fuzzed on a clock reading the
# last minutes of the years the schema allows, where a time it allows is one the service takes.
LAST_MINUTES = datetime(2999, 12, 31, 23, 55, tzinfo=UTC).timestamp()


def _operations(app: Any, feedback_app: Any) -> list[Any]:
    """Each operation, feedback's from ``feedback_app`` (on the clock ``LAST_MINUTES``)."""
    operations = []
    for source in (app, feedback_app):
        schema = schemathesis.openapi.from_asgi("/openapi.json", source)
        found = [result.ok() for result in schema.get_all_operations()]
        operations += [op for op in found if op.path.endswith("/feedback") == (source is feedback_app)]
    return operations


OPEN_APP = fuzz_app()
OPEN_FEEDBACK_APP = fuzz_app(LAST_MINUTES)


def _run(operation: Any, mode: GenerationMode, sign: Callable[[Any], None] | None = None) -> list[int]:
    statuses: list[int] = []

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        if sign is not None:
            sign(case)
        statuses.append(case.call_and_validate().status_code)

    check()
    return statuses


@pytest.mark.parametrize(
    ("operation", "mode"),
    [
        pytest.param(operation, mode, id=f"{operation.label} {mode.value}")
        for operation in _operations(OPEN_APP, OPEN_FEEDBACK_APP)
        # Discovery takes no input, so it has no schema-violating variant.
        for mode in (list(GenerationMode) if operation.method.upper() == "POST" else [GenerationMode.POSITIVE])
    ],
)
def test_schemathesis_with_auth_off(operation: Any, mode: GenerationMode) -> None:
    _run(operation, mode)


@pytest.mark.parametrize("operation", _operations(SECURE_APP, secure_app(LAST_MINUTES)), ids=lambda o: o.label)
def test_schemathesis_with_auth_required(operation: Any) -> None:
    """Each case carries a fresh token for the URL it calls; schemathesis also tries it without."""

    def sign(case: Any) -> None:
        now = LAST_MINUTES if case.formatted_path.endswith("/feedback") else NOON  # the app's clock
        token = KEY.sign(claims(f"http://testserver{case.formatted_path}", now))
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    statuses = _run(operation, GenerationMode.POSITIVE, sign)
    assert statuses
    assert 401 not in statuses  # every signed case got past authentication
