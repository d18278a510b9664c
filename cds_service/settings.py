"""Service settings: ``CDS_``-prefixed environment variables over an optional TOML file.

The field names are the variable names without the prefix, and each field's description is
its documentation: ``settings_table`` renders them as the table of docs/configuration.md
(``python -m cds_service.settings_table`` prints it; a test keeps the two in step). Rules are switched
and tuned under ``rules``, keyed by rule id: ``[rules.cyclobenzaprine-duration] max_days = 14``
in the file named by ``CDS_CONFIG_FILE``, or ``CDS_RULES__CYCLOBENZAPRINE_DURATION__MAX_DAYS=14``
(their model, and what a rule's own snooze comes to, in ``settings_rules``; how a number or a switch is
read from either, in ``settings_values``).
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from cds_service.clock import TimeZoneName
from cds_service.errors import describe
from cds_service.protocol.body import BodyLimits
from cds_service.security.allowlist import FhirServers
from cds_service.security.audience import ProxyAddresses, PublicUrls
from cds_service.security.outbound import ProxyUrl
from cds_service.settings_file import config_file, set_where
from cds_service.settings_rules import RulesConfig, RuleSettings
from cds_service.settings_values import Environment, StrictValues

ENV_PREFIX = "CDS_"


class Settings(BaseSettings, RuleSettings, StrictValues):
    # A bad value is named by its key, never repeated: it may be a password (the proxy's, the database's);
    # a variable set empty is unset (an env file's `CDS_OUTBOUND_PROXY=`), as CDS_CONFIG_FILE always was.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,
        env_ignore_empty=True,
    )

    host: str = Field(default="127.0.0.1", description="Address `cds-service serve` listens on (`--host` overrides).")
    port: int = Field(
        default=8000, ge=1, le=65535, description="Port `cds-service serve` listens on (`--port` overrides)."
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded SQLite database and the generated patient-id key live (files of mode "
        "`0600`); made with mode `0700` when missing (an existing directory keeps its mode).",
    )
    database_url: str | None = Field(
        default=None,
        description="The database: `sqlite:///path` or `postgresql+psycopg://user:password@host:5432/db` "
        "(several processes must share PostgreSQL). Unset: a SQLite file in the data directory.",
    )
    database_statement_timeout_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="Most seconds one SQL statement runs (SQLite: waits for its lock)."
    )
    database_wait_seconds: float = Field(
        default=0.5, gt=0, le=30, description="Most seconds a hook call's database read, or `/readyz`, waits for it."
    )
    patient_id_key: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC that stands for patient ids in storage: at least 16 characters, the same for "
        "every process on one database. Unset: made into `patient-id.key` in the data directory.",
    )
    cards_dir: Path | None = Field(
        default=None,
        description="A folder of the site's own clinical content files (card text, evidence, a whole "
        "`terminology/`), each over the shipped file of its name; unset: the content shipped in the package.",
    )
    local_codes_file: Path | None = Field(
        default=None,
        description="A TOML file of the site's own codes, added to the shipped concepts or taken out of them "
        "(see Local codes).",
    )
    fhir_deadline_seconds: float = Field(
        default=2.0, gt=0, le=30, description="One deadline for a call's FHIR fetches, and for a key set's, in seconds."
    )
    fhir_max_pages: int = Field(
        default=5, ge=1, le=100, description="Search result pages followed per prefetch key (Bundle `next` links)."
    )
    outbound_proxy: ProxyUrl | None = Field(
        default=None,
        description="Forward proxy for outbound calls (FHIR servers, key sets) to hosts not on this machine: "
        "`http://host:port` or `https://host:port`, with `user:password@` percent-encoded if needed. "
        "Unset: direct; `HTTPS_PROXY` and the like are not read.",
    )
    timezone: TimeZoneName = Field(
        default="UTC",
        description="The site's time zone (IANA, e.g. `America/New_York`): its day is the rules' \"today\", "
        'order-sign\'s "same day" and the day analytics count an alert on. Left unset, UTC, and a '
        "warning at start-up: a site west of it reaches tomorrow by the evening.",
    )
    snooze_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Days a rule stays quiet for a patient after a clinician overrides its warning or info card with "
        '"Don\'t show again for this patient" (`0`: off, and not offered), for its cards as severe as that card or '
        "less (an info card snoozed leaves the rule's warnings shown) and for what that card named (a new drug or "
        "condition brings it back); a rule's own `snooze_days` overrides it. Critical cards are never snoozed.",
    )
    retention_days: int = Field(
        default=400,
        ge=1,
        le=36500,  # a century: a million days was accepted, then start-up's sweep could not count back
        description="Days issued cards, notices and feedback are kept before they are deleted (at start-up, hourly).",
    )
    cors_origins: list[str] = Field(
        default=[],
        description="JSON list of the browser origins allowed to call the service (CORS), e.g. "
        '`["https://sandbox.cds-hooks.org"]` for the hosted CDS Hooks sandbox. `[]`: no browser origin.',
    )
    cors_private_network: bool = Field(
        default=False,
        description="Answer Chrome's Private Network Access preflight (`Access-Control-Allow-Private-Network`) so an "
        'allowed public origin may reach a service on this network (never a refused one; `["*"]` stops start-up).',
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO",
        description="Log level: `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL` (any case); logs carry "
        "hookInstance and rule ids, never tokens or patient data.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="`json`: one object per line (`time`, `level`, `pid`, `logger`, `message`, `hookInstance`), "
        "for log pipelines; `text`: for people. Both say each line's process id.",
    )

    auth_mode: Literal["required", "off"] = Field(
        default="required",
        description="Client authentication. `required`: every call needs a trusted client's JWT; "
        "`off`: anyone is answered (a developer's machine only; `make run` uses it).",
    )
    trusted_clients_file: Path | None = Field(
        default=None,
        description="JSON list of trusted clients: `iss`, `jwks_url` and/or `jwks`, `fhir_servers`, `tenant`, "
        "`operator` (docs/security.md).",
    )
    trust_sandbox: bool = Field(
        default=False,
        description="Also trust the CDS Hooks sandbox's published key. Anyone can sign with it: testing only.",
    )
    token_leeway_seconds: int = Field(
        default=30,
        ge=0,
        le=300,
        description="Seconds of clock difference allowed on a token's `exp`, `iat` and `nbf`.",
    )
    public_url: PublicUrls = Field(
        default=[],
        description="Base URL(s) clients call the service at (before `/cds-services`; commas or a JSON list): "
        "a token's `aud` must name one of them, whatever the request's `Host` or `X-Forwarded-*` say. "
        "Unset: the loopback URLs of `CDS_PORT` when listening on loopback; required otherwise.",
    )
    trusted_proxies: ProxyAddresses = Field(
        default=[],
        description="IP addresses or networks of the reverse proxies in front of the service (commas or a JSON "
        "list): only from them are `X-Forwarded-For`/`-Proto` read (the rightmost hop not a listed proxy). "
        "`[]`: proxy headers are ignored.",
    )
    fhir_servers: FhirServers = Field(
        default=[],
        description="JSON list of the FHIR servers the service may call when `CDS_AUTH_MODE` is `off`, and for "
        'the CDS Hooks sandbox beside its SMART launcher servers (`"loopback"`: any server on this machine). '
        "`[]`: none.",
    )
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, in bytes; also the largest FHIR response read.",
    )
    max_entries: int = Field(
        default=5000, ge=1, description="Most Bundle entries (draft orders and prefetch together) in one request."
    )
    max_draft_orders: int = Field(default=200, ge=1, description="Most drafts a hook call sends or selects; more: 413.")
    max_cards: int = Field(
        default=100,
        ge=4,
        description="Most cards in a response (4 or more): a card counts those left out, the notices keep their place.",
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request head (request line and headers) `cds-service serve` reads, in bytes; "
        "a larger one is answered 431 as soon as that much has come.",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds a connection has to send a whole request head, from when it opens (or, on a "
        "kept-alive connection, from the head's first byte): then 408, or closed if it sent nothing.",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Seconds a request has to send its whole body once its head is in: then 408 and closed.",
    )
    keep_alive_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds an idle kept-alive connection stays open between two requests.",
    )
    max_connections: int = Field(
        default=256,
        ge=2,
        description="Most connections (and requests in progress) one `serve` process holds; beyond, 503 "
        "and closed. Keep it under the process's file-descriptor limit.",
    )
    rules: RulesConfig = Field(
        default_factory=RulesConfig,
        description="Each rule's switch (`enabled`), thresholds and `snooze_days`, keyed by rule id.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        """As the logging module reads a level (any case; WARN, FATAL), and checked here, with the key named."""
        other_names = {"WARN": "WARNING", "FATAL": "CRITICAL"}
        return other_names.get(value.upper(), value.upper()) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _private_network_for_named_origins(self) -> Self:
        """Every origin allowed and granted Private Network Access: any web page reaches this machine."""
        if self.cors_private_network and "*" in self.cors_origins:
            where = set_where(["cors_origins", "cors_private_network"])
            raise ValueError(f'cors_origins "*" with cors_private_network lets any web page in; list origins{where}')
        return self

    @property
    def body_limits(self) -> BodyLimits:
        """What a request body may hold, for the HTTP routes and ``cds-service evaluate`` alike."""
        return BodyLimits(max_bytes=self.max_body_bytes, max_entries=self.max_entries)

    @property
    def zone(self) -> ZoneInfo:
        """Where the site's days begin and end: the one place ``timezone`` becomes a zone, for the
        rules' "today", the quiet read's "same day" and analytics' days alike."""
        return ZoneInfo(self.timezone)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cds-service.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file = config_file(settings_cls)
        environment = Environment(settings_cls)
        return (init_settings, environment) if file is None else (init_settings, environment, file)


class InvalidSettings(Exception):
    """Settings the service cannot start with, told by key and never by value (it may be a password)."""


def read_settings() -> Settings:
    """The settings of the environment and the file, or ``InvalidSettings`` saying why not in one line:
    what both ``cds-service`` and a worker process print, where pydantic would print a traceback."""
    for name, value in os.environ.items():  # refused as no rule "cyclobenzaprine-duration", a valid id said unknown
        if name.upper().startswith(f"{ENV_PREFIX}RULES__") and "-" in name.split("__")[1] and value:
            raise InvalidSettings(
                f"{name}: a rule id in a variable's name is written with _ for - ({name.replace('-', '_')})"
            )
    try:
        return Settings()
    except ValidationError as error:
        # A rule is named as the config file names it, [rules.cyclobenzaprine-duration]: in the paths
        # pydantic puts first, not in a message's own words (a file's path, the in-step check's suffix).
        message, fields = describe(error)
        said = re.sub(r"(^|; )rules\.(\w+)", lambda m: f"{m[1]}rules.{m[2].replace('_', '-')}", message)
        said += set_where(fields)
    except (FileNotFoundError, SettingsError) as error:  # the first ours, naming the variable
        said = str(error)
        if f'source "{Environment.__name__}"' in said:  # pydantic-settings' words for a list not JSON; never the value
            said += ": a list or object setting is written as JSON, e.g. CDS_FHIR_SERVERS='[\"loopback\"]'"
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as error:  # the file: not TOML, not UTF-8, unreadable
        said = f"CDS_CONFIG_FILE ({os.environ.get('CDS_CONFIG_FILE')}): {error}"
    raise InvalidSettings(said)


get_settings = lru_cache(read_settings)
