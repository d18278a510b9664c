"""``cds-service``: run the server, or evaluate a hook request offline (``evaluate``: the very
pipeline the HTTP route runs, on the request's own prefetch, no fetching, no state kept).

Here the command line and what a failure of any command exits with; the commands themselves are in
``serve`` and ``offline``, each given the settings read here, once: the ones its defaults came from."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import date

from cds_service.cli import offline
from cds_service.cli import serve as server
from cds_service.cli.exits import EXIT_BROKEN_PIPE, EXIT_INVALID, EXIT_START_FAILED
from cds_service.clock import EARLIEST, LATEST, calendar_day
from cds_service.content.cards import CardContentError
from cds_service.content.terminology import TerminologyError
from cds_service.errors import InvalidRequest
from cds_service.observability import configure_logging
from cds_service.protocol.services import SERVICES
from cds_service.settings import InvalidSettings, Settings, get_settings
from cds_service.storage.engine import CannotStartOnDatabase


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
        args = _parser(settings).parse_args(argv)
        configure_logging(settings.log_level, settings.log_format)
        code: int = args.run(args, settings)
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
        day = calendar_day(text)
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
    serve.set_defaults(run=server.serve)

    report = commands.add_parser("report", help="print what clinicians did with the cards, per rule")
    report.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="first day (default: 30 days ago)")
    report.add_argument("--to", metavar="YYYY-MM-DD", help="last day (default: today)")
    report.add_argument("--period", choices=["day", "week", "month"], default="week", help="default: week")
    report.add_argument("--json", action="store_true", help="the figures as JSON, as GET /analytics returns them")
    report.set_defaults(run=offline.report)

    migrate = commands.add_parser("migrate", help="make the database, or bring it to this release's schema, and exit")
    migrate.set_defaults(run=offline.migrate)

    evaluate = commands.add_parser("evaluate", help="evaluate a hook request offline and print the response")
    evaluate.add_argument("request", help="a CDS Hooks request as JSON; - reads standard input")
    evaluate.add_argument(
        "--service", choices=sorted(SERVICES), help="service id (default: the one for the request's hook)"
    )
    evaluate.add_argument(
        "--today",
        type=_day,
        help="evaluate as of noon this date where the site is (CDS_TIMEZONE; YYYY-MM-DD; default: now)",
    )
    evaluate.set_defaults(run=offline.evaluate)

    rules = commands.add_parser("rules", help="print the rule catalog with its configuration")
    formats = rules.add_mutually_exclusive_group()
    formats.add_argument("--json", dest="format", action="store_const", const="json", help="as JSON, for machines")
    formats.add_argument(
        "--markdown", dest="format", action="store_const", const="markdown", help="as a Markdown table"
    )
    rules.set_defaults(run=offline.rules, format="table")
    return parser
