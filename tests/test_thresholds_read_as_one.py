"""Start-up refuses thresholds the rules cannot honour as documented (an informaticist's audit).

- The ``min_age`` of ``muscle-relaxant-chronic-pain`` and ``muscle-relaxant-class-switch`` decides
  only which drugs their cards advise (they fire at any age): at 70, a 67-year-old was advised
  low-dose amitriptyline, or cyclobenzaprine, which the Beers Criteria say to avoid from 65.
- ``current_fracture_days`` of ``back-pain-red-flag`` and ``low-value-back-therapy`` is one
  threshold: set apart, a TENS order beside a 60-day-old fracture got both cards, or neither.
- ``refractory-spasm-imaging``'s ``prior_course_max_days`` above 90 was accepted and did nothing:
  the symptom duration counts only relaxant courses begun in the last 90 days.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_service.cli import main
from cds_service.settings import read_settings
from tests.conftest import TODAY, fixture, rule_ids


def _start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **variables: str) -> tuple[int, str]:
    """``cds-service rules`` started with ``variables`` set: its exit code and what it said on stderr."""
    for name, value in variables.items():
        monkeypatch.setenv(f"CDS_RULES__{name}", value)
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)  # not another test's, cached
    code = main(["rules"])
    return code, capsys.readouterr().err


def _evaluate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, request: dict[str, Any]
) -> dict[str, Any]:
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    assert main(["evaluate", str(path), "--today", TODAY.isoformat()]) == 0
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    return body


@pytest.mark.parametrize(
    ("rule", "request_name", "avoided"),
    [
        ("muscle-relaxant-chronic-pain", "fires-fibromyalgia-baclofen-age-70-no-tricyclic.json", "amitriptyline"),
        ("muscle-relaxant-class-switch", "fires-age-70-names-no-relaxant-v2.json", "tizanidine, an"),
    ],
)
def test_an_advice_age_past_the_beers_65_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    rule: str,
    request_name: str,
    avoided: str,
) -> None:
    variable = f"{rule.upper().replace('-', '_')}__MIN_AGE"
    code, err = _start(monkeypatch, capsys, **{variable: "66"})
    assert code == 2
    assert f"rules.{rule}.min_age: Input should be less than or equal to 65 (set by CDS_RULES__{variable})" in err, err
    # 65 itself, and earlier (a site may be stricter), start; the card advises no drug to avoid.
    for age in ("65", "60"):
        monkeypatch.setenv(f"CDS_RULES__{variable}", age)
        body = _evaluate(monkeypatch, capsys, tmp_path, fixture(f"{rule}/{request_name}"))
        [card] = [c for c in body["cards"] if c["source"]["topic"]["code"] == rule]
        assert avoided not in card["detail"], card["detail"]


def _tens_beside_a_fracture(days_old: int) -> dict[str, Any]:
    """A TENS order for low back pain, a lumbar fracture of a subsequent encounter on the list."""
    request = fixture("low-value-back-therapy/fires-tens-device.json")
    fracture = {
        "resourceType": "Condition",
        "id": "fracture-1",
        "subject": {"reference": f"Patient/{request['context']['patientId']}"},
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/sid/icd-10-cm",
                    "code": "S32.010D",
                    "display": "Wedge compression fracture of first lumbar vertebra, subsequent encounter",
                }
            ]
        },
        "onsetDateTime": (TODAY - timedelta(days=days_old)).isoformat(),
    }
    request["prefetch"]["conditions"]["entry"].append({"resource": fracture})
    request["prefetch"]["conditions"]["total"] = len(request["prefetch"]["conditions"]["entry"])
    return request


@pytest.mark.parametrize(
    ("set_", "other"),
    [("BACK_PAIN_RED_FLAG", "LOW_VALUE_BACK_THERAPY"), ("LOW_VALUE_BACK_THERAPY", "BACK_PAIN_RED_FLAG")],
)
def test_current_fracture_days_set_apart_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, set_: str, other: str
) -> None:
    code, err = _start(monkeypatch, capsys, **{f"{set_}__CURRENT_FRACTURE_DAYS": "30"})
    assert code == 2
    red_flag = "30" if set_ == "BACK_PAIN_RED_FLAG" else "90"
    low_value = "30" if red_flag == "90" else "90"
    assert (
        f"rules.low-value-back-therapy.current_fracture_days is {low_value} and "
        f"rules.back-pain-red-flag.current_fracture_days {red_flag}: the two rules read it as one, set both to the "
        f"same value (set by CDS_RULES__{set_}__CURRENT_FRACTURE_DAYS)\n"
    ) in err, err
    # Set alike, a 60-day-old fracture is past for both: the low-value card alone, no red flag.
    monkeypatch.setenv(f"CDS_RULES__{other}__CURRENT_FRACTURE_DAYS", "30")
    assert rule_ids(_evaluate(monkeypatch, capsys, tmp_path, _tens_beside_a_fracture(60))) == ["low-value-back-therapy"]
    # ...and a 29-day-old one current for both: the red-flag card alone.
    assert rule_ids(_evaluate(monkeypatch, capsys, tmp_path, _tens_beside_a_fracture(29))) == ["back-pain-red-flag"]


@pytest.mark.parametrize("off", ["BACK_PAIN_RED_FLAG", "LOW_VALUE_BACK_THERAPY"])
def test_current_fracture_days_set_apart_start_with_either_rule_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], off: str
) -> None:
    """One rule off, the two values cannot disagree in practice: a site tunes the rule it runs."""
    code, err = _start(
        monkeypatch, capsys, **{f"{off}__ENABLED": "false", "BACK_PAIN_RED_FLAG__CURRENT_FRACTURE_DAYS": "60"}
    )
    assert code == 0, err


def test_current_fracture_days_set_apart_say_where_each_was_set_and_not_a_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "rules.site_a.toml"  # named as it is, not as a rule id ("rules.site-a")
    config.write_text("[rules.low-value-back-therapy]\nenabled = true\n")  # its current_fracture_days: the default
    monkeypatch.setenv("CDS_CONFIG_FILE", str(config))
    code, err = _start(monkeypatch, capsys, BACK_PAIN_RED_FLAG__CURRENT_FRACTURE_DAYS="60")
    assert code == 2
    assert err.endswith("same value (set by CDS_RULES__BACK_PAIN_RED_FLAG__CURRENT_FRACTURE_DAYS)\n"), err
    config.write_text("[rules.low-value-back-therapy]\ncurrent_fracture_days = 30\n")
    code, err = _start(monkeypatch, capsys, BACK_PAIN_RED_FLAG__CURRENT_FRACTURE_DAYS="60")
    assert code == 2
    assert err.endswith(
        f"same value (set in CDS_CONFIG_FILE ({config}); set by CDS_RULES__BACK_PAIN_RED_FLAG__CURRENT_FRACTURE_DAYS)\n"
    ), err


def test_a_prior_course_window_past_the_symptom_durations_90_days_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    variable = "REFRACTORY_SPASM_IMAGING__PRIOR_COURSE_MAX_DAYS"
    code, err = _start(monkeypatch, capsys, **{variable: "91"})
    assert code == 2
    assert (
        "rules.refractory-spasm-imaging.prior_course_max_days: Input should be less than or equal to 90 "
        f"(set by CDS_RULES__{variable})"
    ) in err, err
    code, err = _start(monkeypatch, capsys, **{variable: "90"})
    assert code == 0, err
