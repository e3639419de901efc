"""The application factory: ``create_app(settings)`` wires settings, database and routes."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import make_url

from chat_ingest import __version__
from chat_ingest.api.errors import install_error_handlers
from chat_ingest.api.middleware import RequestContextMiddleware
from chat_ingest.api.openapi import install_openapi
from chat_ingest.api.routes import insert, ops, read
from chat_ingest.config import Settings, load_settings
from chat_ingest.db import migrate
from chat_ingest.db.engine import EngineOptions, create_engine, timestamp_range
from chat_ingest.db.unit_of_work import Database
from chat_ingest.log_setup import configure_logging
from chat_ingest.service.insert import InsertPolicy

log = logging.getLogger(__name__)


def insert_policy(settings: Settings) -> InsertPolicy:
    return InsertPolicy(
        default_model_provider=settings.default_model_provider,
        default_model_id=settings.default_model_id,
        currency=settings.currency,
        token_estimation_enabled=settings.token_estimation_enabled,
        price_per_1000_tokens=settings.price_per_1000_tokens,
        timestamps=timestamp_range(make_url(settings.database_url)),
    )


def open_database(settings: Settings) -> Database:
    options = EngineOptions(
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        timeout=settings.db_timeout,
        pool_recycle=settings.db_pool_recycle,
    )
    engine = create_engine(settings.database_url, options)
    return Database(engine, attempts=settings.db_retry_attempts, time_budget=settings.db_timeout)


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = open_database(settings)
        safe_url = make_url(settings.database_url).render_as_string(hide_password=True)
        log.info("starting", extra={"database": safe_url, "version": __version__})
        try:
            if settings.auto_migrate:
                await migrate.upgrade(database.engine)
            app.state.database = database
            app.state.insert_policy = insert_policy(settings)
            yield
        finally:
            await database.engine.dispose()  # close pooled connections properly (COM_QUIT)
            log.info("stopped; database connections closed")

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Without ``settings`` (uvicorn's factory mode) they are read from the
    environment and logging is configured here."""
    if settings is None:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
    app = FastAPI(
        title="chat-ingest",
        version=__version__,
        description="Write and read Dify-style chat records: conversations, messages, files.",
        lifespan=_lifespan(settings),
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    for module in (ops, insert, read):
        app.include_router(module.router)
    install_openapi(app)
    return app
