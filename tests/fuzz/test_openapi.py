"""Schemathesis, from the service's own OpenAPI document: schema-valid and schema-violating
requests, with authentication off and required."""

from __future__ import annotations

from collections.abc import Callable
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
)
from tests.tokens import claims


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


OPEN_APP = fuzz_app()


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
        for operation in _operations(OPEN_APP)
        # Discovery takes no input, so it has no schema-violating variant.
        for mode in (list(GenerationMode) if operation.method.upper() == "POST" else [GenerationMode.POSITIVE])
    ],
)
def test_schemathesis_with_auth_off(operation: Any, mode: GenerationMode) -> None:
    _run(operation, mode)


@pytest.mark.parametrize("operation", _operations(SECURE_APP), ids=lambda o: o.label)
def test_schemathesis_with_auth_required(operation: Any) -> None:
    """Each case carries a fresh token for the URL it calls; schemathesis also tries it without."""

    def sign(case: Any) -> None:
        token = KEY.sign(claims(f"http://testserver{case.formatted_path}", NOON))
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    statuses = _run(operation, GenerationMode.POSITIVE, sign)
    assert statuses
    assert 401 not in statuses  # every signed case got past authentication
