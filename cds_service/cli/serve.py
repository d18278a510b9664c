"""``cds-service serve``: the app built once (a bad configuration stops start-up with one message),
then served by the HTTP front, in one process or several.

Apart from the offline commands: it alone starts a server, and the signals and exit codes of a
start are a supervisor's concern, not a script's."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from functools import partial
from typing import TYPE_CHECKING

from cds_service.cli.exits import EXIT_INVALID, EXIT_START_FAILED
from cds_service.security.clients import TrustedClientsError
from cds_service.settings import Settings
from cds_service.storage.data_dir import StoreInUse

if TYPE_CHECKING:
    from cds_service.serving import FrontLimits


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """``serve``, SIGTERM a stop asked for (as Ctrl-C: exit 0) from the start, before uvicorn takes it:
    its default ended a start waiting for the database by the signal (143, a failure to a supervisor)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _start_and_serve(args, settings)
    except KeyboardInterrupt:
        print("cds-service: stopped before it started", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_and_serve(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.app import create_app, say_configuration_to_workers
    from cds_service.serving import CannotListen
    from cds_service.serving import run as run_http
    from cds_service.storage.engine import database_url

    settings = settings.model_copy(update={"host": args.host, "port": args.port})
    if args.workers > 1 and database_url(settings.database).get_backend_name() == "sqlite":
        # Before the app is built: it makes the data directory, the database and the patient-id key.
        print(
            "cds-service: --workers needs a database the processes share: set CDS_DATABASE_URL to "
            "PostgreSQL (the embedded SQLite file is for one process)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    try:
        # Built here even with workers: a bad configuration stops start-up once, with one
        # message, and the schema is migrated before any worker opens the database.
        app = create_app(settings, serving=True)
    except TrustedClientsError as error:
        print(f"cds-service: invalid configuration: {error}", file=sys.stderr)
        return EXIT_INVALID
    except StoreInUse as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_INVALID
    # X-Forwarded-For/-Proto only from CDS_TRUSTED_PROXIES (uvicorn trusts anyone on 127.0.0.1); never the audience
    proxies = {"proxy_headers": bool(settings.trusted_proxies), "forwarded_allow_ips": settings.trusted_proxies or None}
    target: object = app
    if args.workers > 1:
        app.state.runtime.store.engine.dispose()
        # Workers read the environment: the same host and port, so the same token audience.
        os.environ.update(CDS_HOST=settings.host, CDS_PORT=str(settings.port))
        target = "cds_service.app:app_from_environment"
    try:
        run_http(
            target,
            limits=_front_limits(settings),
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


def _front_limits(settings: Settings) -> FrontLimits:
    """Header size, read timeouts, keep-alive and a connection cap: bounded before authentication.
    Here, not in ``serving``: the front knows no settings, only what one connection may cost."""
    from cds_service.serving import FrontLimits

    return FrontLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        keep_alive=settings.keep_alive_seconds,
        max_connections=settings.max_connections,
    )
