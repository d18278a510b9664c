"""``cds-service``: run the server, or evaluate a hook request offline (``evaluate``: the very
pipeline the HTTP route runs, on the request's own prefetch, no fetching, no state kept)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from datetime import date
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from cds_service.clock import EARLIEST, LATEST, system_clock, today
from cds_service.content.cards import CardContentError
from cds_service.content.terminology import TerminologyError
from cds_service.errors import CdsError, InvalidRequest, operation_outcome
from cds_service.observability import configure_logging
from cds_service.protocol.body import BodyLimits, parse_body, read_limited
from cds_service.protocol.services import SERVICES
from cds_service.security.clients import TrustedClientsError
from cds_service.settings import InvalidSettings, Settings, get_settings
from cds_service.storage.engine import CannotStartOnDatabase, opening

EXIT_INVALID = 2
# A start that failed for now (the database out of reach): a worker's STARTUP_FAILURE, a supervisor retries.
EXIT_START_FAILED = 3
# The reader of our output went away (`cds-service report | head`): a shell's 128 + SIGPIPE.
EXIT_BROKEN_PIPE = 141


def _serve(args: argparse.Namespace) -> int:
    """``serve``, SIGTERM a stop asked for (as Ctrl-C: exit 0) from the start, before uvicorn takes it:
    its default ended a start waiting for the database by the signal (143, a failure to a supervisor)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _start_and_serve(args)
    except KeyboardInterrupt:
        print("cds-service: stopped before it started", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_and_serve(args: argparse.Namespace) -> int:
    from cds_service.app import create_app, say_configuration_to_workers
    from cds_service.serving import CannotListen, FrontLimits
    from cds_service.serving import run as run_http
    from cds_service.storage.store import StoreInUse

    settings = get_settings().model_copy(update={"host": args.host, "port": args.port})
    try:
        # Built here even with workers: a bad configuration stops start-up once, with one
        # message, and the schema is migrated before any worker opens the database.
        app = create_app(settings)
    except TrustedClientsError as error:
        print(f"cds-service: invalid configuration: {error}", file=sys.stderr)
        return EXIT_INVALID
    if args.workers > 1 and app.state.runtime.store.embedded:
        print(
            "cds-service: --workers needs a database the processes share: set CDS_DATABASE_URL to "
            "PostgreSQL (the embedded SQLite file is for one process)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    try:
        app.state.runtime.store.claim()
    except StoreInUse as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_INVALID
    # X-Forwarded-For/-Proto only from CDS_TRUSTED_PROXIES (uvicorn trusts anyone on 127.0.0.1); never the audience
    proxies = {"proxy_headers": bool(settings.trusted_proxies), "forwarded_allow_ips": settings.trusted_proxies or None}
    # Header size, read timeouts, keep-alive and a connection cap: bounded before authentication.
    limits = FrontLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        keep_alive=settings.keep_alive_seconds,
        max_connections=settings.max_connections,
    )
    target: object = app
    if args.workers > 1:
        app.state.runtime.store.engine.dispose()
        # Workers read the environment: the same host and port, so the same token audience.
        os.environ.update(CDS_HOST=settings.host, CDS_PORT=str(settings.port))
        target = "cds_service.app:app_from_environment"
    try:
        run_http(
            target,
            limits=limits,
            **proxies,
            factory=args.workers > 1,
            host=settings.host,
            port=settings.port,
            workers=args.workers,  # said, or uvicorn would read WEB_CONCURRENCY
            log_config=None,
            before_workers=partial(say_configuration_to_workers, app.state.runtime),
        )
    except CannotListen as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_START_FAILED
    return 0


def _report(args: argparse.Namespace) -> int:
    from cds_service.pipeline.knowledge import load_knowledge
    from cds_service.reporting.analytics import analytics, parse_query
    from cds_service.reporting.text import text_report
    from cds_service.storage.existing import require_service_data
    from cds_service.storage.store import open_store

    settings = get_settings()
    query = parse_query(args.from_, args.to, args.period, today(system_clock, ZoneInfo(settings.timezone)))
    require_service_data(settings)  # read as it is: never made here (migrate, serve)
    store = open_store(settings, clock=system_clock, writes=False)  # a backup it cannot write: read all the same
    with opening(store.engine.url):  # the database lost, or a statement past its timeout: one line
        figures = analytics(store, load_knowledge(settings), query)
    if args.json:
        print(json.dumps(figures, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(text_report(figures))
    return 0


def _migrate(_: argparse.Namespace) -> int:
    """The database made, or brought to this release's schema, and the patient-id key made:
    what ``serve`` does first, as a deploy step of its own (before a rolling upgrade's processes
    start) and before a first ``report``."""
    from cds_service.storage.migrations import SCHEMA_VERSION
    from cds_service.storage.store import open_store

    open_store(get_settings(), clock=system_clock).engine.dispose()
    print(f"cds-service: the database is at schema version {SCHEMA_VERSION}")
    return 0


def _read(source: str, limits: BodyLimits) -> object:
    """The request, through the same body reader (and its limits) the HTTP route uses."""
    with nullcontext(sys.stdin.buffer) if source == "-" else Path(source).open("rb") as stream:
        return parse_body(read_limited(stream, limits), limits)


def _evaluate(args: argparse.Namespace) -> int:
    from cds_service.pipeline.evaluate import evaluate
    from cds_service.pipeline.knowledge import load_knowledge

    settings = get_settings()
    try:
        body = _read(args.request, settings.body_limits)
        hook = body.get("hook") if isinstance(body, dict) else None
        service_id = args.service or next((s.id for s in SERVICES.values() if s.hook == hook), None)
        if service_id not in SERVICES:
            what = f"no service answers {hook!r}" if isinstance(hook, str) else "missing, or not a string"
            raise InvalidRequest(f"hook: {what}; pass --service", fields=["hook"])
        result = asyncio.run(
            evaluate(
                SERVICES[service_id],
                body,
                knowledge=load_knowledge(settings),
                today=args.today or today(system_clock, ZoneInfo(settings.timezone)),
                new_uuid=lambda: str(uuid.uuid4()),
                max_draft_orders=settings.max_draft_orders,
                max_cards=settings.max_cards,
            )
        )
    except OSError as error:
        print(f"cds-service evaluate: cannot read {args.request}: {error.strerror}", file=sys.stderr)
        return EXIT_INVALID
    except CdsError as error:
        print(f"cds-service evaluate: {error.message}", file=sys.stderr)
        print(json.dumps(operation_outcome(error.message, issue_code=error.issue_code, fields=error.fields), indent=2))
        return EXIT_INVALID
    print(json.dumps(result.response(), indent=2, ensure_ascii=False))
    return 0


def _rules(args: argparse.Namespace) -> int:
    from cds_service.content import site_terminology
    from cds_service.pipeline.knowledge import cautions, load_knowledge
    from cds_service.rule_catalog import catalog, rendered

    settings = get_settings()
    knowledge = load_knowledge(settings)
    print(rendered(catalog(knowledge), args.format))
    if args.format == "table":  # what a site tuning its rules checks first: which files are in force
        site = settings.cards_dir
        terminology = site_terminology(site) or "shipped"
        print(f"\ncard text: {f'{site}, over the shipped' if site else 'shipped'}\nterminology: {terminology}")
        print(f"local codes: {settings.local_codes_file or 'none'}")
        print(f"configuration file: {os.environ.get('CDS_CONFIG_FILE') or 'none'}")
        for caution in cautions(knowledge, settings):  # what `serve` warns of at start-up
            print(f"caution: {caution}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
        args = _parser(settings).parse_args(argv)
        configure_logging(settings.log_level, settings.log_format)
        code: int = args.run(args)
        sys.stdout.flush()  # here, not at exit: output still buffered meets a reader gone here too
        return code
    except InvalidSettings as error:  # as read, or what they name cannot work here (an old SQLite)
        print(f"cds-service: invalid configuration: {error}", file=sys.stderr)
        return EXIT_INVALID
    except (CardContentError, TerminologyError) as error:
        print(f"cds-service: invalid clinical content: {error}", file=sys.stderr)
        return EXIT_INVALID
    except InvalidRequest as error:
        print(f"cds-service: {error.message}", file=sys.stderr)
        return EXIT_INVALID
    except CannotStartOnDatabase as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_START_FAILED
    except BrokenPipeError:  # no error of ours to log with a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush would fail again
        return EXIT_BROKEN_PIPE


def _number_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """Checked by argparse: the settings' checks never see a command line's (70000 listened on 4464)."""

    def number(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            range_ = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{value} is not {range_}")
        return value

    return number


def _day(text: str) -> date:
    """A day the rules can count back from (``EARLIEST``: near the year 1, a window runs off the calendar)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:  # argparse would say "invalid _day value"
        raise argparse.ArgumentTypeError(f"{text} is not a date (YYYY-MM-DD)") from None
    if not EARLIEST <= day <= LATEST:
        raise argparse.ArgumentTypeError(f"{text} is not from {EARLIEST} to {LATEST}")
    return day


def _parser(settings: Settings) -> argparse.ArgumentParser:
    """The commands, their defaults from the settings (``serve``'s host and port)."""
    parser = argparse.ArgumentParser(prog="cds-service", description="CDS Hooks service for back muscle spasm.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=_number_in(1, 65535), default=settings.port)
    serve.add_argument(
        "--workers",
        type=_number_in(1),
        default=1,
        help="worker processes (share one PostgreSQL database; see docs/operations.md, More processes)",
    )
    serve.set_defaults(run=_serve)

    report = commands.add_parser("report", help="print what clinicians did with the cards, per rule")
    report.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="first day (default: 30 days ago)")
    report.add_argument("--to", metavar="YYYY-MM-DD", help="last day (default: today)")
    report.add_argument("--period", choices=["day", "week", "month"], default="week", help="default: week")
    report.add_argument("--json", action="store_true", help="the figures as JSON, as GET /analytics returns them")
    report.set_defaults(run=_report)

    migrate = commands.add_parser("migrate", help="make the database, or bring it to this release's schema, and exit")
    migrate.set_defaults(run=_migrate)

    evaluate = commands.add_parser("evaluate", help="evaluate a hook request offline and print the response")
    evaluate.add_argument("request", help="a CDS Hooks request as JSON; - reads standard input")
    evaluate.add_argument(
        "--service", choices=sorted(SERVICES), help="service id (default: the one for the request's hook)"
    )
    evaluate.add_argument(
        "--today",
        type=_day,
        help="evaluate as of this date where the site is (CDS_TIMEZONE; YYYY-MM-DD; default: today)",
    )
    evaluate.set_defaults(run=_evaluate)

    rules = commands.add_parser("rules", help="print the rule catalog with its configuration")
    formats = rules.add_mutually_exclusive_group()
    formats.add_argument("--json", dest="format", action="store_const", const="json", help="as JSON, for machines")
    formats.add_argument(
        "--markdown", dest="format", action="store_const", const="markdown", help="as a Markdown table"
    )
    rules.set_defaults(run=_rules, format="table")
    return parser


if __name__ == "__main__":
    sys.exit(main())
