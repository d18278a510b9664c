"""A site's local codes can take codes out of the shipped concepts, the critical rules' among
them (an informaticist's audit: "I" excluded from heart failure and "G" from cauda equina made
both critical cards disappear, with no word at start-up). Each exclusion is said at every start;
a chapter-wide prefix, or exclusions taking out a concept's whole shipped list, stop start-up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds_service.cli import main
from cds_service.settings import read_settings
from tests.conftest import SELECT, fixture

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
K72_SAID = (
    f"condition.liver-disease-moderate-severe: exclude_prefixes K72 ({ICD10}) takes out 5 of the 36 codes "
    "and prefixes the shipped concept lists; the rules reading it no longer see them"
)


def _local(tmp_path: Path, concept: str, field: str, code: str) -> Path:
    local = tmp_path / "local-codes.toml"
    local.write_text(f'[condition.{concept}]\n{field} = [{{ system = "{ICD10}", code = "{code}", source = "s" }}]\n')
    return local


def _rules(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], local: Path) -> tuple[int, str, str]:
    monkeypatch.setenv("CDS_LOCAL_CODES_FILE", str(local))
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    code = main(["rules"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("concept", "code", "message"),
    [
        # Every heart failure code of ICD-10-CM (the SNOMED CT ones left): the critical card gone.
        ("heart-failure", "I", "condition.heart-failure: exclude_prefixes code 'I' takes out a whole chapter"),
        ("cauda-equina", "G", "condition.cauda-equina: exclude_prefixes code 'G' takes out a whole chapter"),
        ("arrhythmia", "I4", "condition.arrhythmia: exclude_prefixes code 'I4' takes out a whole chapter or block"),
        # Three characters and more, but the whole of what the concept ships (G83.4 alone).
        (
            "cauda-equina",
            "G83.4",
            "condition.cauda-equina: its exclusions (exclude_prefixes G83.4) take out every code and prefix",
        ),
    ],
)
def test_an_exclusion_of_a_chapter_or_of_a_whole_concept_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys, concept: str, code: str, message: str
) -> None:
    local = _local(tmp_path, concept, "exclude_prefixes", code)
    status, _, err = _rules(monkeypatch, capsys, local)
    assert status == 2
    assert f"{local}: {message}" in err


def test_every_code_of_a_concept_excluded_one_by_one_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    """Codes, not a prefix: the cauda equina concept ships one prefix, G83.4, as a code too."""
    local = _local(tmp_path, "cauda-equina", "exclude", "G83.4")
    status, _, err = _rules(monkeypatch, capsys, local)
    assert status == 2 and f"{local}: condition.cauda-equina: its exclusions (exclude G83.4)" in err


def test_each_local_exclusion_is_a_caution_of_cds_service_rules(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    local = _local(tmp_path, "liver-disease-moderate-severe", "exclude_prefixes", "K72")
    status, out, err = _rules(monkeypatch, capsys, local)
    assert status == 0, err
    assert f"caution: local codes {local}: {K72_SAID} (docs/configuration.md#local-codes)" in out.splitlines()


def test_an_exclusion_narrowing_a_shipped_prefix_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    local = _local(tmp_path, "liver-disease-moderate-severe", "exclude", "K72.10")  # a code of a value set too
    status, out, _ = _rules(monkeypatch, capsys, local)
    assert status == 0
    assert (
        f"caution: local codes {local}: condition.liver-disease-moderate-severe: exclude K72.10 ({ICD10}) takes out "
        "1 of the 36 codes and prefixes the shipped concept lists, and narrows its shipped prefix K72;"
    ) in out


def test_a_local_exclusion_is_said_at_start_up_and_changes_the_card(
    defaults: Callable[..., TestClient], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The exclusion still works as the site meant (K72 is no longer moderate-to-severe liver
    disease, so a warning, not a critical card): it is said, not refused."""
    caplog.set_level(logging.INFO)
    local = _local(tmp_path, "liver-disease-moderate-severe", "exclude_prefixes", "K72")
    client = defaults(auth_mode="off", timezone="UTC", local_codes_file=local)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "cds_service.app"]
    assert f"local codes {local}: {K72_SAID} (docs/configuration.md#local-codes)" in said
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    body = client.post(SELECT, json=request).json()
    [hepatic] = [
        card for card in body["cards"] if card["source"]["topic"]["code"] == "cyclobenzaprine-hepatic-impairment"
    ]
    assert hepatic["indicator"] == "warning"


def test_without_local_codes_start_up_says_no_exclusion(
    defaults: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    defaults(auth_mode="off", timezone="UTC")
    assert not [r for r in caplog.records if r.getMessage().startswith("local codes")]
