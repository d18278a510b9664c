"""The CDS Hooks feedback request (spec §Feedback), validated.

Accepts what real clients send: the sandbox's override reasons carry a code and system but
no display, and its timestamps end in ``Z``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from cds_service.clock import EARLIEST, LATEST
from cds_service.errors import InvalidFeedback, describe

# How an ISO 8601 date-time begins: what tells it from a count of seconds, and from a date alone
# (which pydantic reads as midnight: a time no one acted at).
ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")

# How far ahead of the service's clock an ``outcomeTimestamp`` may be: a clinician's workstation
# (the sandbox's is the browser) a little fast. The latest item about a card is what the clinician
# chose, so one dated ahead (2999, or a clock hours fast) overruled every later choice until its
# date (an adversarial review). Not ``CDS_TOKEN_LEEWAY_SECONDS`` (30 s): that is the clock minting
# the client's tokens, often not the one stamping the feedback, and a batch refused loses all of it.
CLOCK_LEEWAY = timedelta(minutes=5)
# A time naming no zone is read as UTC: a client sending its local time so is as far ahead as its
# zone is east of UTC, 14 hours at most (UTC+14), and is allowed that besides the leeway (refused,
# every batch of an EHR east of UTC was lost).
LOCAL_AHEAD = timedelta(hours=14)


class ReasonCoding(BaseModel):
    model_config = ConfigDict(extra="ignore")

    system: str | None = Field(default=None, max_length=500)
    code: str = Field(min_length=1, max_length=200)
    display: str | None = Field(default=None, max_length=500)


class OverrideReason(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        # What ``_something`` checks, stated for the OpenAPI document.
        json_schema_extra={
            "anyOf": [
                {"required": ["reason"], "properties": {"reason": {"type": "object"}}},
                {"required": ["userComment"], "properties": {"userComment": {"type": "string", "minLength": 1}}},
            ]
        },
    )

    reason: ReasonCoding | None = None
    userComment: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _something(self) -> OverrideReason:
        if self.reason is None and not self.userComment:
            raise ValueError("overrideReason needs a reason or a userComment")
        return self


class AcceptedSuggestion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=100)


class FeedbackItem(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        # What ``_accepted_names_suggestions`` checks, stated for the OpenAPI document.
        json_schema_extra={
            "if": {"required": ["outcome"], "properties": {"outcome": {"const": "accepted"}}},
            "then": {
                "required": ["acceptedSuggestions"],
                "properties": {"acceptedSuggestions": {"type": "array", "minItems": 1}},
            },
        },
    )

    card: str = Field(min_length=1, max_length=100)
    outcome: Literal["accepted", "overridden"]
    # A card offers a few suggestions (ours at most three); 90,000 took 0.8 s to read and store.
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(default=None, max_length=20)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime = Field(
        description=f"When the clinician acted (UTC when no zone is named): from {EARLIEST.year} (in UTC) to no "
        f"more than {CLOCK_LEEWAY.seconds // 60} minutes after the service's clock ({LOCAL_AHEAD.seconds // 3600} "
        "hours more when no zone is named: a local time east of UTC)",
        json_schema_extra={"pattern": "^(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ]"},
    )

    @field_validator("outcomeTimestamp", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        # Pydantic would read a number, or a string of digits, as seconds since 1970; CDS Hooks
        # sends an ISO 8601 string (make fuzz found "0" stored as 1970-01-01).
        if not isinstance(value, str) or not ISO_DATE_TIME.match(value):
            raise ValueError("must be an ISO 8601 date-time string (a date and a time)")
        return value

    @field_validator("outcomeTimestamp", mode="wrap")
    @classmethod
    def _our_words(cls, value: object, handler: ValidatorFunctionWrapHandler) -> datetime:
        """Our message, not the parser's: "T24:00:00Z" (ISO 8601's end of a day, no time FHIR or
        RFC 3339 allows) or a 13th month was refused in pydantic's words, naming no format."""
        try:
            parsed: datetime = handler(value)
        except ValidationError as error:
            if any(item["type"] == "value_error" for item in error.errors()):
                raise  # our own words already (``_text``, ``_utc``)
            raise ValueError("is not a valid date and time (e.g. 2026-12-07T10:15:00Z)") from None
        return parsed

    @field_validator("outcomeTimestamp")
    @classmethod
    def _utc(cls, value: datetime, info: ValidationInfo) -> datetime:
        """The instant in UTC, its year checked there: 2999-12-31T23:59:59-14:00 is in 3000
        (checked as written, it was stored so); no more than ``CLOCK_LEEWAY`` after ``now`` (the
        service's clock), when ``parse_feedback`` gives one, and ``LOCAL_AHEAD`` more naming no zone."""
        try:
            utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the year 1
            utc = None
        if utc is None or not EARLIEST <= utc.date() <= LATEST:
            raise ValueError(f"is not a plausible time (years {EARLIEST.year} to {LATEST.year}, in UTC)")
        now = (info.context or {}).get("now")
        ahead = CLOCK_LEEWAY + (LOCAL_AHEAD if value.tzinfo is None else timedelta(0))
        if now is not None and utc > (latest := now.astimezone(UTC) + ahead):
            zone = " (no zone named: read as UTC)" if value.tzinfo is None else ""
            raise ValueError(
                f"is after {latest:%Y-%m-%dT%H:%M:%SZ}, more than {_span(ahead)} ahead of the service's clock{zone}: "
                "no time a clinician acted at (is the client's clock fast?)"
            )
        return utc

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted card needs acceptedSuggestions")
        return self


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=1000)


def _span(ahead: timedelta) -> str:
    hours, minutes = divmod(ahead.seconds // 60, 60)
    return f"{hours} hours {minutes} minutes" if hours else f"{minutes} minutes"


def parse_feedback(body: object, now: datetime) -> FeedbackRequest:
    """The request, each item's ``outcomeTimestamp`` no more than ``CLOCK_LEEWAY`` after ``now``
    (the service's clock), or ``LOCAL_AHEAD`` more naming no zone."""
    if not isinstance(body, dict):
        raise InvalidFeedback("the request body must be a JSON object", fields=["body"])
    try:
        return FeedbackRequest.model_validate(body, context={"now": now})
    except ValidationError as error:
        message, fields = describe(error)
        raise InvalidFeedback(message, fields=fields) from None
