"""Rules are switched and tuned by configuration; bad configuration stops start-up, naming the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.cli import main
from cds_service.rules import all_rules
from cds_service.settings import Settings, read_settings
from tests.conftest import NOON, SELECT, SIGN, Clock, cards_for, fixture, rule_ids
from tests.serving import free_port

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **variables: str) -> str:
    """What ``cds-service rules`` prints when the settings (``variables`` set) stop its start."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules"]) == 2
    return capsys.readouterr().err


def config_file(tmp_path: Path, content: str) -> str:
    config = tmp_path / "cds.toml"
    config.write_text(content)
    return str(config)


@pytest.fixture
def client_with(tmp_path: Path) -> Iterator:
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(create_app(Settings(data_dir=tmp_path / "var", auth_mode="off"), clock=Clock(NOON)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_a_disabled_rule_is_silent_and_not_advertised(monkeypatch: pytest.MonkeyPatch, client_with) -> None:
    monkeypatch.setenv("CDS_RULES__NONPHARMACOLOGIC_FIRST_LINE__ENABLED", "false")
    client = client_with()
    request = fixture("nonpharmacologic-first-line/fires-reason-low-back-pain.json")
    assert "nonpharmacologic-first-line" not in rule_ids(client.post(SELECT, json=request).json())
    [select] = [s for s in client.get("/cds-services").json()["services"] if s["hook"] == "order-select"]
    assert "Heat and exercise first" not in select["description"]
    assert "Cyclobenzaprine: limit to 2–3 weeks" in select["description"]


def test_discovery_lists_the_enabled_checks(client_with) -> None:
    services = {s["hook"]: s for s in client_with().get("/cds-services").json()["services"]}
    assert "Heat and exercise first" in services["order-select"]["description"]
    assert "Heat and exercise first" not in services["order-sign"]["description"]  # order-select only


def test_a_service_with_no_enabled_rule_is_not_advertised(monkeypatch: pytest.MonkeyPatch, client_with) -> None:
    for rule in all_rules():
        if "order-sign" in rule.hooks:
            monkeypatch.setenv(f"CDS_RULES__{rule.id.upper().replace('-', '_')}__ENABLED", "false")
    client = client_with()
    assert [s["hook"] for s in client.get("/cds-services").json()["services"]] == ["order-select"]
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["hook"] = "order-sign"
    # As no service (a conformance review): "no advice" from a service discovery no longer lists
    # read, to an EHR that cached it, as the orders checked and clear.
    response = client.post(SIGN, json=request)
    assert response.status_code == 404, response.text
    assert "every check it runs is switched off here" in response.json()["issue"][0]["diagnostics"]


def test_thresholds_come_from_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client_with) -> None:
    config = tmp_path / "cds.toml"
    config.write_text(
        "[rules.cyclobenzaprine-duration]\nmax_days = 14\n\n[rules.cyclobenzaprine-older-adult]\nmin_age = 40\n"
    )
    monkeypatch.setenv("CDS_CONFIG_FILE", str(config))
    client = client_with()
    body = client.post(SELECT, json=fixture("cyclobenzaprine-duration/silent-21-days.json")).json()
    assert rule_ids(body) == ["cyclobenzaprine-older-adult", "cyclobenzaprine-duration"]  # 47 >= 40; 21 > 14
    [duration] = [c for c in body["cards"] if c["source"]["topic"]["code"] == "cyclobenzaprine-duration"]
    assert duration["suggestions"][0]["label"] == "Limit to 14 days (keeps 10 mg)"
    # The site's limit, not the label's "2–3 weeks" over a 21-day order (an informaticist's review).
    assert duration["summary"] == "Limit cyclobenzaprine to 14 days (this site's limit): 21 days planned"


def test_the_chronic_pain_rule_reads_its_own_older_adult_age(monkeypatch: pytest.MonkeyPatch, client_with) -> None:
    """Its tricyclic-free fibromyalgia card followed a fixed 65 where the other rules read ``min_age``."""
    request = fixture("muscle-relaxant-chronic-pain/fires-fibromyalgia-baclofen-v2.json")  # aged 47
    [card] = cards_for(client_with().post(SELECT, json=request).json(), "muscle-relaxant-chronic-pain")
    assert "amitriptyline" in card["detail"]
    monkeypatch.setenv("CDS_RULES__MUSCLE_RELAXANT_CHRONIC_PAIN__MIN_AGE", "40")
    [card] = cards_for(client_with().post(SELECT, json=request).json(), "muscle-relaxant-chronic-pain")
    assert "amitriptyline" not in card["detail"] and "no tricyclic" in card["detail"]


def test_environment_wins_over_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    config = tmp_path / "cds.toml"
    config.write_text("[rules.cyclobenzaprine-duration]\nmax_days = 14\n")
    monkeypatch.setenv("CDS_CONFIG_FILE", str(config))
    monkeypatch.setenv("CDS_RULES__CYCLOBENZAPRINE_DURATION__MAX_DAYS", "10")
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules", "--json"]) == 0
    [row] = [r for r in json.loads(capsys.readouterr().out) if r["id"] == "cyclobenzaprine-duration"]
    assert row["thresholds"] == {"max_days": 10, "cumulative_window_days": 30}


def test_the_catalog_gives_each_thresholds_range_as_start_up_holds_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    """The ranges were in the rules' Python alone; the docs' "3,650 at most" is not max_days' 365."""
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["cyclobenzaprine-duration"]["ranges"] == {"max_days": [1, 365], "cumulative_window_days": [1, 365]}
    assert rows["cyclobenzaprine-maoi"]["ranges"]["washout_days"] == [14, 365]
    assert all(set(row["ranges"]) == set(row["thresholds"]) for row in rows.values())
    config = tmp_path / "cds.toml"
    monkeypatch.setenv("CDS_CONFIG_FILE", str(config))
    for days, code in ((365, 0), (366, 2)):
        config.write_text(f"[rules.cyclobenzaprine-duration]\nmax_days = {days}\n")
        assert main(["rules", "--json"]) == code
        capsys.readouterr()


def test_a_sites_codes_are_read_by_its_own_terminology_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client_with
) -> None:
    """What a history's codes mean is kept per process (``fhir/memo.py``) and per terminology: a
    service without the site's codes, asked the same before and after one with them, still does
    not know them, and the one with them is not answered from the other's reading."""
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    condition = request["prefetch"]["conditions"]["entry"][0]["resource"]
    condition["code"] = {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.99.2.7.2.696580", "code": "LIV-77"}]}
    plain = client_with()
    assert "cyclobenzaprine-hepatic-impairment" not in rule_ids(plain.post(SELECT, json=request).json())
    local = tmp_path / "local-codes.toml"
    local.write_text(
        """
[condition.liver-disease-moderate-severe]
codes = [{ system = "urn:oid:1.2.840.114350.1.13.99.2.7.2.696580", code = "LIV-77", source = "Site build" }]
"""
    )
    monkeypatch.setenv("CDS_LOCAL_CODES_FILE", str(local))
    site = client_with()
    assert "cyclobenzaprine-hepatic-impairment" in rule_ids(site.post(SELECT, json=request).json())
    assert "cyclobenzaprine-hepatic-impairment" not in rule_ids(plain.post(SELECT, json=request).json())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[rules.cyclobenzaprine-duration]\nmax_dayz = 14\n", "rules.cyclobenzaprine-duration.max_dayz: Extra inputs"),
        (
            "[rules.cyclobenzaprine-duration]\nmax_days = 0\n",
            "rules.cyclobenzaprine-duration.max_days: Input should be",
        ),
        ("[rules.cyclobenzaprine-duration]\nenabled = 'perhaps'\n", "rules.cyclobenzaprine-duration.enabled"),
        # TOML's true was read as 1: courses limited to one day, "Limit to 1 days".
        (
            "[rules.cyclobenzaprine-duration]\nmax_days = true\n",
            "rules.cyclobenzaprine-duration.max_days: a number is needed here, not true or false",
        ),
        ("[rules.cyclobenzaprine-hepatic-impairment]\nstart_dose_mg = true\n", "start_dose_mg: a number is needed"),
        # Below the tablet the swap offers, the swap would offer what is ordered; under the
        # label's washout, the card would call a contraindicated order safe.
        (
            "[rules.cyclobenzaprine-hepatic-impairment]\nstart_dose_mg = 2\n",
            "start_dose_mg: Input should be greater than or equal to 5",
        ),
        # TOML's inf is a float: a start dose no order is above drops the 5 mg swap without a word.
        (
            "[rules.cyclobenzaprine-older-adult]\nstart_dose_mg = inf\n",
            "start_dose_mg: Input should be less than or equal to 10",
        ),
        (
            "[rules.cyclobenzaprine-hepatic-impairment]\nsublingual_start_dose_mg = 8.4\n",
            "sublingual_start_dose_mg: Input should be less than or equal to 5.6",
        ),
        (
            "[rules.cyclobenzaprine-older-adult]\nsublingual_start_dose_mg = 1.4\n",
            "sublingual_start_dose_mg: Input should be greater than or equal to 2.8",
        ),
        (
            "[rules.cyclobenzaprine-maoi]\nwashout_days = 7\n",
            "washout_days: Input should be greater than or equal to 14",
        ),
        (
            "[rules.cyclobenzaprine-maoi]\nreversible_washout_days = 20\n",
            "rules.cyclobenzaprine-maoi: reversible_washout_days is more than washout_days",
        ),
        (
            "[rules.refractory-spasm-imaging]\nprior_course_min_days = 100\n",
            "rules.refractory-spasm-imaging: prior_course_min_days is more than prior_course_max_days",
        ),
        # A window reaching back past the year 1 failed every call's date arithmetic (a 500).
        (
            "[rules.refractory-spasm-imaging]\nimaging_lookback_days = 1000000\n",
            "imaging_lookback_days: Input should be less than or equal to 3650",
        ),
        ("[rules.no-such-rule]\nenabled = false\n", "rules.no-such-rule: Extra inputs"),
        # Both spellings of one rule: the later table silently replaced the site's 14 days.
        (
            "[rules.cyclobenzaprine-duration]\nmax_days = 14\n[rules.cyclobenzaprine_duration]\nenabled = true\n",
            "one rule's table written twice: rules.cyclobenzaprine-duration, rules.cyclobenzaprine_duration",
        ),
        # A misspelled setting was ignored: the service ran on the default it meant to change.
        ("retention_dayz = 200\nbogus = 1\n", "CDS_CONFIG_FILE: not settings: bogus, retention_dayz"),
        ("[rules\n", "cds.toml): Expected ']'"),  # the file named
        # Accepted, then start-up's sweep could not count a million days back (a traceback).
        ("retention_days = 1000000\n", "retention_days: Input should be less than or equal to 36500"),
        # Room for the two notices, one card and the card counting the rest: at three, no card.
        ("max_cards = 3\n", "max_cards: Input should be greater than or equal to 4"),
        # Read by logging.setLevel alone, an unknown level ended start-up in a traceback (exit 1).
        ('log_level = "verbose"\n', "log_level: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        # Two of the five older-adult ages took 0, and read every adult as an older one.
        (
            "[rules.muscle-relaxant-older-adult]\nmin_age = 0\n",
            "rules.muscle-relaxant-older-adult.min_age: Input should be greater than or equal to 18",
        ),
        # A snooze rests on stored feedback, which retention would delete first.
        ("retention_days = 20\n", "snooze_days is 30, longer than retention_days (20)"),
        (
            "[rules.cyclobenzaprine-duration]\nsnooze_days = 500\n",
            "rules.cyclobenzaprine-duration.snooze_days is 500, longer than retention_days (400)",
        ),
    ],
)
def test_invalid_configuration_stops_start_up_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys, content: str, message: str
) -> None:
    err = refused(monkeypatch, capsys, CDS_CONFIG_FILE=config_file(tmp_path, content))
    assert "invalid configuration" in err and message in err, err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('public_url = ["https://ops:hunter2-pw@cds.example.org/x"]\n', "'https://***@cds.example.org/x' must not"),
        ('fhir_servers = ["https://ops:hunter2-pw@fhir.example.org"]\n', "'https://***@fhir.example.org' must not"),
        ('fhir_servers = ["http://ops:hunter2-pw@fhir.example.org"]\n', "'http://***@fhir.example.org' must not"),
        # However mistyped: no scheme, one slash, a "/" unencoded in the password (a code review).
        ('public_url = ["ops:hunter2-pw@cds.example.org"]\n', "'***@cds.example.org'"),
        ('public_url = ["https:/ops:hunter2-pw@cds.example.org"]\n', "'https:/***@cds.example.org'"),
        ('fhir_servers = ["https://ops:hunter2/pw@fhir.example.org"]\n', "'https://***@fhir.example.org'"),
    ],
)
def test_a_url_refused_for_its_credentials_is_repeated_without_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys, content: str, message: str
) -> None:
    """The error is printed, and kept by whatever runs the service: it named the password it
    refused (a security review)."""
    err = refused(monkeypatch, capsys, CDS_CONFIG_FILE=config_file(tmp_path, content))
    assert message in err and "hunter2" not in err and "ops" not in err, err


@pytest.mark.parametrize(("given", "level"), [("warn", "WARNING"), ("Fatal", "CRITICAL"), ("debug", "DEBUG")])
def test_a_log_level_is_read_in_any_case_and_by_its_usual_other_names(
    monkeypatch: pytest.MonkeyPatch, capsys, given: str, level: str
) -> None:
    """As the logging module reads them: a level that worked before it was checked still does."""
    monkeypatch.setenv("CDS_LOG_LEVEL", given)
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules"]) == 0, capsys.readouterr().err
    assert read_settings().log_level == level


def test_a_config_file_not_in_utf8_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    """TOML is UTF-8; a file saved as Windows-1252 (a comment's "é") ended in a traceback."""
    config = tmp_path / "cds.toml"
    config.write_bytes("# Site: Hôpital\nretention_days = 200\n".encode("cp1252"))
    monkeypatch.setenv("CDS_CONFIG_FILE", str(config))
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cds-service: invalid configuration: CDS_CONFIG_FILE ({config}): 'utf-8' codec"), err


def test_a_config_file_saved_with_a_byte_order_mark_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    """Some Windows editors begin a UTF-8 file with one: the file was refused with TOML's own
    "Invalid statement (at line 1, column 1)", though the content files read it."""
    config = tmp_path / "cds.toml"
    config.write_bytes("\ufeff# Site: Hôpital\n[rules.cyclobenzaprine-duration]\nmax_days = 14\n".encode())
    monkeypatch.setenv("CDS_CONFIG_FILE", str(config))
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules", "--json"]) == 0, capsys.readouterr().err
    [row] = [r for r in json.loads(capsys.readouterr().out) if r["id"] == "cyclobenzaprine-duration"]
    assert row["thresholds"]["max_days"] == 14


@pytest.mark.parametrize("variable", ["CDS_FHIR_SERVERS", "CDS_CORS_ORIGINS"])
def test_a_list_setting_not_written_as_json_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys, variable: str
) -> None:
    """``CDS_FHIR_SERVERS=loopback`` ended in a Python traceback, not the one-line message."""
    err = refused(monkeypatch, capsys, **{variable: "loopback"})
    assert err.startswith("cds-service: invalid configuration:") and variable.lower()[4:] in err, err
    assert "Traceback" not in err and "JSON" in err


def test_private_network_access_for_every_origin_stops_start_up_naming_both_settings(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """With ``["*"]`` every origin's preflight passes, so Private Network Access went to any web
    page (``null`` too): docs/security.md said a refused origin never gets it, and none was."""
    err = refused(monkeypatch, capsys, CDS_CORS_ORIGINS='["*"]', CDS_CORS_PRIVATE_NETWORK="true")
    assert err == (
        'cds-service: invalid configuration: cors_origins "*" with cors_private_network lets any web page in; '
        "list origins (set by CDS_CORS_ORIGINS; set by CDS_CORS_PRIVATE_NETWORK)\n"
    ), err
    # Either alone starts: every origin without it, or it for the origins named.
    for origins, private in (('["*"]', "false"), ('["https://sandbox.cds-hooks.org"]', "true")):
        monkeypatch.setenv("CDS_CORS_ORIGINS", origins)
        monkeypatch.setenv("CDS_CORS_PRIVATE_NETWORK", private)
        assert main(["rules", "--json"]) == 0, capsys.readouterr().err


def test_a_rule_id_written_with_hyphens_in_a_variable_is_refused_saying_how_to_write_it(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """It was refused as "rules.cyclobenzaprine-duration: Extra inputs are not permitted", a
    valid rule id named as unknown (an informaticist's review)."""
    err = refused(monkeypatch, capsys, **{"CDS_RULES__CYCLOBENZAPRINE-DURATION__MAX_DAYS": "14"})
    assert (
        "CDS_RULES__CYCLOBENZAPRINE-DURATION__MAX_DAYS: a rule id in a variable's name is written with _ for - "
        "(CDS_RULES__CYCLOBENZAPRINE_DURATION__MAX_DAYS)"
    ) in err


@pytest.mark.parametrize("by_variable", [True, False], ids=["variable", "file"])
def test_a_refused_threshold_says_where_it_was_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys, by_variable: bool
) -> None:
    """A site keeping both looked for it in the wrong one (an informaticist's review)."""
    config = config_file(tmp_path, "[rules.cyclobenzaprine-duration]\nmax_days = 0\n")
    variable = {"CDS_RULES__CYCLOBENZAPRINE_DURATION__MAX_DAYS": "400"} if by_variable else {}
    err = refused(monkeypatch, capsys, CDS_CONFIG_FILE=config, **variable)
    if by_variable:
        said = "less than or equal to 365 (set by CDS_RULES__CYCLOBENZAPRINE_DURATION__MAX_DAYS)"
    else:
        said = f"greater than or equal to 1 (set in CDS_CONFIG_FILE ({config}))"
    assert err.endswith(f"rules.cyclobenzaprine-duration.max_days: Input should be {said}\n")


def test_a_variable_set_empty_is_unset(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """As CDS_CONFIG_FILE always was: ``CDS_CARDS_DIR=`` read the current directory's cards, and
    ``CDS_LOCAL_CODES_FILE=`` stopped start-up on "Is a directory: '.'" (an informaticist's review)."""
    for name in ("CDS_CARDS_DIR", "CDS_LOCAL_CODES_FILE", "CDS_DATA_DIR", "CDS_AUTH_MODE", "CDS_CONFIG_FILE"):
        monkeypatch.setenv(name, "")
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules", "--json"]) == 0, capsys.readouterr().err
    assert read_settings().data_dir == Path("var") and read_settings().auth_mode == "required"


def test_missing_config_file_stops_start_up(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("CDS_CONFIG_FILE", "/no/such/cds.toml")
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["serve"]) == 2
    assert "CDS_CONFIG_FILE: no file at /no/such/cds.toml" in capsys.readouterr().err


# This Python's sqlite3 as one linked against RHEL 8's SQLite 3.26, then the command line.
_OLD_SQLITE = """
import sqlite3, sys
sqlite3.sqlite_version_info, sqlite3.sqlite_version = (3, 26, 0), "3.26.0"
from cds_service.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [["serve", "--port"], ["report"]], ids=["serve", "report"])
def test_a_sqlite_without_returning_stops_start_up_naming_the_setting(tmp_path: Path, command: list[str]) -> None:
    """SQLite before 3.35 has no RETURNING: the service started, and its first feedback failed
    with a 500."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    environment |= {"CDS_DATA_DIR": str(tmp_path), "CDS_AUTH_MODE": "off"}
    argv = [*command, str(free_port())] if command[0] == "serve" else command
    done = subprocess.run(
        [sys.executable, "-c", _OLD_SQLITE, *argv], capture_output=True, text=True, env=environment, timeout=60
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.endswith(
        "cds-service: invalid configuration: CDS_DATABASE_URL: a SQLite database needs SQLite 3.35 or later, and "
        "this Python's is 3.26.0: set CDS_DATABASE_URL to PostgreSQL, or run a Python built with a newer SQLite\n"
    ), done.stderr[-3000:]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url, s3cret", "CDS_DATABASE_URL: not a database URL the service knows; write sqlite:///path or"),
        ("postgres://u:s3cret@db/cds", "CDS_DATABASE_URL: not a database URL the service knows"),
        ("postgresql://u:s3cret@h1:5432,h2:5433/db", "CDS_DATABASE_URL: not a database URL the service knows"),
        ("postgresql://u@db:s3cret/cds", "CDS_DATABASE_URL: not a database URL the service knows"),  # a port
        ("sqlite://", "CDS_DATABASE_URL: an in-memory SQLite database keeps nothing; name a file"),
        ("sqlite:///:memory:", "CDS_DATABASE_URL: an in-memory SQLite database keeps nothing; name a file"),
        ("mysql://u:s3cret@db/cds", "CDS_DATABASE_URL: the service runs on sqlite:///path or"),
        (
            "postgresql+asyncpg://u:s3cret@db/cds",
            "postgresql+psycopg://user:password@host:5432/db, not postgresql+asyncpg://",
        ),
        ("sqlite:///{data}/cds.db?timeout=s3cret", "CDS_DATABASE_URL: an option of the wrong type for the driver"),
    ],
)
def test_a_database_url_the_service_cannot_run_on_stops_start_up_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys, url: str, message: str
) -> None:
    """Each ended in a traceback (SQLAlchemy's parser, or a driver not installed); never the URL: it may hold a password."""
    monkeypatch.setenv("CDS_DATABASE_URL", url.format(data=tmp_path))
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cds-service: invalid configuration: ") and message in err, err
    assert "s3cret" not in err


def test_a_postgresql_url_without_a_driver_runs_on_psycopg(
    monkeypatch: pytest.MonkeyPatch, postgresql_url: str, tmp_path: Path, capsys
) -> None:
    """``postgresql://``, as PostgreSQL's own tools write it: SQLAlchemy 2.0 (the floor, which
    ``make floors`` installs) reads it as psycopg2, which is not installed (the service's driver is
    psycopg 3); SQLAlchemy 2.1 reads it as psycopg itself, so this fails only on the floor."""
    monkeypatch.setenv("CDS_DATABASE_URL", postgresql_url.replace("postgresql+psycopg://", "postgresql://", 1))
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["migrate"]) == 0, capsys.readouterr().err
    assert main(["report"]) == 0, capsys.readouterr().err
    assert "No alerts were issued" in capsys.readouterr().out


def test_the_example_config_holds_the_defaults() -> None:
    example = tomllib.loads((PROJECT_ROOT / "config.example.toml").read_text())["rules"]
    assert set(example) == {rule.id for rule in all_rules()}
    for rule in all_rules():
        # snooze_days is unset by default (TOML has no null): the file's header documents it.
        assert example[rule.id] == rule.config().model_dump(exclude_none=True), rule.id


def test_rules_command_lists_all_seventeen(capsys) -> None:
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for rule in all_rules():
        assert rule.id in out
    # Which files are in force, after the table (an informaticist's review).
    footer = "\ncard text: shipped\nterminology: shipped\nlocal codes: none\nconfiguration file: none\n"
    # And what `serve` warns of at start-up: here the zone, left unset.
    assert out.endswith(
        f"{footer}caution: CDS_TIMEZONE is not set: the rules count days (washouts, courses, onsets) in UTC; "
        "set the site's zone, e.g. America/New_York (docs/configuration.md)\n"
    ), out[-400:]
    assert main(["rules", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 17
    [duration] = [r for r in rows if r["id"] == "cyclobenzaprine-duration"]
    assert duration == {
        "id": "cyclobenzaprine-duration",
        "indicators": ["warning", "info"],
        "summary": "Cyclobenzaprine: limit to 2–3 weeks",
        "evidence": ["FDA-IR", "FDA-ER", "FAIL"],
        "hooks": ["order-select", "order-sign"],
        "enabled": True,
        "snooze_days": 30,
        "thresholds": {"max_days": 21, "cumulative_window_days": 30},
        "ranges": {"max_days": [1, 365], "cumulative_window_days": [1, 365]},
    }


def test_the_catalog_tells_a_snooze_turned_off_from_a_rule_that_never_snoozes(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Both printed "-": "never" is a site's choice (snooze_days = 0), "-" a rule of critical cards only."""
    monkeypatch.setenv("CDS_RULES__CYCLOBENZAPRINE_DURATION__SNOOZE_DAYS", "0")
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules", "--markdown"]) == 0
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in capsys.readouterr().out.splitlines()}
    assert rows["cyclobenzaprine-duration"][6] == "never"
    assert rows["tizanidine-cyp1a2-inhibitor"][6] == "-"
    assert rows["cyclobenzaprine-hepatic-impairment"][6] == "30 days"
    assert rows["cyclobenzaprine-maoi"][6] == "never"  # shipped so: its warnings ask if one is still taken
    # Their cards are about what else the patient takes or has: snoozed for what they named alone.
    for rule_id in ("cyclobenzaprine-serotonergic", "muscle-relaxant-cns-depressant"):
        assert rows[rule_id][6] == "30 days"
    for rule_id in ("muscle-relaxant-duplicate", "cyclobenzaprine-anticholinergic-caution", "back-pain-red-flag"):
        assert rows[rule_id][6] == "30 days"


def test_readme_rule_table_is_the_catalog(capsys) -> None:
    assert main(["rules", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("<!-- rules:start", 1)[1].split("-->", 1)[1].split("<!-- rules:end -->", 1)[0]
    assert section.strip() == table


# --- a site's local codes ----------------------------------------------------------------


def test_local_codes_extend_concepts_and_products(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client_with) -> None:
    local = tmp_path / "local-codes.toml"
    local.write_text(
        """
[condition.liver-disease-moderate-severe]
codes = [{ system = "urn:oid:1.2.840.114350.1.13.99.2.7.2.696580", code = "LIV-77", display = "Cirrhosis, decompensated", source = "Site problem list build 2026-10" }]

[[products]]
system = "urn:oid:1.2.840.114350.1.13.99.2.7.2.698288"
code = "EPIC-10013"
rxnorm = "828348"
source = "Site formulary 2026-10"
"""
    )
    monkeypatch.setenv("CDS_LOCAL_CODES_FILE", str(local))
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    condition = request["prefetch"]["conditions"]["entry"][0]["resource"]
    condition["code"] = {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.99.2.7.2.696580", "code": "LIV-77"}]}
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {
        "coding": [{"system": "urn:oid:1.2.840.114350.1.13.99.2.7.2.698288", "code": "EPIC-10013"}],
        "text": "CYCLO 10 TAB",
    }
    body = client_with().post(SELECT, json=request).json()
    # The local product is cyclobenzaprine 10 mg; the local condition is moderate-to-severe liver disease.
    assert rule_ids(body) == ["cyclobenzaprine-hepatic-impairment"]
    assert body["cards"][0]["indicator"] == "critical"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "[condition.liver-disease]\ncodes = [{ system = 'x', code = 'y' }]\n",
            "condition.liver-disease code y has no source",
        ),
        ("[condition.no-such-concept]\ncodes = []\n", "condition.no-such-concept is not a concept"),
        (
            "[[products]]\nsystem = 'x'\ncode = 'y'\nrxnorm = '000'\nsource = 's'\n",
            "rxnorm '000' is not a known product",
        ),
        # Each silently accepted: the last mapping won, or the shipped 5 mg tablet became 10 mg.
        (
            "[[products]]\nsystem = 'x'\ncode = '10013'\nrxnorm = '828348'\nsource = 's'\n"
            "[[products]]\nsystem = 'x'\ncode = '10013'\nrxnorm = '828320'\nsource = 's'\n",
            "products[1]: x|10013 is mapped twice",
        ),
        (
            "[[products]]\nsystem = 'http://www.nlm.nih.gov/research/umls/rxnorm'\ncode = '828320'\n"
            "rxnorm = '828348'\nsource = 's'\n",
            "products[0]: an RxNorm code is read as itself",
        ),
        # A misspelt key matched nothing; a number or a missing field was a traceback.
        ("[condition.liver-disease]\ncode = [{ system = 'x', code = 'y', source = 's' }]\n", "unknown keys ['code']"),
        ("[[products]]\nsystem = 'x'\ncode = 'y'\nrxnorm = '828348'\nsource = 's'\nsorce = 't'\n", "unknown keys"),
        ("[[products]]\ncode = 'y'\nrxnorm = '828348'\nsource = 's'\n", "products[0]: system must be a non-empty"),
        (
            "[[products]]\nsystem = ' '\ncode = 'y'\nrxnorm = '828348'\nsource = 's'\n",
            "products[0]: system must be a non-empty",
        ),
        (
            "[condition.liver-disease]\ncodes = [{ system = 'x', code = 12, source = 's' }]\n",
            "condition.liver-disease.codes: code must be a non-empty string",
        ),
        ("[[products]]\nsystem = 'x'\ncode = 10013\nrxnorm = '828348'\nsource = 's'\n", "code must be a non-empty"),
        ("[[products]]\nsystem = 'x'\ncode = 'y'\nsource = 's'\n", "products[0]: rxnorm must be a non-empty"),
        # Where a mapping came from is what an audit of it starts with.
        ("[[products]]\nsystem = 'x'\ncode = 'y'\nrxnorm = '828348'\n", "products[0]: source must be a non-empty"),
        ("[medication.maoi]\ncodes = []\n", "unknown sections ['medication']"),
        # The brand won: the 10 mg tablet read as the sublingual product, exempt from the duration card.
        (
            "[[products]]\nsystem = 'x'\ncode = 'y'\nrxnorm = '828348'\nbrand = 'Tonmya'\nsource = 's'\n",
            "products[0]: give rxnorm or brand, not both",
        ),
    ],
)
def test_invalid_local_codes_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys, content: str, message: str
) -> None:
    local = tmp_path / "local-codes.toml"
    local.write_text(content)
    monkeypatch.setenv("CDS_LOCAL_CODES_FILE", str(local))
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules"]) == 2
    assert message in capsys.readouterr().err
