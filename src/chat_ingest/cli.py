"""The ``chat-ingest`` command line. Every command reads the same settings as the service."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
import uvicorn

from chat_ingest.config import ConfigurationError, Settings, load_settings
from chat_ingest.db import migrate
from chat_ingest.db.engine import create_engine
from chat_ingest.log_setup import configure_logging

T = TypeVar("T")
app = typer.Typer(help="chat-ingest: store and read Dify-style chat records.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        typer.echo(f"chat-ingest: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _with_engine(settings: Settings, action: Callable[..., Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [default: API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: API_PORT]")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes [default: API_WORKERS]")
    ] = None,
) -> None:
    """Run the HTTP API (uvicorn). On SIGTERM, requests in flight get up to 30 s to finish."""
    settings = _settings()
    uvicorn.run(
        "chat_ingest.api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=30,
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = _settings()
    _with_engine(settings, lambda engine: migrate.upgrade(engine, revision))
    typer.echo(f"database at revision {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's current revision and the newest one available."""
    settings = _settings()
    current = _with_engine(settings, migrate.current_revision)
    typer.echo(f"current: {current or 'none (empty database)'}; head: {migrate.head_revision()}")


@db_app.command("sql")
def db_sql() -> None:
    """Print the DDL for the configured backend, without touching the database."""
    typer.echo(migrate.offline_sql(_settings().database_url), nl=False)
