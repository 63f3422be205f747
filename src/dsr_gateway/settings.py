"""Settings from `DSR_`-prefixed environment variables (and an optional `.env`).

Read only by app.py, cli.py and the migrations; everything else receives what it needs as arguments.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SUPPORTED_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEV_SECRETS_FILE = Path(".dsr_gateway_dev_secrets.json")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DSR_", env_file=".env", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite+aiosqlite:///./dsr_gateway.db"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # The longest a consent write (setConsents, withdrawConsent, a one-click unsubscribe) waits for its
    # subject while another transaction holds it (PostgreSQL; SQLite waits its busy timeout): a consent
    # import holds the subjects it extends until it commits, and a write kept waiting holds a pooled
    # connection meanwhile. Past it the call is answered ConflictError ("send it again"). 0: no limit.
    consent_lock_timeout_seconds: float = Field(default=10.0, ge=0, le=3600)
    # consentCheck reads are written to the personal-data access log once per client, purpose and
    # subject per window of this many seconds (docs/audit.md).
    access_log_window_seconds: float = Field(default=60.0, gt=0, le=3600)

    jwt_secret: SecretStr | None = None
    jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwks_cache_seconds: int = Field(default=600, ge=10)

    # Keys for data we hold: encryption of emails/phones at rest, keyed lookup hashes, signed links.
    encryption_key: SecretStr | None = None
    hmac_key: SecretStr | None = None
    # Ed25519 key that signs audit checkpoints and consent receipts: base64 of the raw 32-byte private
    # key, or a PKCS8 PEM. Its public half is served at /.well-known/jwks.json.
    signing_key: SecretStr | None = None

    # The PII controller named in consent receipts.
    controller_name: str = "Example Controller"
    controller_contact: str = "Data Protection Officer"
    controller_email: str = "privacy@example.com"
    controller_phone: str | None = None
    controller_address: str | None = None  # e.g. "1 Main Street, Brussels"
    controller_country: str | None = None  # ISO 3166-1 alpha-2
    controller_url: str | None = None
    # The `jurisdiction` member of consent receipts (Kantara CR v1.1), e.g. "EU", "UK", "US-CA".
    receipt_jurisdiction: str = "EU"

    public_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_query_depth: int = Field(default=12, ge=2, le=64)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=5000, ge=100)
    log_level: str = "INFO"

    # Messages and links to subjects (docs/communication.md).
    templates_dir: Path | None = None
    organisation_name: str = "dsr-gateway"
    privacy_contact: str = "privacy@example.com"
    # Signed links: the id of DSR_HMAC_KEY in new tokens, and retired keys still accepted, by id.
    link_key_id: int = Field(default=1, ge=0, le=255)
    previous_link_keys: dict[int, SecretStr] = Field(default_factory=dict)
    gpc_last_update: date = date(2026, 11, 29)
    # Reviews and messages to subjects (docs/communication.md): links printed in messages, how long a
    # reconfirmation link works, the minimum gap between two campaign reminders to one subject about one
    # purpose, the grace after a reconfirmation period before the expiry sweep records EXPIRE, the loops.
    preferences_url: str | None = None
    notice_url: str | None = None
    reconfirm_link_days: int = Field(default=30, ge=1, le=365)
    campaign_min_interval_days: int = Field(default=30, ge=0, le=3660)
    consent_expiry_grace_days: int = Field(default=14, ge=0, le=3660)
    supervisory_authority_name: str = "your data protection supervisory authority"
    supervisory_authority_url: str | None = None
    consent_expiry_sweep_seconds: float = Field(default=3600.0, gt=0)
    webhook_poll_seconds: float = Field(default=5.0, gt=0)
    # How often the worker makes the receipts and messages of new consent changes (consent_followups.py).
    consent_followup_poll_seconds: float = Field(default=1.0, gt=0)
    # May webhooks go to loopback, private, link-local or local-name addresses? Unset: only in
    # development (production refuses them at registration and at every delivery).
    webhook_allow_private_addresses: bool | None = None
    # Fulfilment: the data systems file, where access packages go, how long their links work, and the
    # Ed25519 key that signs erasure certificates (base64 of PKCS#8 DER or of the 32 raw bytes, or PEM).
    systems_file: Path | None = None
    export_dir: Path = Path("./exports")
    export_link_days: int = Field(default=7, ge=1, le=90)
    # SLA calendars per regime (api.md): IANA time zone and a `holidays` code ("" = weekends only).
    sla_gdpr_tz: str = "Europe/Brussels"
    sla_gdpr_holidays: str = ""
    sla_uk_gdpr_tz: str = "Europe/London"
    sla_uk_gdpr_holidays: str = "GB-ENG"
    sla_ccpa_tz: str = "America/Los_Angeles"
    sla_ccpa_holidays: str = "US-CA"
    sla_vcdpa_tz: str = "America/New_York"
    sla_vcdpa_holidays: str = "US-VA"
    sla_lgpd_tz: str = "America/Sao_Paulo"
    sla_lgpd_holidays: str = "BR"
    sla_pipeda_tz: str = "America/Toronto"
    sla_pipeda_holidays: str = "CA-ON"
    # GDPR lets the clock stop only where the operator opts in (legal-clocks.md: default no).
    sla_gdpr_pauses: bool = False

    # Outbound email (the outbox sender). No host: messages stay in the outbox and go to the log.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_from: str = "privacy@localhost"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)

    # Background loops. None = in-process with `serve` on SQLite, separate `dsr-gateway worker` otherwise.
    worker_in_process: bool | None = None
    outbox_poll_seconds: float = Field(default=5.0, gt=0)
    sla_sweep_seconds: float = Field(default=300.0, gt=0)
    # Fulfilment steps (docs/fulfilment.md): how often the worker looks for due steps, how long a claim
    # lasts without a heartbeat, and the retry budget with exponential backoff (capped, with jitter).
    fulfilment_poll_seconds: float = Field(default=2.0, gt=0)
    fulfilment_lease_seconds: float = Field(default=300.0, gt=0)
    fulfilment_max_attempts: int = Field(default=6, ge=1, le=100)
    fulfilment_retry_base_seconds: float = Field(default=30.0, ge=0)
    fulfilment_retry_cap_seconds: float = Field(default=3600.0, ge=0)
    fulfilment_callback_wait_seconds: float = Field(default=86400.0, gt=0)
    # Signed checkpoints of every chain head by the worker; 0 turns the schedule off (docs/audit.md).
    checkpoint_seconds: float = Field(default=3600.0, ge=0)
    # `dsr-gateway worker` serves its own /metrics on this port (its counters); None = not served.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if "://" not in value or scheme not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"unsupported database URL scheme {scheme!r}; use one of {', '.join(SUPPORTED_SCHEMES)} "
                "(for example postgresql+asyncpg://user@host/db)"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("*", mode="after")
    @classmethod
    def _valid_sla_calendar(cls, value: Any, info: Any) -> Any:
        name = info.field_name or ""
        if name.startswith("sla_") and name.endswith("_tz"):
            from dsr_gateway.connectors.holiday_calendar import load_zone

            load_zone(value)
        elif name.startswith("sla_") and name.endswith("_holidays"):
            from dsr_gateway.connectors.holiday_calendar import parse_holiday_code

            parse_holiday_code(value)
        return value

    def sla_calendar_settings(self) -> dict[str, tuple[str, str]]:
        """(time zone, holiday code) per regime name, e.g. {"UK_GDPR": ("Europe/London", "GB-ENG")}."""
        regimes = ("GDPR", "UK_GDPR", "CCPA", "VCDPA", "LGPD", "PIPEDA")
        return {
            r: (getattr(self, f"sla_{r.lower()}_tz"), getattr(self, f"sla_{r.lower()}_holidays"))
            for r in regimes
        }

    @property
    def runs_worker_in_process(self) -> bool:
        return self.is_sqlite if self.worker_in_process is None else self.worker_in_process

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            if self.jwt_secret is None and self.jwks_url is None:
                raise ValueError("production needs DSR_JWT_SECRET or DSR_JWKS_URL to verify tokens")
            missing = [n for n in ("encryption_key", "hmac_key", "signing_key") if getattr(self, n) is None]
            if missing:
                names = ", ".join(f"DSR_{n.upper()}" for n in missing)
                raise ValueError(f"production needs {names}")
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("DSR_JWT_SECRET must be at least 32 characters (HS256 needs a 256-bit key)")
        return self

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @property
    def webhooks_may_reach_private_addresses(self) -> bool:
        if self.webhook_allow_private_addresses is not None:
            return self.webhook_allow_private_addresses
        return self.is_development

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_development_secrets(self, secrets_file: Path = DEV_SECRETS_FILE) -> Settings:
        """Fill missing secrets in development from a local file made on first use.

        A newcomer then gets working tokens and encryption with no configuration, and the server and
        `dsr-gateway dev-tokens` agree on the same secret. Production never reaches this.
        """
        if not self.is_development:
            return self
        missing = [
            name
            for name in ("jwt_secret", "encryption_key", "hmac_key")
            if getattr(self, name) is None and not (name == "jwt_secret" and self.jwks_url)
        ]
        if not missing and self.signing_key is not None:
            return self
        stored = _load_or_create_dev_secrets(secrets_file)
        updates: dict[str, Any] = {name: SecretStr(stored[name]) for name in missing}
        if self.signing_key is None:
            updates["signing_key"] = SecretStr(_dev_signing_key(stored, secrets_file))
        return self.model_copy(update=updates)


def _dev_signing_key(stored: dict[str, str], path: Path) -> str:
    """The development Ed25519 key, added to an existing secrets file made before it existed."""
    if "signing_key" not in stored:
        # 32 random bytes are a valid raw Ed25519 private key.
        stored["signing_key"] = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        path.write_text(json.dumps(stored))
    return stored["signing_key"]


def _load_or_create_dev_secrets(path: Path) -> dict[str, str]:
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    data = {name: secrets.token_urlsafe(48) for name in ("jwt_secret", "encryption_key", "hmac_key")}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return data
