"""The one settings object, read from the environment and ``.env``.

Only the edges (app factory, CLI, migrations entry point) read it; everything below them
receives plain values as arguments.
"""

import os
from decimal import Decimal
from typing import Literal

import limits
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from chat_ingest.cursors import derive_key

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./chat_ingest.db"
SUPPORTED_URL_SCHEMES = (
    "mysql+asyncmy",
    "mysql+aiomysql",
    "mariadb+asyncmy",
    "mariadb+aiomysql",
    "postgresql+asyncpg",
    "sqlite+aiosqlite",
)
# 4 workers x (DB_POOL_SIZE 20 + DB_MAX_OVERFLOW 10) = 120 connections: under MySQL's default
# max_connections (151).
MAX_DEFAULT_WORKERS = 4
RATE_LIMIT_STORAGE_SCHEMES = ("memory://", "redis://", "rediss://")
DIFY_URL_BACKENDS = ("mysql", "mariadb", "postgresql")
MIN_API_KEY_LENGTH = 24  # keys made by `keys create` are 47 characters


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = DEFAULT_DATABASE_URL
    table_layout: Literal["seed", "dify"] = "seed"
    dify_cache_ttl: float = Field(default=60.0, ge=0, le=3600)
    api_host: str = "0.0.0.0"
    api_port: int = Field(default=10000, ge=1, le=65535)
    api_workers: int | None = Field(default=None, ge=1, le=64)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    default_model_provider: str = Field(default="custom", min_length=1, max_length=64)
    default_model_id: str = Field(default="custom-model", min_length=1, max_length=128)
    token_estimation_enabled: bool = False
    price_per_1000_tokens: Decimal = Field(default=Decimal(0), ge=0, le=1_000_000)
    currency: str = Field(default="USD", min_length=1, max_length=8)
    metrics_enabled: bool = True

    auto_migrate: bool = True
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_batch_items: int = Field(default=1000, ge=1, le=100_000)
    db_pool_size: int = Field(default=20, ge=1, le=1000)
    db_max_overflow: int = Field(default=10, ge=0, le=1000)
    db_timeout: float = Field(default=10.0, gt=0, le=600)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_pool_pre_ping: bool = True
    db_retry_attempts: int = Field(default=4, ge=1, le=20)
    group_commit_max_records: int = Field(default=100, ge=1, le=10_000)
    group_commit_max_queue: int = Field(default=1000, ge=1, le=1_000_000)
    cursor_secret: str | None = Field(default=None, min_length=16)
    body_timeout: float = Field(default=30.0, gt=0, le=3600)
    api_limit_concurrency: int = Field(default=1000, ge=1, le=1_000_000)
    forwarded_allow_ips: str = ""

    @property
    def workers(self) -> int:
        """``API_WORKERS``, else one worker process per CPU core this process may use (a
        worker is one Python process, held to one core by the GIL, and a request costs more
        CPU in the service than in the database), at most ``MAX_DEFAULT_WORKERS``; always 1 on
        SQLite, which takes one writer at a time. See docs/deploy.md for the measurements."""
        if self.api_workers is not None:
            return self.api_workers
        if self.database_url.lower().startswith("sqlite"):
            return 1
        return max(1, min(len(os.sched_getaffinity(0)), MAX_DEFAULT_WORKERS))

    @property
    def cursor_key(self) -> bytes:
        """The key page cursors are signed with: ``CURSOR_SECRET``, or else one derived from
        the backend and database name, which every instance sharing the database agrees on
        however its ``DATABASE_URL`` is spelled (driver, host alias, user, password)."""
        if self.cursor_secret:
            return derive_key(self.cursor_secret)
        url = make_url(self.database_url)
        backend = {"mariadb": "mysql"}.get(url.get_backend_name(), url.get_backend_name())
        return derive_key(f"{backend}:{url.database or ''}")

    api_keys: str = ""
    auth_enabled: bool | None = None
    api_key_cache_ttl: float = Field(default=10.0, ge=0, le=3600)
    rate_limit: str | None = None
    rate_limit_storage: str = "memory://"
    auth_failure_limit: str | None = "20/minute"

    @property
    def auth_required(self) -> bool:
        """``AUTH_ENABLED``; when unset, on in the Dify layout and off in the seed layout."""
        if self.auth_enabled is not None:
            return self.auth_enabled
        return self.table_layout == "dify"

    @field_validator("log_level", "log_format", "table_layout", mode="before")
    @classmethod
    def _normalise_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        lowered = value.lower()
        return lowered if lowered in ("json", "text", "seed", "dify") else value.upper()

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].lower()
        if "://" not in value or scheme not in SUPPORTED_URL_SCHEMES:
            raise ValueError(f"must start with one of {', '.join(SUPPORTED_URL_SCHEMES)}")
        return value

    @field_validator("api_keys")
    @classmethod
    def _key_spec(cls, value: str) -> str:
        parse_api_keys(value)
        return value

    @field_validator("rate_limit", "auth_failure_limit", mode="before")
    @classmethod
    def _rate(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str):
            try:
                limits.parse(value)
            except ValueError:
                raise ValueError("must look like 600/minute or 10/second") from None
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _rate_storage(cls, value: str) -> str:
        if not value.startswith(RATE_LIMIT_STORAGE_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(RATE_LIMIT_STORAGE_SCHEMES)}")
        return value

    @model_validator(mode="after")
    def _dify_needs_a_server(self) -> "Settings":
        backend = self.database_url.split("://", 1)[0].split("+", 1)[0].lower()
        if self.table_layout == "dify" and backend not in DIFY_URL_BACKENDS:
            raise ValueError(
                "TABLE_LAYOUT=dify needs DATABASE_URL to point at Dify's PostgreSQL or MySQL "
                "database"
            )
        return self

    def api_key_scopes(self) -> dict[str, frozenset[str]]:
        return parse_api_keys(self.api_keys)


def parse_api_keys(spec: str) -> dict[str, frozenset[str]]:
    """``key=app1|app2,key2=*`` as ``{key: apps}``."""
    scopes: dict[str, frozenset[str]] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        key, separator, apps = entry.partition("=")
        app_ids = frozenset(filter(None, (app.strip() for app in apps.split("|"))))
        if not separator or not key.strip() or not app_ids:
            raise ValueError("must look like key=app1|app2,key2=*")
        if len(key.strip()) < MIN_API_KEY_LENGTH:
            raise ValueError(
                f"every key must be at least {MIN_API_KEY_LENGTH} characters long "
                "(`chat-ingest keys create` makes suitable ones)"
            )
        scopes[key.strip()] = app_ids
    return scopes


class ConfigurationError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


def load_settings() -> Settings:
    """Read the settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            ": ".join(filter(None, (".".join(str(p) for p in err["loc"]).upper(), err["msg"])))
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
