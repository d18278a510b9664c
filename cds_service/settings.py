"""Service settings: ``CDS_``-prefixed environment variables over an optional TOML file.

Every setting is documented in the README's configuration table; the field names here are
the variable names without the prefix. Rules are switched and tuned under ``rules``, keyed by
rule id: ``[rules.cyclobenzaprine-duration] max_days = 14`` in the file named by
``CDS_CONFIG_FILE``, or ``CDS_RULES__CYCLOBENZAPRINE_DURATION__MAX_DAYS=14``. An unknown key
or a bad value stops start-up with the key named.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, create_model, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from cds_service.rules import RuleConfig, all_rules
from cds_service.security.allowlist import FhirServers

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def field_name(rule_id: str) -> str:
    return rule_id.replace("-", "_")


# One field per rule, named by its id, holding that rule's switch and thresholds.
RulesConfig = create_model(  # type: ignore[call-overload]
    "RulesConfig",
    __config__=ConfigDict(extra="forbid", frozen=True),
    **{field_name(rule.id): (rule.config, Field(default_factory=rule.config)) for rule in all_rules()},
)


class _ConfigFile(TomlConfigSettingsSource):
    """The TOML file of ``CDS_CONFIG_FILE``, with rule ids written as they are (hyphens)."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        rules = data.get("rules")
        if isinstance(rules, dict):
            data["rules"] = {field_name(str(key)): value for key, value in rules.items()}
        return data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDS_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Where the embedded database and the generated patient-id key live.
    data_dir: Path = PROJECT_ROOT / "var"
    # Defaults to a SQLite file in data_dir.
    database_url: str | None = None
    # Key of the hash that stands for patient ids in storage; generated into data_dir when unset.
    patient_id_key: SecretStr | None = None
    cards_dir: Path = PROJECT_ROOT / "cards"
    # A site's own codes added to the shipped concepts (see README, Terminology).
    local_codes_file: Path | None = None
    # One deadline for all FHIR fetches of a call, in seconds.
    fhir_deadline_seconds: float = Field(default=2.0, gt=0, le=30)
    # Search pages followed per prefetch key (Bundle `next` links).
    fhir_max_pages: int = Field(default=5, ge=1, le=100)
    # How long an accepted card stays quiet for the same draft order, in minutes.
    accepted_quiet_minutes: int = Field(default=60, ge=0)
    # Days a rule stays quiet for a patient after its warning or info card is overridden
    # (0: off); a rule's own `snooze_days` overrides it. Critical cards are never snoozed.
    snooze_days: int = Field(default=30, ge=0, le=3650)
    # Days issued cards and feedback are kept before they are deleted.
    retention_days: int = Field(default=400, ge=1)
    cors_origins: list[str] = ["*"]
    log_level: str = "INFO"
    # `json`: one object per line with the hookInstance (for log pipelines); `text`: for people.
    log_format: Literal["json", "text"] = "json"

    # Client authentication (README, Security): `off` only on a developer's machine.
    auth_mode: Literal["required", "off"] = "required"
    # JSON list of trusted clients: iss, jwks_url and/or jwks, fhir_servers, tenant.
    trusted_clients_file: Path | None = None
    # Trust the CDS Hooks sandbox's published key. Anyone can sign with it: testing only.
    trust_sandbox: bool = False
    # Seconds of clock difference allowed on exp, iat and nbf.
    token_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # Take scheme and host from X-Forwarded-Proto/-Host (only behind a proxy that sets them).
    trust_proxy_headers: bool = False
    # FHIR servers the service may call when auth_mode is off ("loopback" = any on this machine).
    fhir_servers: FhirServers = ["loopback"]
    # Largest request body accepted, in bytes; also the largest FHIR response read.
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Most Bundle entries (draft orders and prefetch together) in one request.
    max_entries: int = Field(default=5000, ge=1)
    rules: RulesConfig = Field(default_factory=RulesConfig)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _snooze_within_retention(self) -> Settings:
        """A snooze rests on stored feedback: the feedback must outlive the snooze."""
        for rule in all_rules():
            days = self.snooze_days_for(rule.id)
            if days > self.retention_days:
                where = "snooze_days" if days == self.snooze_days else f"rules.{rule.id}.snooze_days"
                raise ValueError(f"{where} is {days}, longer than retention_days ({self.retention_days})")
        return self

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cds-service.db'}"

    def rule_config(self, rule_id: str) -> RuleConfig:
        return getattr(self.rules, field_name(rule_id))

    def snooze_days_for(self, rule_id: str) -> int:
        own = self.rule_config(rule_id).snooze_days
        return self.snooze_days if own is None else own

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("CDS_CONFIG_FILE")
        if not config_file:
            return init_settings, env_settings
        if not Path(config_file).is_file():
            raise FileNotFoundError(f"CDS_CONFIG_FILE: no file at {config_file}")
        return init_settings, env_settings, _ConfigFile(settings_cls, toml_file=config_file)


@lru_cache
def get_settings() -> Settings:
    return Settings()
