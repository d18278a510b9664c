"""The HTTP adapter: routes, CORS and the one place errors become HTTP responses.

Routes stay thin: they read the body, call ``evaluate`` or the store, and answer. Every
error body is a FHIR OperationOutcome naming the offending field.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service import __version__
from cds_service.errors import CdsError, InvalidRequest, UnknownService, operation_outcome
from cds_service.evaluate import Knowledge, evaluate, load_knowledge
from cds_service.feedback import FeedbackRequest, parse_feedback
from cds_service.hook_request import HookRequest
from cds_service.prefetch import FhirClient
from cds_service.services import SERVICES, ServiceDefinition
from cds_service.settings import Settings, get_settings
from cds_service.store import Store, load_patient_key

log = logging.getLogger(__name__)


def _service(service_id: str) -> ServiceDefinition:
    try:
        return SERVICES[service_id]
    except KeyError:
        raise UnknownService(f"no CDS service with id {service_id!r}; see GET /cds-services") from None


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if not body:
        raise InvalidRequest("the request body is empty; a JSON object is required", fields=["body"])
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidRequest(f"the request body is not valid JSON: {error}", fields=["body"]) from None


def _error(status: int, message: str, issue_code: str, fields: tuple[str, ...] | list[str] = ()) -> JSONResponse:
    return JSONResponse(operation_outcome(message, issue_code=issue_code, fields=fields), status_code=status)


def create_app(
    settings: Settings | None = None,
    *,
    knowledge: Knowledge | None = None,
    today: Callable[[], date] = date.today,
    new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> FastAPI:
    settings = settings or get_settings()
    knowledge = knowledge or load_knowledge(settings)
    patient_key = load_patient_key(
        settings.patient_id_key.get_secret_value() if settings.patient_id_key else None,
        settings.data_dir / "patient-id.key",
    )
    store = Store(settings.database, patient_key=patient_key)
    quiet_for = timedelta(minutes=settings.accepted_quiet_minutes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.fhir_deadline_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            app.state.http = http
            yield

    app = FastAPI(
        title="Back spasm CDS service",
        version=__version__,
        description="CDS Hooks 2.0 service: guidance on muscle relaxant orders for back spasm.",
        lifespan=lifespan,
    )
    app.state.store = store
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        # Chrome's Private Network Access: the hosted sandbox (public) calling a service on localhost.
        allow_private_network=True,
    )

    @app.exception_handler(CdsError)
    async def _cds_error(_: Request, error: CdsError) -> JSONResponse:
        return _error(error.status_code, error.message, error.issue_code, error.fields)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        fields = [".".join(str(p) for p in e["loc"]) for e in error.errors()]
        return _error(
            400, "; ".join(f"{f}: {e['msg']}" for f, e in zip(fields, error.errors(), strict=True)), "invalid", fields
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not-found" if error.status_code == 404 else "not-supported"
        return _error(error.status_code, str(error.detail), code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal error; the service log has the details", "exception")

    def fhir_client(request: HookRequest) -> FhirClient | None:
        if request.fhir_server is None:
            return None
        return FhirClient(app.state.http, request.fhir_server, request.access_token, max_pages=settings.fhir_max_pages)

    async def accepted(patient_id: str) -> set[tuple[str, str]]:
        return await run_in_threadpool(store.accepted_keys, patient_id, within=quiet_for)

    @app.get("/cds-services", summary="CDS Hooks discovery")
    async def discovery() -> dict[str, Any]:
        services = []
        for key in sorted(SERVICES):
            rules = knowledge.rules_for(SERVICES[key].hook)
            if rules:
                services.append(SERVICES[key].discovery([knowledge.catalog.texts[r.id].title for r in rules]))
        return {"services": services}

    @app.post(
        "/cds-services/{service_id}",
        summary="Call a CDS service",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": HookRequest.model_json_schema()}},
            }
        },
    )
    async def call_service(service_id: str, request: Request, background: BackgroundTasks) -> dict[str, Any]:
        service = _service(service_id)
        result = await evaluate(
            service,
            await _json_body(request),
            knowledge=knowledge,
            today=today(),
            new_uuid=new_uuid,
            fhir=fhir_client,
            deadline=settings.fhir_deadline_seconds,
            quiet=accepted,
        )
        log.info(
            "hook %s %s: %d card(s) %s",
            service.id,
            result.request.hookInstance,
            len(result.cards),
            [c.rule_id for c in result.issued],
        )
        if result.issued:
            background.add_task(
                store.record_issued,
                service_id=service.id,
                hook_instance=result.request.hookInstance,
                patient_id=result.context.patientId,
                cards=result.issued,
            )
        return result.response()

    @app.post(
        "/cds-services/{service_id}/feedback",
        summary="Feedback on cards",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": FeedbackRequest.model_json_schema()}},
            }
        },
    )
    async def receive_feedback(service_id: str, request: Request) -> dict[str, Any]:
        service = _service(service_id)
        items = parse_feedback(await _json_body(request)).feedback
        stored = await run_in_threadpool(store.record_feedback, service_id=service.id, items=items)
        log.info("feedback %s: %d item(s), %d new", service.id, len(items), stored)
        return {"received": len(items), "stored": stored}

    return app
