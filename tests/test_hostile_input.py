"""Bodies built to hurt: too big, too many entries, too deep, not JSON. Each is a named 4xx."""

from __future__ import annotations

import gc
import json
import re
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt

from tests.conftest import SELECT, fixture, hook_url
from tests.fhir_server import FhirTestServer

FEEDBACK = SELECT + "/feedback"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


@pytest.mark.parametrize("path", [SELECT, FEEDBACK])
def test_body_over_the_limit_is_413(make_client: Callable[..., TestClient], path: str) -> None:
    client = make_client(max_body_bytes=10_000)
    body = json.dumps({"hook": "order-select", "padding": "x" * 20_000})
    issue = outcome(client.post(path, content=body, headers=JSON), 413)
    assert issue["expression"] == ["body"] and issue["code"] == "too-costly"
    assert "20" in issue["diagnostics"] and "10000" in issue["diagnostics"]


def test_chunked_body_over_the_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    """No Content-Length: the running count while reading stops it."""
    client = make_client(max_body_bytes=10_000)

    def chunks() -> Iterator[bytes]:
        yield b'{"hook": "order-select", "padding": "'
        for _ in range(1000):
            yield b"x" * 1000
        yield b'"}'

    issue = outcome(client.post(SELECT, content=chunks(), headers=JSON), 413)
    assert "over 10000 bytes" in issue["diagnostics"]


def test_too_many_entries_is_413_naming_the_bundles(make_client: Callable[..., TestClient]) -> None:
    request = fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json")
    request["prefetch"]["conditions"]["entry"] = [
        {"resource": {"resourceType": "Condition", "id": f"c{i}"}} for i in range(30)
    ]
    issue = outcome(make_client(max_entries=20).post(SELECT, json=request), 413)
    assert "prefetch.conditions" in issue["expression"]
    assert "prefetch.conditions: 30" in issue["diagnostics"]
    assert "at most 20" in issue["diagnostics"]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_body_not_declared_as_json_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(fixture("sandbox/order-select-r4.json"))
    issue = outcome(client.post(SELECT, content=body, headers=headers), 415)
    assert issue["expression"] == ["Content-Type"]


@pytest.mark.parametrize(
    ("headers", "field", "message"),
    [
        ({"Content-Type": "application/json; charset=utf-16"}, "Content-Type", "charset 'utf-16'"),
        ({"Content-Type": 'application/json; charset="ISO-8859-1"'}, "Content-Type", "charset 'iso-8859-1'"),
        ({**JSON, "Content-Encoding": "gzip"}, "Content-Encoding", "Content-Encoding is 'gzip'"),
        ({**JSON, "Content-Encoding": "br"}, "Content-Encoding", "Content-Encoding is 'br'"),
    ],
)
@pytest.mark.parametrize("path", [SELECT, FEEDBACK])
def test_a_body_not_in_plain_utf_8_is_415_naming_the_header(
    client: TestClient, headers: dict[str, str], field: str, message: str, path: str
) -> None:
    """JSON is UTF-8 (RFC 8259) and the service reads bodies as sent: a compressed body or another
    charset is refused for what it is, not read as JSON that happens not to parse."""
    issue = outcome(client.post(path, content=b"\x1f\x8b\x08\x00", headers=headers), 415)
    assert issue["expression"] == [field]
    assert message in issue["diagnostics"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json;charset=UTF8",
        "application/json; charset=us-ascii",
        "application/fhir+json",
    ],
)
def test_json_media_types_are_accepted(client: TestClient, content_type: str) -> None:
    body = json.dumps(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    assert client.post(SELECT, content=body, headers={"Content-Type": content_type}).status_code == 200
    identity = {"Content-Type": content_type, "Content-Encoding": "identity"}
    assert client.post(SELECT, content=body, headers=identity).status_code == 200


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_is_400(client: TestClient, depth: int) -> None:
    request = fixture("sandbox/order-select-r4.json")
    request["extension"] = json.loads("[" * depth + "]" * depth) if depth < 500 else None
    body = json.dumps(request)
    if depth >= 500:  # deeper than the JSON encoder itself will go: build the text directly
        body = body.replace('"extension": null', '"extension": ' + "[" * depth + "]" * depth)
    issue = outcome(client.post(SELECT, content=body, headers=JSON), 400)
    assert "nests deeper than" in issue["diagnostics"]


@pytest.mark.parametrize(("lists", "status"), [(63, 200), (64, 400)])
def test_the_nesting_bound_is_64_levels(client: TestClient, lists: int, status: int) -> None:
    """The request object and 63 arrays inside it nest 64 levels deep: read; one more is not."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["extension"] = json.loads("[" * lists + "]" * lists)
    response = client.post(SELECT, content=json.dumps(request), headers=JSON)
    assert response.status_code == status, response.text
    if status == 400:
        assert "nests deeper than 64 levels" in outcome(response, 400)["diagnostics"]


def test_number_too_long_to_read_is_400(client: TestClient) -> None:
    body = '{"hook": "order-select", "hookInstance": ' + "9" * 5000 + "}"
    issue = outcome(client.post(SELECT, content=body, headers=JSON), 400)
    assert "cannot be read" in issue["diagnostics"]


DOSE_VALUE = "context.draftOrders.entry.0.resource.dosageInstruction.0.doseAndRate.0.doseQuantity.value"


@pytest.mark.parametrize("number", ["1e400", "-1e400", "9" * 400], ids=["1e400", "-1e400", "400-digits"])
def test_a_number_past_a_doubles_range_is_400_naming_its_field(client: TestClient, number: str) -> None:
    """A draft's dose of 1e400 was refused naming "body" alone, with the parser's words: the field
    is named, and the line and column of the number said plainly (an adversarial review)."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    body = json.dumps(request).replace('"value": 1,', f'"value": {number},', 1)
    column = body.index(number) + 1
    issue = outcome(client.post(SELECT, content=body, headers=JSON), 400)
    assert issue["expression"] == [DOSE_VALUE]
    assert issue["diagnostics"].startswith(f"{DOSE_VALUE}: the number is out of range")
    assert f"at line 1 column {column}: it cannot be read" in issue["diagnostics"]


def test_a_number_past_range_whose_field_cannot_be_found_is_said_by_line_and_column(client: TestClient) -> None:
    """A duplicate key drops the number from what a parse gives (the last one wins): the field
    cannot be named, and the message says plainly what and where, not the parser's words."""
    body = '{"hook": "order-select",\n "hookInstance": 1e999, "hookInstance": "x"}'
    issue = outcome(client.post(SELECT, content=body, headers=JSON), 400)
    assert issue["expression"] == ["body"]
    expected = "the request body holds a number out of range (past ±1.8e308, the most a double holds)"
    assert issue["diagnostics"] == f"{expected} at line 2 column 18: it cannot be read"


def test_fhir_response_over_the_limit_is_not_read(
    make_client: Callable[..., TestClient], fhir_server: FhirTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    fhir_server.add(
        *(
            {"resourceType": "Condition", "id": f"big{i}", "subject": {"reference": "Patient/harness-pt-1"}}
            for i in range(40)
        )
    )
    request = fixture("sandbox/order-select-r4.json")
    request["fhirServer"] = fhir_server.base
    request["context"]["patientId"] = "harness-pt-1"
    request.pop("prefetch", None)
    issue = outcome(make_client(max_body_bytes=2048).post(SELECT, json=request), 412)
    assert "prefetch.conditions" in issue["expression"]
    # What the server answered goes to the log, not to the caller (tests/test_security_defaults.py).
    assert "over the 2048-byte limit" in caplog.text and "over the 2048-byte limit" not in issue["diagnostics"]


@pytest.mark.parametrize("version", ["R4", "STU3"])
def test_history_nested_deep_is_read_around(client: TestClient, version: str) -> None:
    """The body stage bounds the depth of what is recursed over, not of the history, which is
    read at fixed paths; an older-version resource, converted by copying, checks its own."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "id": "deep",
        "clinicalStatus": "active" if version == "STU3" else {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M62.830"}]},
        "extension": None,
    }
    request["prefetch"]["conditions"] = {"resourceType": "Bundle", "entry": [{"resource": condition}]}
    body = json.dumps(request).replace('"extension": null', '"extension": ' + "[" * 900 + "]" * 900)
    response = client.post(SELECT, content=body, headers=JSON)
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-duration" in [c["source"]["topic"]["code"] for c in response.json()["cards"]]


def _draft(request: dict[str, Any]) -> dict[str, Any]:
    draft: dict[str, Any] = request["context"]["draftOrders"]["entry"][0]["resource"]
    return draft


def _by_contained(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        draft = _draft(request)
        draft.pop("medicationCodeableConcept")
        draft.update(contained=value, medicationReference={"reference": "#m1", "display": "cyclobenzaprine 10 mg"})

    return change


ELEVEN_DIGITS = "99999999999"  # a year past any date type: the parser's OverflowError, not ValueError
MISSHAPEN = {
    "dosageInstruction-a-number": lambda r: _draft(r).update(dosageInstruction=5),
    "doseAndRate-a-number": lambda r: _draft(r)["dosageInstruction"][0].update(doseAndRate=5),
    "contained-a-number": _by_contained(1),
    "contained-resourceType-misspelt": _by_contained([{"resourceType": "Medicaton", "id": "m1"}]),
    "contained-resourceType-a-list": _by_contained([{"resourceType": ["Medication"], "id": "m1"}]),
    "authoredOn-eleven-digits": lambda r: _draft(r).update(authoredOn=ELEVEN_DIGITS),
    "birthDate-eleven-digits": lambda r: r["prefetch"]["patient"].update(birthDate=ELEVEN_DIGITS),
    "boundsPeriod-eleven-digits": lambda r: _draft(r)["dosageInstruction"][0]["timing"]["repeat"].update(
        boundsPeriod={"start": ELEVEN_DIGITS, "end": ELEVEN_DIGITS}
    ),
}


@pytest.mark.parametrize("name", list(MISSHAPEN))
def test_a_misshapen_draft_or_date_is_read_around_not_a_500(client: TestClient, name: str) -> None:
    """Shapes a type-swapping review sent (32,660 requests): each was a 500, every card lost. A
    field of the wrong type is read as absent, as everywhere else; the call is answered."""
    request = fixture("cyclobenzaprine-older-adult/fires-composed-swap-10mg-tid-30-days-age-70.json")
    MISSHAPEN[name](request)
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("period", [5e-324, 1e-20, 1e-9])
def test_a_period_of_next_to_no_time_is_no_rate_not_a_500_or_billions_of_tablets(
    client: TestClient, period: float
) -> None:
    """A hunt's finding: the duration limit composed into the 5 mg swap read each of frequency and
    period as plausible, never their rate: infinity (a 500), a number past 64 bits (a 500 writing
    the answer), or 21,000,000,000 tablets offered for 21 days. The rate is read as unknown, as the
    facts read it, and the swap sets no quantity."""
    request = fixture("cyclobenzaprine-older-adult/fires-composed-swap-10mg-tid-30-days-age-70.json")
    _draft(request)["dosageInstruction"][0]["timing"]["repeat"]["period"] = period
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    resources = [
        action["resource"]
        for card in response.json()["cards"]
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
        if "resource" in action
    ]
    assert resources  # the swap and the limit are still offered
    assert all("quantity" not in resource.get("dispenseRequest", {}) for resource in resources)


@pytest.mark.parametrize("authored", ["9999", "9999-12"])
@pytest.mark.parametrize("status", ["active", "completed"])
@pytest.mark.parametrize(
    "name",
    ["cyclobenzaprine-maoi/fires-phenelzine-active.json", "muscle-relaxant-duplicate/fires-tizanidine-active.json"],
)
def test_a_history_order_written_in_the_last_year_there_is_is_not_a_500(
    client: TestClient, name: str, authored: str, status: str
) -> None:
    """A course whose start was a month or a year alone is read as late as it allows: the last
    day of 9999 has no day after it (a 500, found the day it was written)."""
    request = fixture(name)
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    order["authoredOn"], order["status"] = authored, status
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text


def _held_after(client: TestClient, requests: list[dict[str, Any]]) -> int:
    """Bytes the process holds after answering ``requests`` that it did not hold before."""
    tracemalloc.start()
    try:
        gc.collect()  # the test client's requests and responses hold each other: freed by the collector
        before = tracemalloc.take_snapshot()
        for request in requests:
            assert client.post(SELECT, json=request).status_code == 200
        gc.collect()
        return sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()


def _with_conditions(request: dict[str, Any], codes: list[tuple[str, str]]) -> dict[str, Any]:
    """``request`` with a history of one Condition per (code, text)."""
    subject = {"reference": f"Patient/{request['context']['patientId']}"}
    entries = [
        {
            "resource": {
                "resourceType": "Condition",
                "id": f"c{index}",
                "subject": subject,
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}], "text": text},
            }
        }
        for index, (code, text) in enumerate(codes)
    ]
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    return {**request, "prefetch": {**request["prefetch"], "conditions": bundle}}


def test_large_values_in_a_history_are_not_kept_between_calls(client: TestClient) -> None:
    """What a history's codes mean is kept between calls (``fhir/memo.py``), but not a code sent
    with a quarter of a megabyte of text: sixteen calls, each with a different one, leave the
    process holding no more than it did."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    calls = [_with_conditions(request, [("38341003", f"{index}" * 262144)]) for index in range(17)]
    client.post(SELECT, json=calls[0])  # whatever a first call sets up
    held = _held_after(client, calls[1:])
    assert held < 1024 * 1024, f"{held:,} bytes more held after the calls"


def test_what_a_history_means_is_kept_in_the_bytes_it_takes(client: TestClient) -> None:
    """500 codes met for the first time are kept, each in about the bytes its JSON takes: not in
    the 4 KiB buffer orjson wrote it into (2 MiB for these)."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    client.post(SELECT, json=request)  # whatever a first call sets up
    history = _with_conditions(request, [(f"9{index:08d}", "Hypertensive disorder") for index in range(500)])
    held = _held_after(client, [history])
    assert held < 512 * 1024, f"{held:,} bytes more held after the call"


def _drug_words(request: dict[str, Any], words: str) -> None:
    """A history's drug named by its words alone: a drug so read is named by them on the card."""
    request["prefetch"]["medications"]["entry"][0]["resource"]["medicationCodeableConcept"] = {"text": words}


def _first(request: dict[str, Any], key: str) -> dict[str, Any]:
    resource: dict[str, Any] = request["prefetch"][key]["entry"][0]["resource"]
    return resource


MAOI = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
CAUTION = "cyclobenzaprine-contraindicated-condition/fires-warning-right-bundle-branch-block-i45-10-v2-caution.json"
TENS = "low-value-back-therapy/fires-tens-device.json"
SEVERE = "cyclobenzaprine-hepatic-impairment/fires-critical-severity-severe-on-hepatitis-c.json"
OLDER = "cyclobenzaprine-older-adult/fires-age-70-extended-release.json"
ER = "24 HR Cyclobenzaprine hydrochloride 15 MG Extended Release Oral Capsule"


def _draft_words(request: dict[str, Any], words: str) -> None:
    request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {"text": words}


def _device_words(request: dict[str, Any], words: str) -> None:
    request["context"]["draftOrders"]["entry"][0]["resource"]["codeCodeableConcept"]["coding"][0]["display"] = words


# (fixture, where the record's words go, the words, plain words in their place): each was a link,
# an image, a tag or a block of its own in the card's Markdown detail, as if the service wrote it.
RECORD_WORDS: dict[str, tuple[str, Callable[[dict[str, Any], str], None], str, str]] = {
    "inline-link-image-heading": (
        MAOI,
        _drug_words,
        "Phenelzine [refill](http://evil.example/) <img src=x>\n\n# Safe",
        "Phenelzine words",
    ),
    "backslash-before-a-tag": (
        MAOI,
        _drug_words,
        "Phenelzine \\<a href='http://evil.example/'>refill\\</a>",
        "Phenelzine words",
    ),
    "email-autolink": (MAOI, _drug_words, "Phenelzine <0refill@evil.example>", "Phenelzine words"),
    "a-backslash-before-the-bold-ends": (OLDER, _draft_words, ER + "\\", ER),
    "condition-tag-and-list": (
        CAUTION,
        lambda r, w: _first(r, "conditions")["code"].update(text=w),
        "RBBB <a href='http://x.example/'>see</a>\n- ok",
        "RBBB",
    ),
    "condition-code-broken-over-lines": (
        CAUTION,
        lambda r, w: _first(r, "conditions")["code"]["coding"][0].update(code=w),
        "\n\n\n\nI45.10",
        "I45.10",
    ),
    "order-reference-link": (
        TENS,
        _device_words,
        "TENS [approved, click to sign][1]\n\n[1]: http://evil.example/\n\nTENS",
        "TENS",
    ),
    "bare-web-and-email-addresses": (
        CAUTION,
        lambda r, w: _first(r, "conditions")["code"].update(text=w),
        "RBBB, see http://evil.example/login or WWW.evil.example/a`b or help@evil.example",
        "RBBB",
    ),
    "a-backtick-before-a-bare-address": (
        MAOI,
        _drug_words,
        "Phenelzine ` https://evil.example/refill ``",
        "Phenelzine words",
    ),
    "severity-heading-and-list": (
        SEVERE,
        lambda r, w: _first(r, "conditions")["severity"]["coding"][0].update(display=w),
        "Severe\n\n# Safe to give\n\n1. ok",
        "Severe",
    ),
}


def _rendered(request: dict[str, Any], client: TestClient) -> list[tuple[str, list[str]]]:
    """Each card's topic and the tags its detail renders to, as an EHR renders Markdown."""
    # Raw HTML on, as CommonMark has it; bare web and email addresses linked, as GFM (the sandbox's
    # remark-gfm) links them.
    markdown = MarkdownIt("commonmark", {"linkify": True}).enable("linkify")
    cards = client.post(hook_url(request), json=request).json()["cards"]
    # A bare address is shown in a code span, as written (``content.markdown``): not a tag that acts.
    return [
        (
            card["source"]["topic"]["code"],
            [t for t in re.findall(r"<(\w+)", markdown.render(card["detail"])) if t != "code"],
        )
        for card in cards
    ]


@pytest.mark.parametrize("case", list(RECORD_WORDS))
def test_words_from_the_record_are_text_in_a_card_detail(client: TestClient, case: str) -> None:
    """A drug's, a condition's or an order's words are shown as the record sent them: a link, an
    image, a tag or a line break in them rendered in the card's Markdown as if the service had
    written it. The detail renders to the same tags as with plain words; the summary is plain
    text (CDS Hooks) and keeps the words, on one line."""
    name, place, words, plain_words = RECORD_WORDS[case]
    hostile, plain = fixture(name), fixture(name)
    place(hostile, words)
    place(plain, plain_words)
    rendered = _rendered(hostile, client)
    assert name.split("/")[0] in [topic for topic, _ in rendered]  # the card came, words and all
    assert rendered == _rendered(plain, client)
