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
from chat_ingest.api.ratelimit import RateLimiter
from chat_ingest.api.routes import console, insert, ops, read
from chat_ingest.api.routes import metrics as metrics_route
from chat_ingest.config import Settings, load_settings
from chat_ingest.cursors import CursorSigner
from chat_ingest.db import migrate
from chat_ingest.db.unit_of_work import Database
from chat_ingest.errors import DatabaseUnavailable
from chat_ingest.log_setup import configure_logging
from chat_ingest.runtime import insert_policy, open_database, open_store
from chat_ingest.service.access import KeyRing
from chat_ingest.service.group_commit import GroupCommitter
from chat_ingest.service.insert import SingleInserts, group_writer
from chat_ingest.service.keys import grants_from_environment
from chat_ingest.service.records import InsertPolicy
from chat_ingest.stores.base import Store
from chat_ingest.stores.dify.keys import DifyAppKeys
from chat_ingest.stores.dify.store import DifyStore

log = logging.getLogger(__name__)


def key_ring(settings: Settings, database: Database, store: Store) -> KeyRing:
    """Keys from API_KEYS, and from the api_keys table, or in the Dify layout Dify's own."""
    external = None
    if isinstance(store, DifyStore):
        external = DifyAppKeys(database, store.tables, settings.api_key_cache_ttl)
    return KeyRing(
        database,
        grants_from_environment(settings.api_key_scopes()),
        auth_enabled=settings.auth_required,
        ttl=settings.api_key_cache_ttl,
        external=external,
    )


def single_inserts(
    settings: Settings, database: Database, store: Store, policy: InsertPolicy
) -> SingleInserts:
    """Single inserts through group commit (see ``service/group_commit.py``)."""
    committer = GroupCommitter(
        group_writer(database, store),
        max_group=settings.group_commit_max_records,
        max_queue=settings.group_commit_max_queue,
        time_budget=settings.db_timeout,
    )
    return SingleInserts(committer, policy)


def rate_limiter(settings: Settings) -> RateLimiter | None:
    if settings.rate_limit is None:
        return None
    return RateLimiter(settings.rate_limit, settings.rate_limit_storage)


def auth_failure_limiter(settings: Settings) -> RateLimiter | None:
    """Failed authentications per client address (``AUTH_FAILURE_LIMIT``), against guessing."""
    if settings.auth_failure_limit is None:
        return None
    return RateLimiter(
        settings.auth_failure_limit, settings.rate_limit_storage, key_prefix="chat_ingest_auth"
    )


def _log_start(settings: Settings) -> None:
    """Name the backend and host, never the URL itself (it may carry a password)."""
    url = make_url(settings.database_url)
    host = f"{url.host}:{url.port}" if url.port else url.host
    log.info(
        "starting",
        extra={
            "database_backend": url.get_backend_name(),
            "database_host": host or "local file",
            "database_name": url.database,
            "version": __version__,
        },
    )


def _warn_if_no_cursor_secret(settings: Settings) -> None:
    if settings.cursor_secret is None:
        log.warning(
            "CURSOR_SECRET is not set: page cursors are signed with a key derived from the "
            "database's backend and name, which anyone who knows them can reproduce; set "
            "CURSOR_SECRET (the same value on every instance behind one load balancer)"
        )


async def _warn_if_open(keys: KeyRing) -> None:
    try:
        enforced = await keys.enforced()
    except DatabaseUnavailable:
        log.warning("could not read the API keys at start; they are read again per request")
        return
    if not enforced:
        log.warning(
            "access control is off: no API key exists and AUTH_ENABLED is false; "
            "anyone who can reach this service can read and write every app's data"
        )


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = open_database(settings)
        _log_start(settings)
        try:
            if settings.table_layout == "dify" and settings.auto_migrate:
                log.info("TABLE_LAYOUT=dify: AUTO_MIGRATE does nothing; Dify owns the schema")
            elif settings.auto_migrate:
                await migrate.upgrade(database.engine)
            store = await open_store(settings, database.engine)
            app.state.settings = settings
            app.state.database = database
            app.state.store = store
            app.state.insert_policy = insert_policy(settings)
            app.state.single_inserts = single_inserts(
                settings, database, app.state.store, app.state.insert_policy
            )
            app.state.cursor_signer = CursorSigner(settings.cursor_key)
            app.state.key_ring = key_ring(settings, database, store)
            app.state.rate_limiter = rate_limiter(settings)
            app.state.auth_failure_limiter = auth_failure_limiter(settings)
            _warn_if_no_cursor_secret(settings)
            await _warn_if_open(app.state.key_ring)
            yield
        finally:
            if getattr(app.state, "single_inserts", None) is not None:
                await app.state.single_inserts.close()  # write every record it accepted
            for name in ("rate_limiter", "auth_failure_limiter"):
                if getattr(app.state, name, None) is not None:
                    getattr(app.state, name).close()
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
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
    )
    install_error_handlers(app)
    for module in (insert, ops, read, console):  # the busiest first: routes are tried in order
        app.include_router(module.router)
    if settings.metrics_enabled:
        app.include_router(metrics_route.router)
    install_openapi(app)
    return app
