"""The service's OpenAPI document: the contract integrators read and the fuzzer tests against.

FastAPI would describe the routes as taking and returning any object and failing with 422;
this states, per service, what they really take (the CDS Hooks request for that service's
hook, the feedback models), what they answer (cards, discovery, the feedback receipt, in
``openapi_answers``) and every error status with its OperationOutcome body, so a
schema-driven fuzzer can hold the service to it. Unknown service ids (404) are left out: there
is nothing to document there.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from cds_service.fhir.resource_types import RESOURCE_TYPES
from cds_service.protocol.feedback import FeedbackRequest
from cds_service.protocol.ids import reference_pattern
from cds_service.protocol.request import HookContext, HookRequest, OrderSelectContext, OrderSignContext
from cds_service.protocol.services import SERVICES
from cds_service.routes.openapi_answers import CARD, CDS_RESPONSE, DISCOVERY, FEEDBACK_RECEIPT, OPERATION_OUTCOME

_REF = "#/components/schemas/{model}"

# What a draft's resourceType, and a selection's type, may be (``fhir.resource_types``), each
# stated once and referred to: said as any string, "Medicationrequest" was schema-valid and a 400.
RESOURCE_TYPE = {"enum": sorted(RESOURCE_TYPES), "description": "A FHIR resource type (case-sensitive)"}
SELECTION = {
    "type": "string",
    "description": "A draft order in draftOrders, as Type/id",
    "pattern": reference_pattern(f"(?:{'|'.join(sorted(RESOURCE_TYPES))})", unpadded=True),
}

_ERRORS = {
    400: "The body is not a usable request; the OperationOutcome names the field.",
    401: "No valid client JWT (only when client authentication is required).",
    412: "Patient data the rules need is neither in the prefetch nor fetchable from fhirServer.",
    413: "The body, its number of Bundle entries or of draft orders (CDS_MAX_DRAFT_ORDERS) is over the limit.",
    415: "The body is not declared as application/json.",
    503: "The database is unavailable: nothing was stored; send it again after Retry-After seconds.",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _model_schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    return schema


def _context(model: type[HookContext], schemas: dict[str, Any]) -> dict[str, Any]:
    """A hook's context model, with what its validators check written into the schema."""
    schema = _model_schema(model, schemas)
    properties = schema["properties"]
    if "selections" in properties:
        selections = {"type": "array", "items": _ref("Selection")}
        properties["selections"] = {"anyOf": [selections, {"type": "null"}]}
    if "draftOrders" in properties:
        resource = {
            "type": "object",
            "required": ["resourceType"],
            "properties": {"resourceType": _ref("ResourceType")},
        }
        entry = {"type": "object", "required": ["resource"], "properties": {"resource": resource}}
        bundle = {  # a Bundle, or its entries without their resourceType (read as one); one entry may be an object
            "type": "object",
            "properties": {
                "resourceType": {"const": "Bundle"},
                "entry": {"anyOf": [{"type": "array", "items": entry}, entry, {"type": "null"}]},
            },
            "anyOf": [{"required": ["resourceType"]}, {"required": ["entry"]}],
        }
        bare = {"type": "array", "items": resource}  # CDC opioid CDS
        properties["draftOrders"] = {"anyOf": [bundle, bare, {"type": "null"}]}
    if model is OrderSelectContext:  # draft orders need their selections (``parse_hook_request``)
        entries = {"anyOf": [{"type": "array", "minItems": 1}, {"type": "object"}]}
        drafts = {
            "anyOf": [
                {"type": "object", "required": ["entry"], "properties": {"entry": entries}},
                {"type": "array", "minItems": 1},
            ]
        }
        named = {"required": ["selections"], "properties": {"selections": {"type": "array", "minItems": 1}}}
        schema["allOf"] = [
            {
                "if": {"required": ["draftOrders"], "properties": {"draftOrders": drafts}},
                "then": {"required": ["selections"], "properties": {"selections": {"type": "array"}}},
            },
            {
                "if": named,
                "then": {"required": ["draftOrders"], "properties": {"draftOrders": {"not": {"type": "null"}}}},
            },
        ]
    if model is OrderSignContext:  # it reviews the drafts it holds (``parse_hook_request``)
        schema["required"] = sorted({*schema.get("required", []), "draftOrders"})
        properties["draftOrders"] = {"anyOf": properties["draftOrders"]["anyOf"][:-1]}  # never null
    return schema


def _operation(summary: str, operation_id: str, statuses: list[int], response: tuple[str, dict[str, Any]]) -> dict:
    description, schema = response
    return {
        "summary": summary,
        "operationId": operation_id,
        "responses": {
            "200": {"description": description, **_json(schema)},
            **{str(s): {"description": _ERRORS[s], **_json(_ref("OperationOutcome"))} for s in sorted(statuses)},
        },
    }


def _paths(schemas: dict[str, Any], auth: list[int]) -> dict[str, Any]:
    """Discovery, and each service's call and feedback, declared once in ``SERVICES``."""
    paths: dict[str, Any] = {
        "/cds-services": {
            "get": _operation(
                "CDS Hooks discovery", "discovery", auth, ("The services this CDS service offers", DISCOVERY)
            )
        }
    }
    for service in SERVICES.values():
        request = _model_schema(HookRequest, schemas)
        request["properties"]["hook"] = {"const": service.hook}
        schemas[service.context.__name__] = _context(service.context, {})
        request["properties"]["context"] = _ref(service.context.__name__)
        schemas[f"{service.id}-request"] = request
        call = _operation(service.title, service.id, [*auth, 400, 412, 413, 415], ("Cards", CDS_RESPONSE))
        call["requestBody"] = {"required": True, **_json(_ref(f"{service.id}-request"))}
        feedback = _operation(
            f"Feedback on the cards of {service.id}",
            f"{service.id}-feedback",
            [*auth, 400, 413, 415, 503],
            ("How many feedback items arrived, how many were new, and which were refused", FEEDBACK_RECEIPT),
        )
        feedback["requestBody"] = {"required": True, **_json(_ref("FeedbackRequest"))}
        paths[f"/cds-services/{service.id}"] = {"post": call}
        paths[f"/cds-services/{service.id}/feedback"] = {"post": feedback}
    return paths


def _document(app: FastAPI, auth_required: bool) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "OperationOutcome": OPERATION_OUTCOME,
        "Card": CARD,
        "ResourceType": RESOURCE_TYPE,
        "Selection": SELECTION,
        "FeedbackRequest": _model_schema(FeedbackRequest, {}),
    }
    _model_schema(FeedbackRequest, schemas)  # its nested models, under their own names
    paths = _paths(schemas, [401] if auth_required else [])
    components: dict[str, Any] = {"schemas": schemas}
    if auth_required:
        components["securitySchemes"] = {
            "cdsClientJwt": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "CDS Hooks 2.0 client JWT; aud is the URL called (docs/security.md).",
            }
        }
        for operations in paths.values():
            for operation in operations.values():
                operation["security"] = [{"cdsClientJwt": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": app.title, "version": app.version, "description": app.description},
        "paths": paths,
        "components": components,
    }


def install(app: FastAPI, *, auth_required: bool) -> None:
    """Replace the app's generated OpenAPI document with the contract above, built on first request."""

    def document() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = _document(app, auth_required)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
