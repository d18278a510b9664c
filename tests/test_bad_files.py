"""A file or setting the service cannot use stops the start in one line that names it (and never
a value that may be secret), not a traceback: site content in the wrong encoding or shape, the
data directory, the patient-id key, the database URL and the database it names, a request piped to
``evaluate``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from cds_service.cli import main
from cds_service.rules import all_rules
from cds_service.settings import Settings, read_settings
from cds_service.storage.migrations import SCHEMA_VERSION
from cds_service.storage.store import open_store
from tests.conftest import fixture
from tests.feedback_calls import keyed_as_before_version_14
from tests.serving import free_port, serve

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def make_database(data_dir: Path) -> None:
    """The service's database in ``data_dir``, at this release's schema, as a first start makes it."""
    open_store(Settings(data_dir=data_dir)).engine.dispose()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys):
    """``cds-service`` with only the given settings: its exit code, standard error and output."""

    def run(*argv: str, **settings: str) -> tuple[int, str, str]:
        monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path / "var"))
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, err, out

    return run


def _cp1252(path: Path) -> None:
    """The file as a Windows editor may save it before it is copied to the server: a note with an
    accent, in Windows-1252, not UTF-8."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":  # no comments in JSON: the accent goes into a string
        text = text.replace('"display": "', '"display": "Hôpital ', 1)
    else:
        text = "# Reviewed for the Hôpital site\n" + text
    path.write_bytes(text.encode("cp1252"))


@pytest.mark.parametrize(
    "file",
    [
        "cyclobenzaprine-duration.toml",
        "evidence.toml",
        "override-reasons.toml",
        "terminology/concepts.toml",
        "terminology/rxnorm-products.tsv",
        "terminology/valuesets/2.16.840.1.113762.1.4.1047.42.json",
    ],
)
def test_content_not_in_utf8_stops_start_up_naming_the_file(cli, cards: Path, file: str) -> None:
    """A file that was not UTF-8 ended in a traceback."""
    _cp1252(cards / file)
    code, err, _ = cli("rules", CDS_CARDS_DIR=str(cards))
    assert code == 2 and err.startswith("cds-service: invalid clinical content:") and "codec can't decode" in err, err
    assert Path(file).name in err


# Every file the service reads at start-up, with Python told to warn of a text file opened in the
# machine's default encoding rather than one named.
_EVERY_FILE = """
import sys
from pathlib import Path
from fastapi.testclient import TestClient
from cds_service.app import create_app
from cds_service.settings import Settings

data, clients, codes = map(Path, sys.argv[1:])
with TestClient(create_app(Settings(data_dir=data, trusted_clients_file=clients, local_codes_file=codes))) as client:
    assert client.get("/healthz").status_code == 200
"""


def test_every_file_is_read_as_utf8_whatever_the_machines_encoding(tmp_path: Path) -> None:
    """Read in the locale's encoding, card text ("2–3 weeks") would be garbled on a machine whose
    locale is not UTF-8: Python warns of every text file opened without one named."""
    clients = tmp_path / "clients.json"
    clients.write_text('[{"iss": "https://ehr.example.org", "jwks": {"keys": []}}]', encoding="utf-8")
    codes = tmp_path / "local-codes.toml"
    codes.write_text("# Hôpital\n", encoding="utf-8")
    command = [sys.executable, "-X", "warn_default_encoding", "-c", _EVERY_FILE, str(tmp_path / "var"), str(clients)]
    done = subprocess.run([*command, str(codes)], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    ours = [line for line in done.stderr.splitlines() if "EncodingWarning" in line and "cds_service" in line]
    assert ours == []


@pytest.mark.parametrize(
    "file",
    ["cyclobenzaprine-duration.toml", "evidence.toml", "terminology/concepts.toml", "terminology/rxnorm-products.tsv"],
)
def test_content_saved_with_a_byte_order_mark_is_read(cli, cards: Path, file: str) -> None:
    """Some Windows editors begin a UTF-8 file with a byte-order mark, which TOML refused as
    "Invalid statement (at line 1, column 1)" and the product table read into its first column."""
    path = cards / file
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    code, err, out = cli("rules", "--json", CDS_CARDS_DIR=str(cards))
    assert code == 0, err
    assert [row["id"] for row in json.loads(out)] == [rule.id for rule in all_rules()]


def test_serve_opens_no_file_in_the_machines_encoding(tmp_path: Path) -> None:
    """The serving lock and the rest of ``serve``'s start (``claim`` runs in ``serve`` only)."""
    server, _ = serve(tmp_path, CDS_AUTH_MODE="off", PYTHONWARNDEFAULTENCODING="1")
    server.terminate()
    output = server.communicate(timeout=30)[0].decode()
    assert "Application startup complete" in output, output[-3000:]
    assert [line for line in output.splitlines() if "EncodingWarning" in line and "cds_service" in line] == []


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "terminology/valuesets/2.16.840.1.113762.1.4.1047.42.json",
            '"contains": [',
            '"contains": 5, "was": [',
            "1047.42.json: not a value set expansion (expansion.contains, a list of codes)",
        ),
        (
            "terminology/valuesets/2.16.840.1.113762.1.4.1047.42.json",
            '"contains": [',
            '"contains": [5, ',
            "1047.42.json: not a value set expansion (expansion.contains, a list of codes)",
        ),
        ("evidence.toml", "label = ", "title = ", "evidence.toml: every entry needs a label and a citation"),
    ],
)
def test_content_of_the_wrong_shape_stops_start_up_naming_the_file(
    cli, cards: Path, file: str, old: str, new: str, message: str
) -> None:
    """Each ended in a TypeError or KeyError traceback."""
    path = cards / file
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    code, err, _ = cli("rules", CDS_CARDS_DIR=str(cards))
    assert code == 2 and err.startswith("cds-service: invalid clinical content:") and message in err, err


def test_a_data_directory_that_is_a_file_stops_start_up_naming_it(cli, tmp_path: Path) -> None:
    (tmp_path / "data").write_text("", encoding="utf-8")
    code, err, _ = cli("serve", "--port", str(free_port()), CDS_DATA_DIR=str(tmp_path / "data"), CDS_AUTH_MODE="off")
    assert code == 2 and err.startswith("cds-service: invalid configuration: CDS_DATA_DIR: cannot make"), err


def test_an_empty_patient_id_key_stops_start_up(cli, tmp_path: Path) -> None:
    """An empty key was used as it was: a patient's stored hash could then be reversed by hashing
    every likely id, which the key exists to prevent."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "patient-id.key").write_bytes(b"\n")
    code, err, _ = cli("serve", "--port", str(free_port()), CDS_AUTH_MODE="off")
    assert code == 2 and "patient-id.key is empty: restore it from a backup" in err, err


@pytest.mark.parametrize("configured", [True, False], ids=["variable", "file"])
def test_a_patient_id_key_too_short_stops_start_up(cli, tmp_path: Path, configured: bool) -> None:
    """A key of "x" was taken: hashes under it could be reversed as under an empty one (an
    operator's review). The message gives its length, never the key."""
    (tmp_path / "var").mkdir()
    if configured:
        code, err, _ = cli("serve", "--port", str(free_port()), CDS_PATIENT_ID_KEY="weak-key-x", CDS_AUTH_MODE="off")
        assert code == 2 and "CDS_PATIENT_ID_KEY: shorter than 16 characters" in err and "weak-key-x" not in err, err
    else:
        (tmp_path / "var" / "patient-id.key").write_bytes(b"weak-key-x\n")
        code, err, _ = cli("serve", "--port", str(free_port()), CDS_AUTH_MODE="off")
        assert code == 2 and "patient-id.key is shorter than 16 characters" in err and "weak-key-x" not in err, err


@pytest.mark.parametrize("directory", ["", "terminology/concepts"])
def test_a_content_directory_that_cannot_be_listed_stops_start_up_naming_it(
    cli, cards: Path, monkeypatch: pytest.MonkeyPatch, directory: str
) -> None:
    """Entered but not listed (mode ``--x``: its named files read, a listing refused) ended in a
    PermissionError traceback. Injected: the tests run as root, whom no mode stops."""
    unlistable = cards / directory if directory else cards
    listing = Path.iterdir

    def iterdir(path: Path):  # type: ignore[no-untyped-def]
        if path == unlistable:
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    code, err, _ = cli("rules", CDS_CARDS_DIR=str(cards))
    assert (
        code == 2 and err == f"cds-service: invalid clinical content: {unlistable}: cannot list it: Permission denied\n"
    )


@pytest.mark.parametrize("command", ["serve", "report"])
def test_a_database_file_that_is_a_directory_stops_start_up_naming_it(cli, tmp_path: Path, command: str) -> None:
    """SQLite said only "unable to open database file", in a traceback."""
    (tmp_path / "var" / "cds-service.db").mkdir(parents=True)
    code, err, _ = cli(command, CDS_AUTH_MODE="off")
    assert code == 2, err
    assert err == (
        "cds-service: invalid configuration: CDS_DATABASE_URL (or CDS_DATA_DIR, when it is unset): "
        f"{tmp_path / 'var' / 'cds-service.db'} is a directory, not a database file\n"
    )


@pytest.fixture
def unwritable(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Makes a path one this process's user cannot write, as a file or directory of another user,
    a read-only mode or a read-only mount do. Injected: the tests run as root, whom no mode stops."""
    denied: set[Path] = set()
    access = os.access

    def checked(path: Any, mode: int, **options: Any) -> bool:
        return not (mode & os.W_OK and Path(path) in denied) and access(path, mode, **options)

    monkeypatch.setattr(os, "access", checked)
    return denied.add


@pytest.mark.parametrize("command", ["serve", "migrate"])
@pytest.mark.parametrize(
    "name", ["cds-service.db", "cds-service.db.migrate.lock", ""], ids=["file", "lock", "directory"]
)
def test_a_sqlite_database_the_service_cannot_write_stops_serve_and_migrate_naming_it(
    cli, unwritable: Callable[[Path], None], tmp_path: Path, command: str, name: str
) -> None:
    """Served, it answered hook calls, ``/readyz`` said 503 and every card record and feedback was
    lost until shutdown (a backup restored as another user, a read-only volume); a migration went
    on as if it could write. Nothing mends it but the operator: exit 2, as every setting that cannot
    work, not 3 for a supervisor to retry. ``cds-service report`` only reads: it reads it."""
    make_database(tmp_path / "var")
    unwritable(tmp_path / "var" / name)
    code, err, _ = cli(command, CDS_AUTH_MODE="off")
    said = "cds-service: invalid configuration: CDS_DATABASE_URL (or CDS_DATA_DIR, when it is unset): "
    if name:
        said += (
            f"the user the service runs as cannot write {tmp_path / 'var' / name}: give that user write access to it "
            "(chown or chmod); `cds-service report` reads a database as it is\n"
        )
    else:
        said += (
            f"the user the service runs as cannot write in {tmp_path / 'var'}, where SQLite makes cds-service.db-wal "
            "and -shm beside the database: give that user write access to the directory\n"
        )
    assert (code, err) == (2, said)
    code, err, out = cli("report")
    assert code == 0 and "No alerts were issued" in out, err


def test_a_database_file_that_is_no_database_stops_start_up_naming_it(cli, tmp_path: Path) -> None:
    """A file of something else at the database's path (a restore gone wrong) ended in a traceback;
    it is left as it was, not overwritten."""
    database = tmp_path / "var" / "cds-service.db"
    database.parent.mkdir()
    database.write_bytes(b"not a database " * 100)
    code, err, _ = cli("report")
    assert (
        code == 3
        and err == f"cds-service: cannot start on the database {database}: SQLITE_NOTADB: file is not a database\n"
    )
    assert database.read_bytes() == b"not a database " * 100


def test_a_migration_lock_that_cannot_be_opened_stops_start_up_in_one_line(cli, tmp_path: Path) -> None:
    """The lock file beside the SQLite file, not writable (here a directory: the tests run as
    root): it was a traceback, exit 1. ``cds-service report`` takes no lock (it migrates
    nothing, and a backup's directory may be read-only): it reads the database all the same."""
    make_database(tmp_path / "var")
    lock = tmp_path / "var" / "cds-service.db.migrate.lock"
    lock.unlink()
    lock.mkdir()
    code, err, _ = cli("migrate")
    database = tmp_path / "var" / "cds-service.db"
    assert (code, err) == (3, f"cds-service: cannot start on the database {database}: Is a directory: {lock}\n")
    assert cli("report")[0] == 0


def test_a_report_past_the_statement_timeout_is_one_line(cli, postgresql_url: str) -> None:
    """A table held by another transaction (a long migration, an operator's lock): the report's
    read is cancelled at the statement timeout, told in one line, exit 3 (it was a traceback)."""
    assert cli("migrate", CDS_DATABASE_URL=postgresql_url)[0] == 0
    holder = create_engine(postgresql_url).connect()
    holder.execute(text("LOCK TABLE feedback"))
    try:
        code, err, _ = cli("report", CDS_DATABASE_URL=postgresql_url, CDS_DATABASE_STATEMENT_TIMEOUT_SECONDS="1")
    finally:
        holder.rollback()
        holder.close()
    assert code == 3 and err.startswith("cds-service: cannot start on the database ") and err.count("\n") == 1, err
    assert "QueryCanceled 57014" in err, err


def test_an_emptied_schema_version_table_stops_start_up_in_one_line(cli, tmp_path: Path) -> None:
    """Which steps the database has cannot be told (it was a TypeError's traceback)."""
    make_database(tmp_path / "var")
    database = tmp_path / "var" / "cds-service.db"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("DELETE FROM schema_version")
    code, err, _ = cli("report")
    assert (code, err) == (
        3,
        f"cds-service: cannot start on the database {database}: its schema_version table is empty: restore it, "
        "or the database, from a backup\n",
    )


def test_a_database_at_a_newer_schema_stops_start_up_and_is_left_as_it_is(cli, tmp_path: Path) -> None:
    """A rollback to the release before, on a database the next release migrated: refused in one
    line (it was a traceback), for the operator to restore the database from before the upgrade."""
    make_database(tmp_path / "var")  # at this release's schema
    database = tmp_path / "var" / "cds-service.db"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, 'next release', '2027-01-01')",
            (SCHEMA_VERSION + 1,),
        )
    code, err, _ = cli("report")
    assert code == 3 and err == (
        f"cds-service: cannot start on the database {database}: it is at schema version {SCHEMA_VERSION + 1}, "
        "newer than this service's\n"
    )
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone() == (SCHEMA_VERSION + 1,)


def test_a_migrations_own_error_keeps_its_traceback(cli, tmp_path: Path) -> None:
    """A database error that is no deployment's (here a step applied twice: version 8's "duplicate
    column") is a bug to be seen whole, not a line that a supervisor retries for ever."""
    make_database(tmp_path / "var")
    with closing(sqlite3.connect(tmp_path / "var" / "cds-service.db")) as connection, connection:
        connection.execute("UPDATE schema_version SET version = 7 WHERE version = ?", (SCHEMA_VERSION,))
    with pytest.raises(OperationalError, match="duplicate column"):
        cli("migrate")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://cds:s3cret@no-such-host.invalid/cds", "failed to resolve host 'no-such-host.invalid'"),
        ("postgresql://cds:s3cret@127.0.0.1:1/cds?sslmode=require&password=s3cret", "Connection refused"),
    ],
    ids=["host-unknown", "password-in-query"],
)
def test_a_database_url_that_leads_nowhere_names_why_and_no_password(cli, url: str, said: str) -> None:
    code, err, _ = cli("report", CDS_DATABASE_URL=url)
    assert code == 3 and said in err and "s3cret" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "url", ["postgresql://cds:p@ss3cret@127.0.0.1:1/cds", "postgresql://cds:s3cr@tPART/xyz@db.example.internal/cds"]
)
def test_a_password_with_an_unescaped_at_sign_is_refused_without_showing_it(cli, url: str) -> None:
    """``p@ss`` unescaped: part of the password was read as the host, and named in the message."""
    code, err, _ = cli("report", CDS_DATABASE_URL=url)
    said = "cds-service: invalid configuration: CDS_DATABASE_URL: write an @ in the password as %40\n"
    assert code == 2 and err == said


def test_a_database_server_out_of_reach_stops_start_up_naming_it(cli) -> None:
    """Nothing listens on port 1: the start fails for now (3), for a supervisor to retry, in one
    line with libpq's own words and without the URL's password. Needs no server."""
    code, err, _ = cli("report", CDS_DATABASE_URL="postgresql://cds:s3cret@127.0.0.1:1/cds")
    assert code == 3, err
    assert err.startswith("cds-service: cannot start on the database 127.0.0.1:1/cds (CDS_DATABASE_URL): ")
    assert "Connection refused" in err and "s3cret" not in err and err.count("\n") == 1, err


UNNAMED = "an unknown connection option, not named: it may be part of a password, whose & is written %26"


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("passwrd=s3cret", f'{UNNAMED} (did you mean "password"?)'),
        ("sslmod=require&password=s3cret", f'{UNNAMED} (did you mean "sslmode"?)'),
        # An & in a password not written %26: the name libpq reads is the password's tail.
        ("password=s3c&ret=1", UNNAMED),
        ("password=s3c&report=1", f'{UNNAMED} (did you mean "port"?)'),  # a tail close to an option
        ("s3cret=1", UNNAMED),
    ],
)
def test_an_unknown_connection_option_is_said_and_never_named(cli, option: str, said: str) -> None:
    """libpq refuses an option it does not know before connecting; told as "ProgrammingError"
    alone, nobody could see why. Its name is never shown (it may be part of a password); the
    option of libpq's own that it is close to is. Needs no server."""
    code, err, _ = cli("report", CDS_DATABASE_URL=f"postgresql://cds@127.0.0.1:1/cds?{option}")
    assert code == 3, err
    assert err.startswith("cds-service: cannot start on the database 127.0.0.1:1/cds (CDS_DATABASE_URL): ")
    assert err.endswith(f"ProgrammingError: {said}\n"), err
    assert "s3c" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("keepalives=s3cret", "value (not repeated) for connection option"),
        ("sslmode=require&keepalives_idle=s3cret", "value (not repeated) for connection option"),
        ("sslmode=s3cret", "invalid sslmode value: (not repeated)"),  # libpq's other wording
    ],
)
def test_an_option_of_the_wrong_type_is_said_without_its_value(cli, option: str, said: str) -> None:
    """libpq's "invalid integer value "s3cret" for connection option …" quoted the value, which
    may be a password's tail as an unknown option's name may. Needs no server."""
    code, err, _ = cli("report", CDS_DATABASE_URL=f"postgresql://cds@127.0.0.1:1/cds?{option}")
    assert code == 3, err
    assert err.startswith("cds-service: cannot start on the database 127.0.0.1:1/cds (CDS_DATABASE_URL): ")
    assert said in err and "s3c" not in err, err


def test_a_port_option_that_is_no_number_is_said_without_its_value(cli) -> None:
    """SQLAlchemy reads ``?port=`` itself: its ArgumentError quoted the value, in a traceback."""
    code, err, _ = cli("report", CDS_DATABASE_URL="postgresql://cds@127.0.0.1:1/cds?port=s3cret")
    assert (code, err) == (
        2,
        "cds-service: invalid configuration: CDS_DATABASE_URL: an option of the wrong type for the driver\n",
    )


def test_a_request_piped_to_evaluate_is_read_as_bytes() -> None:
    """Standard input was read in the locale's encoding: a request saved as Windows-1252 and piped
    in ended in a traceback; passed by path it was refused in one line. Now both the same."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["context"]["userId"] = "Practitioner/Hôpital"
    body = json.dumps(request, ensure_ascii=False).encode("cp1252")
    command = [sys.executable, "-m", "cds_service", "evaluate", "-"]
    done = subprocess.run(command, input=body, capture_output=True, cwd=PROJECT_ROOT, timeout=60)
    assert done.returncode == 2, done.stderr.decode()[-3000:]
    assert done.stderr.startswith(b"cds-service evaluate: the request body is not valid JSON: "), done.stderr


def test_a_serving_lock_that_cannot_be_opened_stops_start_up_in_one_line(cli, tmp_path: Path) -> None:
    """The lock that keeps a second process off the SQLite file, not writable: a traceback."""
    make_database(tmp_path / "var")
    lock = tmp_path / "var" / "cds-service.db.migrate.serving"
    lock.mkdir()
    code, err, _ = cli("serve", "--port", str(free_port()), CDS_AUTH_MODE="off")
    database = tmp_path / "var" / "cds-service.db"
    assert (code, err) == (3, f"cds-service: cannot start on the database {database}: Is a directory: {lock}\n")


def test_a_report_where_the_service_has_no_database_says_so_and_makes_none(cli, tmp_path: Path) -> None:
    """Run from another directory (``CDS_DATA_DIR`` defaults to ``./var``), it made a new database
    and key there and reported "No alerts were issued in this period": believable, and wrong."""
    code, err, out = cli("report")
    database = tmp_path / "var" / "cds-service.db"
    assert (code, out) == (2, "")
    assert err == (
        f"cds-service: invalid configuration: no database at {database}: run the report with the service's "
        "CDS_DATA_DIR (or CDS_DATABASE_URL)\n"
    )
    assert not (tmp_path / "var").exists()
    make_database(tmp_path / "var")
    assert cli("report")[0] == 0


def test_a_report_on_an_empty_postgresql_database_says_so_and_makes_no_tables(cli, postgresql_url: str) -> None:
    """It made the service's tables there and printed "No alerts were issued in this period"."""
    code, err, out = cli("report", CDS_DATABASE_URL=postgresql_url)
    assert (code, out) == (2, "")
    assert "holds no tables of the service: run the report with the service's CDS_DATA_DIR" in err, err
    assert "s3cret" not in err and "search_path" not in err  # the database named, never its URL
    with closing(create_engine(postgresql_url).connect()) as connection:
        assert (
            connection.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")).scalar() == 0
        )
    assert cli("migrate", CDS_DATABASE_URL=postgresql_url)[0] == 0
    assert cli("report", CDS_DATABASE_URL=postgresql_url)[0] == 0


@pytest.mark.parametrize("how", ["another key set", "the key file lost"])
def test_a_patient_id_key_not_the_databases_stops_start_up(cli, tmp_path: Path, how: str) -> None:
    """A process with a key of its own beside a shared database, or a database restored without
    its key (a new one made), recognised no stored patient and started without a word: their
    snoozes lost (an operator's review). The first start records the key's fingerprint."""
    make_database(tmp_path / "var")
    assert cli("migrate")[0] == 0  # the same key again: started
    if how == "another key set":
        code, err, _ = cli("migrate", CDS_PATIENT_ID_KEY="a-key-of-its-own-0123")
        assert code == 2 and "the patient-id key is not the one this database's patients were stored with" in err
    else:
        (tmp_path / "var" / "patient-id.key").unlink()
        code, err, _ = cli("migrate")
        assert code == 2 and "no patient-id key" in err and "restore the key backed up with the database" in err
        assert not (tmp_path / "var" / "patient-id.key").exists()  # refused before a new one is made
    assert "a-key-of-its-own" not in err


def test_another_key_on_an_older_release_s_database_leaves_it_at_its_schema(cli, tmp_path: Path) -> None:
    """Refused only after migrating, a database of the release before (its key's fingerprint
    recorded) was left at this release's schema, which that release, given its right key back,
    would not start on."""
    make_database(tmp_path / "var")
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'cds-service.db'}")
    with engine.begin() as connection:  # as the release before left it
        keyed_as_before_version_14(connection)
        connection.execute(text("UPDATE schema_version SET version = 13"))
    code, err, _ = cli("migrate", CDS_PATIENT_ID_KEY="a-key-of-its-own-0123")
    assert code == 2 and "the patient-id key is not the one this database's patients were stored with" in err
    with engine.connect() as connection:
        assert connection.execute(text("SELECT max(version) FROM schema_version")).scalar() == 13
    engine.dispose()


def test_its_own_key_migrates_an_older_release_s_database(cli, tmp_path: Path) -> None:
    """The check before migrating refuses only another key's fingerprint: the right one migrates."""
    make_database(tmp_path / "var")
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'cds-service.db'}")
    with engine.begin() as connection:
        keyed_as_before_version_14(connection)
        connection.execute(text("UPDATE schema_version SET version = 13"))
    assert cli("migrate")[0] == 0
    with engine.connect() as connection:
        assert connection.execute(text("SELECT max(version) FROM schema_version")).scalar() == SCHEMA_VERSION
    engine.dispose()


def test_a_report_on_an_older_release_s_database_says_so_and_migrates_nothing(cli, tmp_path: Path) -> None:
    """It migrated the database it reads, and the release serving it then refused to start on
    "newer than this service's" (an operator's review)."""
    make_database(tmp_path / "var")
    database = tmp_path / "var" / "cds-service.db"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "UPDATE schema_version SET version = ? WHERE version = ?", (SCHEMA_VERSION - 1, SCHEMA_VERSION)
        )
    code, err, _ = cli("report")
    assert code == 2 and f"is at schema version {SCHEMA_VERSION - 1}, this release's is {SCHEMA_VERSION}" in err, err
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone() == (SCHEMA_VERSION - 1,)


def test_a_report_beside_a_database_without_its_key_says_so_and_makes_none(cli, tmp_path: Path) -> None:
    """The database named by URL, run where ``./var`` holds no key: a new key was made there,
    and the day that directory became the data directory, stored feedback matched no patient."""
    make_database(tmp_path / "service")
    database = tmp_path / "service" / "cds-service.db"
    code, err, _ = cli("report", CDS_DATABASE_URL=f"sqlite:///{database}")
    key = tmp_path / "var" / "patient-id.key"
    assert code == 2 and f"no patient-id key at {key}: run the report with the service's CDS_DATA_DIR" in err, err
    assert not key.exists()
    assert cli("report", CDS_DATABASE_URL=f"sqlite:///{database}", CDS_DATA_DIR=str(tmp_path / "service"))[0] == 0


def test_migrate_makes_the_database_and_its_key_and_says_its_schema(cli, tmp_path: Path) -> None:
    code, err, out = cli("migrate")
    assert (code, out) == (0, f"cds-service: the database is at schema version {SCHEMA_VERSION}\n"), err
    assert (tmp_path / "var" / "cds-service.db").is_file() and (tmp_path / "var" / "patient-id.key").is_file()
    assert cli("migrate")[0] == 0  # again: nothing to do
