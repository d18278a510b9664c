"""The commands that serve no one: ``evaluate`` (a hook request offline: the very pipeline the HTTP
route runs, on the request's own prefetch, no fetching, no state kept), ``report``, ``migrate`` and
``rules``. Each is given the settings ``main`` read, so a command reads the one configuration its
parser's defaults and its logging came from."""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import sys
import uuid
from contextlib import nullcontext
from datetime import date, datetime
from pathlib import Path

from cds_service.cli.exits import EXIT_INVALID
from cds_service.clock import at_noon, system_clock, today
from cds_service.errors import CdsError, InvalidRequest, operation_outcome
from cds_service.observability import in_call
from cds_service.protocol.body import BodyLimits, parse_body, read_limited
from cds_service.protocol.services import SERVICES
from cds_service.settings import Settings
from cds_service.storage.engine import opening


def report(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.pipeline.knowledge import load_knowledge
    from cds_service.reporting.analytics import analytics, parse_query
    from cds_service.reporting.text import text_report
    from cds_service.storage.existing import require_service_data
    from cds_service.storage.store import open_store

    query = parse_query(args.from_, args.to, args.period, today(system_clock, settings.zone))
    require_service_data(settings)  # read as it is: never made here (migrate, serve)
    store = open_store(settings, clock=system_clock, writes=False)  # a backup it cannot write: read all the same
    with opening(store.engine.url):  # the database lost, or a statement past its timeout: one line
        figures = analytics(store, load_knowledge(settings), query)
    if args.json:
        print(json.dumps(figures, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(text_report(figures))
    return 0


def migrate(_: argparse.Namespace, settings: Settings) -> int:
    """The database made, or brought to this release's schema, and the patient-id key made:
    what ``serve`` does first, as a deploy step of its own (before a rolling upgrade's processes
    start) and before a first ``report``."""
    from cds_service.storage.migrations import SCHEMA_VERSION
    from cds_service.storage.store import open_store

    open_store(settings, clock=system_clock).engine.dispose()
    print(f"cds-service: the database is at schema version {SCHEMA_VERSION}")
    return 0


def _read(source: str, limits: BodyLimits) -> object:
    """The request, through the same body reader (and its limits) the HTTP route uses."""
    with nullcontext(sys.stdin.buffer) if source == "-" else Path(source).open("rb") as stream:
        return parse_body(read_limited(stream, limits), limits)


def _now(day: date | None, settings: Settings) -> datetime:
    """The clock's instant, or noon of ``day`` where the site is (``--today``: ``clock.at_noon`` in
    the site's zone): a washout counted in hours reads the time of day. With the default zone,
    UTC, that is the goldens' clock."""
    if day is None:
        return system_clock()
    return at_noon(day, settings.zone)()


def evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """``_evaluate`` in a context of its own, as each HTTP request has: the hookInstance it sets
    for its lines is not left on those of whatever runs next in the process (``main`` in a test)."""
    return contextvars.copy_context().run(_evaluate, args, settings)


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.pipeline import evaluate as pipeline
    from cds_service.pipeline.knowledge import load_knowledge

    try:
        body = _read(args.request, settings.body_limits)
        in_call(body)  # its lines carry its hookInstance, as the HTTP route's do
        hook = body.get("hook") if isinstance(body, dict) else None
        service_id = args.service or next((s.id for s in SERVICES.values() if s.hook == hook), None)
        if service_id not in SERVICES:
            what = f"no service answers {hook!r}" if isinstance(hook, str) else "missing, or not a string"
            raise InvalidRequest(f"hook: {what}; pass --service", fields=["hook"])
        result = asyncio.run(
            pipeline.evaluate(
                (knowledge := load_knowledge(settings)).offered_service(service_id),  # or refused, as the route
                body,
                knowledge=knowledge,
                now=_now(args.today, settings),
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


def rules(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.content import site_terminology
    from cds_service.pipeline.knowledge import cautions, load_knowledge
    from cds_service.rule_catalog import catalog, rendered

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
