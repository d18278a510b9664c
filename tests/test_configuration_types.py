"""A setting's number or switch is taken only as written for its type (an informaticist's audit).

The environment's text was read by pydantic's lax rules: ``14_0`` became 140 days (Python's
``int``), `` 14`` and ``14.0`` became 14. A TOML file says its types, and ``max_days = "14"``,
``enabled = "no"`` and ``enabled = 0`` were coerced. Each now stops start-up naming the setting
and where it was set; the documented forms still start, with the whitespace a Kubernetes ``|``
block or a templated env file leaves around them (a review: ``CDS_PORT="8000\n"`` was refused).
JSON in a variable is held to JSON's types as the file to TOML's: ``{"max_days": "14"}`` was 14.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.settings import read_settings

DURATION = "CDS_RULES__CYCLOBENZAPRINE_DURATION__"
WHOLE = "a whole number is needed here, in digits alone"
QUOTED = "is needed here, not a string (no quotes in the file)"


def start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **variables: str) -> tuple[int, str]:
    """``cds-service rules --json`` with ``variables`` set: its exit code, and its error or its output."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    code = main(["rules", "--json"])
    out, err = capsys.readouterr()
    return code, err if code else out


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (f"{DURATION}MAX_DAYS", "14_0", f"rules.cyclobenzaprine-duration.max_days: {WHOLE}"),  # was 140 days
        (f"{DURATION}MAX_DAYS", "1 4", f"rules.cyclobenzaprine-duration.max_days: {WHOLE}"),
        (f"{DURATION}MAX_DAYS", "14.0", f"rules.cyclobenzaprine-duration.max_days: {WHOLE}"),
        (f"{DURATION}MAX_DAYS", "1e1", f"rules.cyclobenzaprine-duration.max_days: {WHOLE}"),
        (f"{DURATION}SNOOZE_DAYS", "1_4", f"rules.cyclobenzaprine-duration.snooze_days: {WHOLE}"),
        ("CDS_PORT", "8_000", f"port: {WHOLE}"),
        ("CDS_DATABASE_WAIT_SECONDS", "1_0", "database_wait_seconds: a number is needed here, in digits (5 or 2.8)"),
        (
            "CDS_RULES__CYCLOBENZAPRINE_OLDER_ADULT__START_DOSE_MG",
            "nan",
            "rules.cyclobenzaprine-older-adult.start_dose_mg: a number is needed here, in digits (5 or 2.8)",
        ),
    ],
)
def test_an_environment_number_not_written_in_digits_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, message: str
) -> None:
    code, err = start(monkeypatch, capsys, **{variable: value})
    assert code == 2, err
    assert err == f"cds-service: invalid configuration: {message} (set by {variable})\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[rules.cyclobenzaprine-duration]\nmax_days = "14"\n', f"rules.cyclobenzaprine-duration.max_days: a whole number {QUOTED}"),
        ('[rules.cyclobenzaprine-duration]\nenabled = "no"\n', f"rules.cyclobenzaprine-duration.enabled: true or false {QUOTED}"),
        ("[rules.cyclobenzaprine-duration]\nenabled = 0\n", "rules.cyclobenzaprine-duration.enabled: true or false is needed here, not a number"),
        ("[rules.cyclobenzaprine-duration]\nmax_days = 14.0\n", "rules.cyclobenzaprine-duration.max_days: a whole number is needed here, not a decimal"),
        ('[rules.cyclobenzaprine-hepatic-impairment]\nstart_dose_mg = "5"\n', f"rules.cyclobenzaprine-hepatic-impairment.start_dose_mg: a number {QUOTED}"),
        # Refused before, as "less than or equal to 10": it is no number at all.
        ("[rules.cyclobenzaprine-older-adult]\nstart_dose_mg = nan\n", "rules.cyclobenzaprine-older-adult.start_dose_mg: a number is needed here, not nan"),
        ('port = "8000"\n', f"port: a whole number {QUOTED}"),
        ("trust_sandbox = 1\n", "trust_sandbox: true or false is needed here, not a number"),
    ],
)  # fmt: skip
def test_a_file_value_of_the_wrong_toml_type_stops_start_up_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    config = tmp_path / "cds.toml"
    config.write_text(content)
    code, err = start(monkeypatch, capsys, CDS_CONFIG_FILE=str(config))
    assert code == 2, err
    assert err == f"cds-service: invalid configuration: {message} (set in CDS_CONFIG_FILE ({config}))\n"


@pytest.mark.parametrize(
    ("enabled", "max_days", "dose", "wait"),
    [
        ("true", "14", "5", "0.5"),
        ("false", "+14", "7.5", "1"),
        ("FALSE", "14", "10.0", ".5"),
        ("0", "014", "5", "5e-1"),
        ("no", "14", "5", "30"),
        ("off", "14", "5", "2"),
        ("t", "14", "5", "2"),
        ("N", "14", "5", "2"),
    ],
)
def test_the_environment_forms_written_as_documented_still_start(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    enabled: str,
    max_days: str,
    dose: str,
    wait: str,
) -> None:
    variables = {
        f"{DURATION}ENABLED": enabled,
        f"{DURATION}MAX_DAYS": max_days,
        "CDS_RULES__CYCLOBENZAPRINE_OLDER_ADULT__START_DOSE_MG": dose,
        "CDS_DATABASE_WAIT_SECONDS": wait,
    }
    code, out = start(monkeypatch, capsys, **variables)
    assert code == 0, out
    rows = {row["id"]: row for row in json.loads(out)}
    assert rows["cyclobenzaprine-duration"]["enabled"] is (enabled in ("true", "t"))
    assert rows["cyclobenzaprine-duration"]["thresholds"]["max_days"] == 14
    assert rows["cyclobenzaprine-older-adult"]["thresholds"]["start_dose_mg"] == float(dose)
    assert read_settings().database_wait_seconds == float(wait)


def test_the_file_types_toml_writes_still_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A whole number where a decimal is due is one: ``start_dose_mg = 5`` as the example's 5.0."""
    config = tmp_path / "cds.toml"
    config.write_text(
        "database_wait_seconds = 1\ntrust_sandbox = false\n[rules.cyclobenzaprine-duration]\nenabled = false\n"
        "max_days = 14\n[rules.cyclobenzaprine-older-adult]\nstart_dose_mg = 5\n"
    )
    code, out = start(monkeypatch, capsys, CDS_CONFIG_FILE=str(config))
    assert code == 0, out
    rows = {row["id"]: row for row in json.loads(out)}
    assert rows["cyclobenzaprine-duration"]["enabled"] is False
    assert rows["cyclobenzaprine-duration"]["thresholds"]["max_days"] == 14
    assert rows["cyclobenzaprine-older-adult"]["thresholds"]["start_dose_mg"] == 5


@pytest.mark.parametrize("space", ["\n", " ", "\t", " \r\n"])
def test_whitespace_around_an_environment_value_is_no_part_of_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], space: str
) -> None:
    variables = {
        "CDS_PORT": f"8000{space}",
        "CDS_TRUST_SANDBOX": f"{space}false{space}",
        "CDS_DATABASE_WAIT_SECONDS": f"0.5{space}",
        f"{DURATION}ENABLED": f"no{space}",
        f"{DURATION}MAX_DAYS": f"{space}14{space}",
    }
    code, out = start(monkeypatch, capsys, **variables)
    assert code == 0, out
    [row] = [row for row in json.loads(out) if row["id"] == "cyclobenzaprine-duration"]
    assert (row["enabled"], row["thresholds"]["max_days"]) == (False, 14)
    settings = read_settings()
    assert (settings.port, settings.trust_sandbox, settings.database_wait_seconds) == (8000, False, 0.5)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (DURATION.removesuffix("__"), '{"max_days": "14"}', "rules.cyclobenzaprine-duration.max_days: a whole number"),
        (DURATION.removesuffix("__"), '{"enabled": "no"}', "rules.cyclobenzaprine-duration.enabled: true or false"),
        ("CDS_RULES", '{"cyclobenzaprine_older_adult": {"start_dose_mg": "5"}}', "rules.cyclobenzaprine-older-adult.start_dose_mg: a number"),
    ],
)  # fmt: skip
def test_a_json_string_in_a_variable_where_a_number_or_switch_is_due_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    variable: str,
    value: str,
    message: str,
) -> None:
    """Named by the variable holding the JSON, not by the file beside it (which sets nothing of it)."""
    config = tmp_path / "cds.toml"
    config.write_text("[rules.cyclobenzaprine-duration]\ncumulative_window_days = 30\n")
    code, err = start(monkeypatch, capsys, CDS_CONFIG_FILE=str(config), **{variable: value})
    assert code == 2, err
    assert err == (
        f"cds-service: invalid configuration: {message} is needed here, not a string (no quotes in the JSON) "
        f"(set by {variable})\n"
    )


def test_json_of_the_right_types_in_a_variable_still_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = start(monkeypatch, capsys, **{DURATION.removesuffix("__"): '{"max_days": 15, "enabled": false}'})
    assert code == 0, out
    [row] = [row for row in json.loads(out) if row["id"] == "cyclobenzaprine-duration"]
    assert (row["enabled"], row["thresholds"]["max_days"]) == (False, 15)
