"""What the service answers, as the OpenAPI document states it (``routes.openapi``): the cards,
discovery, the feedback receipt, and the OperationOutcome of every error."""

from __future__ import annotations

from typing import Any

from cds_service.content.cards import INDICATORS, SUMMARY_LIMIT

OPERATION_OUTCOME: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code", "diagnostics"],
                "properties": {
                    "severity": {"const": "error"},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

_CODING = {
    "type": "object",
    "required": ["code"],
    "properties": {"system": {"type": "string"}, "code": {"type": "string"}, "display": {"type": "string"}},
}

CARD: dict[str, Any] = {
    "type": "object",
    "required": ["uuid", "summary", "indicator", "source"],
    "properties": {
        "uuid": {"type": "string"},
        # CDS Hooks: "SHOULD be under a 140-character limit"; this service keeps every summary under it.
        "summary": {"type": "string", "maxLength": SUMMARY_LIMIT - 1},
        "detail": {"type": "string"},
        "indicator": {"enum": list(INDICATORS)},
        "source": {
            "type": "object",
            "required": ["label", "topic"],
            "properties": {"label": {"type": "string"}, "url": {"type": "string"}, "topic": _CODING},
        },
        "suggestions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "uuid"],
                "properties": {
                    "label": {"type": "string"},
                    "uuid": {"type": "string"},
                    "isRecommended": {"type": "boolean"},
                    "actions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type", "description"],
                            "properties": {
                                "type": {"enum": ["create", "update", "delete"]},
                                "description": {"type": "string"},
                                "resource": {"type": "object"},
                            },
                        },
                    },
                },
            },
        },
        "selectionBehavior": {"enum": ["at-most-one", "any"]},
        "overrideReasons": {"type": "array", "items": _CODING},
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "url", "type"],
                "properties": {"label": {"type": "string"}, "url": {"type": "string"}, "type": {"type": "string"}},
            },
        },
    },
}

CDS_RESPONSE = {
    "type": "object",
    "required": ["cards"],
    "properties": {"cards": {"type": "array", "items": {"$ref": "#/components/schemas/Card"}}},
}

DISCOVERY = {
    "type": "object",
    "required": ["services"],
    "properties": {
        "services": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hook", "id", "description"],
                "properties": {
                    "hook": {"type": "string"},
                    "id": {"type": "string"},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        }
    },
}

FEEDBACK_RECEIPT = {
    "type": "object",
    "required": ["received", "stored"],
    "properties": {
        "received": {"type": "integer"},
        "stored": {"type": "integer", "description": "items new to the service (a resent item is stored once)"},
        "refused": {
            "type": "array",
            "description": "items not stored: the database would not take them, they accept only suggestions "
            "their card did not offer, or they contradict what is stored of their card, outcome and "
            "outcomeTimestamp (present only when any)",
            "items": {
                "type": "object",
                "required": ["index", "reason"],
                "properties": {"index": {"type": "integer"}, "reason": {"type": "string"}},
            },
        },
    },
}
