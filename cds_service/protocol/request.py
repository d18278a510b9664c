"""The CDS Hooks request, validated: the first stage of the pipeline.

Only the envelope is strict here (what makes a body a CDS Hooks call at all). The FHIR
content inside ``draftOrders`` and ``prefetch`` is checked per resource later, because real
clients send slightly broken drafts that must not sink the whole call.
"""

from __future__ import annotations

import logging
import re
from operator import itemgetter
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictFloat,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from cds_service.errors import InvalidRequest, TooLarge, describe, shown
from cds_service.fhir.json import bundle_entries, unread_entry
from cds_service.protocol.ids import MAX_ID, PATIENT_ID_PATTERN, padded, reference_problem

log = logging.getLogger(__name__)

# What an HTTP header value may hold: visible ASCII (RFC 9110), no space, no line break. Not
# RFC 6750's stricter b64token: tokens with "!" or ":" are sent as they are by real servers.
_HEADER_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # anchored: JSON Schema patterns search


class FhirAuthorization(BaseModel):
    """The access token the EHR grants for its FHIR server; transient, never logged or stored."""

    model_config = ConfigDict(extra="ignore")

    access_token: SecretStr = Field(min_length=1, json_schema_extra={"pattern": _HEADER_TOKEN.pattern})
    token_type: str = Field(pattern="^(?i:bearer)$")  # case-insensitive, as in OAuth (RFC 6749 §5.1)
    # Never read, only required: an integer past 64 bits reaches us as a float (orjson), still a
    # lifetime in seconds, so any number will do (a bare 400 for it would be the schema's error).
    # A strict float takes an int too, and one type names the field alone in an error (a union
    # named its members: ``expires_in.int``, ``expires_in.float``). A lifetime is never below 0
    # (CDS Hooks 2.0: "the lifetime in seconds of the access token"); 0, a token already spent, is one.
    expires_in: StrictFloat = Field(ge=0)  # a number, never a boolean or a numeric string
    scope: str
    subject: str
    patient: str | None = None

    @field_validator("access_token")
    @classmethod
    def _fit_for_a_header(cls, value: SecretStr) -> SecretStr:
        """Visible ASCII only: a line break, a space or another letter cannot be sent in the
        Authorization header, and failed the fetch as a 412 for the prefetch, not the token."""
        if not _HEADER_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("must be a bearer token of visible ASCII characters (no space or line break)")
        return value


class HookContext(BaseModel):
    """What every hook's context carries; a hook's own model adds its fields and says which
    draft orders its call reviews (none, for a hook without orders)."""

    model_config = ConfigDict(extra="ignore")

    # An id, or "Patient/<id>" as the CDC opioid CDS requests send it: the id from here on.
    patientId: str = Field(
        min_length=1, max_length=len("Patient/") + MAX_ID, json_schema_extra={"pattern": PATIENT_ID_PATTERN}
    )
    userId: str | None = None
    encounterId: str | None = None

    @field_validator("patientId")
    @classmethod
    def _the_id(cls, value: str) -> str:
        """One patient, one id: the FHIR reads, the stored feedback's key and the suggestions'
        subject all use it, so "Patient/x" must not be a second patient beside "x"."""
        patient_id = value.removeprefix("Patient/")
        if not patient_id.strip("."):  # "." and ".." are path steps: Patient/.. would read the base
            raise ValueError("names no patient: an id of dots alone, or none, is not an id")
        if len(patient_id) > MAX_ID:  # the bound of every id, with its type or without
            raise ValueError(f"the id is over {MAX_ID} characters")
        return patient_id

    @property
    def draft_bundle(self) -> dict[str, Any] | None:
        return None

    def under_review(self, drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return []

    def draft_counts(self) -> dict[str, int]:
        """How many drafts the call sends and names, by field: what the drafts cap counts."""
        return {}


class OrderContext(HookContext):
    """Context of the order hooks (``order-select``, ``order-sign``): the draft orders."""

    # The sandbox omits both when it re-fires without an order: nothing to evaluate, not an error.
    selections: list[str] | None = None
    draftOrders: dict[str, Any] | None = None

    @field_validator("selections")
    @classmethod
    def _references(cls, value: list[str] | None) -> list[str] | None:
        for index, reference in enumerate(value or ()):
            if (problem := reference_problem(index, reference)) is not None:
                raise ValueError(problem)
        return value

    @field_validator("draftOrders", mode="before")
    @classmethod
    def _as_bundle(cls, value: Any) -> Any:
        """A JSON array of resources (the CDC opioid CDS R4 requests send one), or an object of
        ``entry`` without its ``resourceType``, read as the Bundle it stands for: the drafts in it
        are reviewed, not passed over in silence. Anything else is checked as sent."""
        if isinstance(value, list) and all(isinstance(item, dict) and "resourceType" in item for item in value):
            return {"resourceType": "Bundle", "entry": [{"resource": item} for item in value]}
        if isinstance(value, dict) and "resourceType" not in value and "entry" in value:
            return {"resourceType": "Bundle", **value}
        return value

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("resourceType") != "Bundle":
            raise ValueError("must be a FHIR Bundle of draft orders")
        # An entry of no resource was passed over: a 30-day draft without its resourceType got
        # no card, as if checked and clear (a bare array of them is refused already).
        if value is not None and (unread := unread_entry(value)) is not None:
            raise ValueError(f"{unread[0]} {unread[1]}")
        seen: dict[tuple[str, str], int] = {}
        for index, entry in enumerate(bundle_entries(value)):  # each an entry of a resource (above)
            resource = entry["resource"]
            if not isinstance(resource.get("id"), str):
                continue
            draft_id: str = resource["id"]
            # The same bound as ``selections``: an order's key is stored (storage/schema.py).
            if len(draft_id) > MAX_ID:
                raise ValueError(f"entry[{index}].resource.id is over {MAX_ID} characters")
            # A suggestion names its order by id: of two, it could change or delete the other.
            first = seen.setdefault((str(resource.get("resourceType")), draft_id), index)
            if first != index:
                raise ValueError(f"entry[{index}].resource.id is entry[{first}]'s too: each draft needs its own")
        return value

    @property
    def draft_bundle(self) -> dict[str, Any] | None:
        return self.draftOrders

    def draft_counts(self) -> dict[str, int]:
        return {
            "context.draftOrders": len(bundle_entries(self.draftOrders)),
            "context.selections": len(self.selections or ()),
        }


class OrderSelectContext(OrderContext):
    """order-select reviews the drafts named in ``selections``; the others are context."""

    def under_review(self, drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        wanted = set(self.selections or ())
        reviewed = [d for d in drafts if f"{d.get('resourceType')}/{d.get('id')}" in wanted]
        found = {f"{d.get('resourceType')}/{d.get('id')}" for d in reviewed}
        kinds = {d.get("resourceType") for d in drafts}
        for index, reference in enumerate(self.selections or ()):
            if reference not in found and (not drafts or reference.split("/", 1)[0] in kinds):
                # The client's error (CDS Hooks: selections name draftOrders entries), not a reason
                # to refuse the call; an operator should see it: no card can come for that order.
                log.warning(
                    "context.selections[%d] names no order in draftOrders (none, or one entered in error, "
                    "cancelled or revoked): it is not reviewed",
                    index,
                )
        if self.selections == [] and drafts:
            log.warning("context.selections is empty: none of the draft orders is reviewed")
        return reviewed


class OrderSignContext(OrderContext):
    """order-sign reviews every draft about to be signed."""

    def under_review(self, drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return drafts


class HookRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        # What ``_authorization_needs_server`` checks, stated for the OpenAPI document.
        json_schema_extra={
            "if": {"required": ["fhirAuthorization"], "properties": {"fhirAuthorization": {"type": "object"}}},
            "then": {"required": ["fhirServer"], "properties": {"fhirServer": {"type": "string"}}},
        },
    )

    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1, max_length=200)
    # Printable ASCII only: a URL (IRIs come punycoded), and a class every regex dialect agrees on.
    fhirServer: str | None = Field(default=None, pattern=r"^https?://[!-~]+$")
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    # Any value per key: a key the service never asked for is ignored whatever it holds (HealthChain
    # sends strings); the service's own keys are checked where they are read (``services.read_prefetch``).
    prefetch: dict[str, Any] | None = None
    # Reserved for extensions the service does not read: any JSON is ignored (HealthChain sends an array).
    extension: Any = None

    @field_validator("fhirAuthorization")
    @classmethod
    def _authorization_needs_server(
        cls, value: FhirAuthorization | None, info: ValidationInfo
    ) -> FhirAuthorization | None:
        """Named as the field in error: a token with no server to send it to. (A ``fhirServer``
        sent but invalid is not in ``info.data``: its own error says so.)"""
        if value is not None and "fhirServer" in info.data and info.data["fhirServer"] is None:
            raise ValueError("requires fhirServer (the server the token is for)")
        return value

    @property
    def fhir_server(self) -> str | None:
        return self.fhirServer.rstrip("/") if self.fhirServer else None

    @property
    def access_token(self) -> str | None:
        auth = self.fhirAuthorization
        return auth.access_token.get_secret_value() if auth else None


def parse_hook_request(
    body: object, context_model: type[HookContext], *, max_draft_orders: int
) -> tuple[HookRequest, HookContext]:
    """Validate the envelope and the hook's context, or raise ``InvalidRequest`` naming the field;
    more than ``max_draft_orders`` drafts (sent or selected) is ``TooLarge``, before any is read."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", fields=["body"])
    try:
        request = HookRequest.model_validate(body)
    except ValidationError as error:
        message, fields = describe(error)
        raise InvalidRequest(message, fields=fields) from None
    try:
        context = context_model.model_validate(request.context)
    except ValidationError as error:
        message, fields = describe(error, prefix="context")
        raise InvalidRequest(message, fields=fields) from None
    _drafts_under_review(context)
    for field, count in context.draft_counts().items():
        if count > max_draft_orders:
            # The whole call refused, never a part of it answered: a clinician must not take
            # the cards for some of the orders as the review of all of them.
            raise TooLarge(
                f"{field} has {count} draft orders; at most {max_draft_orders} are reviewed in one call",
                fields=[field],
            )
    return request, context


def _drafts_under_review(context: HookContext) -> None:
    """A 400 where the context cannot say which drafts are under review: nothing would be
    reviewed, in silence, and no cards read as a clear check (a critical card lost). The
    sandbox's re-fire without an order omits both selections and draftOrders: nothing to review."""
    if isinstance(context, OrderSelectContext) and context.selections is None and bundle_entries(context.draftOrders):
        message = "context.selections is missing: order-select names the draft orders under review in it"
        raise InvalidRequest(message, fields=["context.selections"])
    if isinstance(context, OrderSelectContext) and context.selections and context.draftOrders is None:
        message = "context.draftOrders is missing: the selections name draft orders it holds"
        raise InvalidRequest(message, fields=["context.draftOrders"])
    if isinstance(context, OrderSignContext) and context.draftOrders is None:
        message = "context.draftOrders is missing: order-sign reviews the draft orders it holds"
        raise InvalidRequest(message, fields=["context.draftOrders"])
    if isinstance(context, OrderSelectContext) and any(map(padded, context.selections or ())):
        _padded_selections_name_drafts(context)


def _padded_selections_name_drafts(context: OrderSelectContext) -> None:
    """A 400 for a selection whose id a space or an invisible character pads (``ids.padded``)
    and that names no draft: the EHR's slip, not a draft left out on purpose, answered no cards."""
    drafts = {
        f"{r['resourceType']}/{r.get('id')}" for r in map(itemgetter("resource"), bundle_entries(context.draftOrders))
    }
    for index, reference in enumerate(context.selections or ()):
        if padded(reference) and reference not in drafts:
            message = (
                f"context.selections: item {index} ({shown(reference)}) names no draft order: its id begins or "
                "ends with a space or holds a character that does not show (a draft is named by Type/id exactly)"
            )
            raise InvalidRequest(message, fields=["context.selections"])
