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
from chat_ingest.cursors import CursorSigner
from chat_ingest.db import migrate
from chat_ingest.log_setup import configure_logging
from chat_ingest.runtime import insert_policy, open_database

log = logging.getLogger(__name__)


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = open_database(settings)
        safe_url = make_url(settings.database_url).render_as_string(hide_password=True)
        log.info("starting", extra={"database": safe_url, "version": __version__})
        try:
            if settings.auto_migrate:
                await migrate.upgrade(database.engine)
            app.state.settings = settings
            app.state.database = database
            app.state.insert_policy = insert_policy(settings)
            app.state.cursor_signer = CursorSigner(settings.cursor_key)
            yield
        finally:
            await database.engine.dispose()

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
