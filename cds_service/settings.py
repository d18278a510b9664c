"""Service settings, read once from ``CDS_``-prefixed environment variables.

Every setting is documented in the README's configuration table; the field names here are
the variable names without the prefix.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Where the embedded database and the generated patient-id key live.
    data_dir: Path = PROJECT_ROOT / "var"
    # Defaults to a SQLite file in data_dir.
    database_url: str | None = None
    # Key of the hash that stands for patient ids in storage; generated into data_dir when unset.
    patient_id_key: SecretStr | None = None
    cards_dir: Path = PROJECT_ROOT / "cards"
    # One deadline for all FHIR fetches of a call, in seconds.
    fhir_deadline_seconds: float = Field(default=2.0, gt=0, le=30)
    # Search pages followed per prefetch key (Bundle `next` links).
    fhir_max_pages: int = Field(default=5, ge=1, le=100)
    # How long an accepted card stays quiet for the same draft order, in minutes.
    accepted_quiet_minutes: int = Field(default=60, ge=0)
    cors_origins: list[str] = ["*"]
    log_level: str = "INFO"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cds-service.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
