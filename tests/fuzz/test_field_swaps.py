"""Real requests with one field swapped: any value of a fixture's JSON (a draft's dose, a history
entry's date, a prefetch key, the envelope) replaced by arbitrary JSON, or removed, or its
numbers and codes sent as strings. Whatever the field, the answer is never a 5xx.

Arbitrary JSON rarely reaches past the envelope, and valid-but-arbitrary FHIR never sends a
wrong type: a review that swapped the type of every field of 13 fixtures found eight 500s
(issue 17's tenth pass), each the shape of one field the rules read.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SELECT, SIGN, fixture
from tests.fuzz.conftest import FUZZ, assert_no_server_error, json_values

# Requests on which the rules that build suggestions fire, in each FHIR version, with history.
REQUESTS = [
    "cyclobenzaprine-older-adult/fires-composed-swap-10mg-tid-30-days-age-70.json",
    "cyclobenzaprine-older-adult/fires-sublingual-5.6mg-age-70.json",
    "cyclobenzaprine-maoi/fires-phenelzine-active.json",
    "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json",
    "refractory-spasm-imaging/fires-prior-course-3-weeks.json",
    "muscle-relaxant-duplicate/fires-tizanidine-active.json",
    "fhir-versions/dstu2-cyclobenzaprine-10mg-tid-30-days.json",
    "fhir-versions/stu3-cyclobenzaprine-10mg-tid-30-days.json",
]
REMOVED = object()


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``value`` a field or an item sits."""
    inner: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        inner = [p for key, item in value.items() for p in _paths(item, (*path, key))]
    elif isinstance(value, list):
        inner = [p for index, item in enumerate(value) for p in _paths(item, (*path, index))]
    return [path, *inner] if path else inner


def _swapped(request: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    *parents, last = path
    holder: Any = request
    for step in parents:
        holder = holder[step]
    if value is REMOVED:
        del holder[last]
    elif value == "as a string":
        holder[last] = str(holder[last]) if not isinstance(holder[last], str) else holder[last].upper()
    else:
        holder[last] = value
    return request


@FUZZ
@given(data=st.data())
def test_any_field_of_a_real_request_swapped_never_gets_a_5xx(client: TestClient, data: st.DataObject) -> None:
    request = fixture(data.draw(st.sampled_from(REQUESTS), label="request"))
    path = data.draw(st.sampled_from(_paths(request)), label="path")
    value = data.draw(st.just(REMOVED) | st.just("as a string") | json_values, label="value")
    route = SIGN if request.get("hook") == "order-sign" else SELECT
    assert_no_server_error(client.post(route, json=_swapped(request, path, value)))
