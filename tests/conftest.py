"""Real-database fixtures: one fresh database per backend per test session.

MariaDB/MySQL and PostgreSQL come from TEST_MYSQL_URL / TEST_POSTGRES_URL (defaults: the
local servers). When one is unreachable its tests are skipped, except under CI, where that
is a failure.
"""

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chat_ingest.api.app import create_app
from chat_ingest.config import Settings
from chat_ingest.db import migrate
from chat_ingest.db.engine import create_engine

MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql+asyncmy://root@127.0.0.1:3306/test")
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "mysql", "postgresql")


def _unreachable(backend: str, exc: BaseException) -> None:
    message = f"{backend} test server unreachable: {type(exc).__name__}: {exc}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


async def _administer(server_url: str, postgres_sql: str, mysql_sql: str) -> None:
    """Run one statement outside any transaction on the server of ``server_url``."""
    url = make_url(server_url)
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    sql = postgres_sql if url.get_backend_name() == "postgresql" else mysql_sql
    try:
        async with admin.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await admin.dispose()


async def _create_server_database(server_url: str, name: str) -> str:
    """CREATE DATABASE ``name`` on the server of ``server_url``; return its URL."""
    await _administer(
        server_url,
        f'CREATE DATABASE "{name}"',
        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    )
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def _drop_server_database(server_url: str, name: str) -> None:
    await _administer(
        server_url,
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        f"DROP DATABASE IF EXISTS `{name}`",
    )


class DatabaseFactory:
    """Creates empty databases on one backend and drops them at the end of the session."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.created: list[str] = []

    @property
    def server_url(self) -> str:
        return MYSQL_URL if self.backend == "mysql" else POSTGRES_URL

    async def new_url(self) -> str:
        name = f"chat_ingest_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp_path / name}.db"
        try:
            url = await _create_server_database(self.server_url, name)
        except Exception as exc:  # any failure to reach the server is reported the same way
            _unreachable(self.backend, exc)
        self.created.append(name)
        return url

    async def drop_all(self) -> None:
        for name in self.created:
            await _drop_server_database(self.server_url, name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.backends("mysql", "postgresql")`` keeps a test off the other backends:
    deselected, not skipped, because there it does not apply."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        off = marker is not None and backend is not None and backend not in marker.args
        (dropped if off else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="session")
async def database_factory(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(backend, tmp_path_factory.mktemp(backend))
    yield factory
    await factory.drop_all()


@pytest_asyncio.fixture(scope="session")
async def database_url(database_factory: DatabaseFactory) -> str:
    """A migrated database shared by the session's tests of one backend (they use unique ids)."""
    engine = await _migrated_engine(database_factory)
    await engine.dispose()
    return engine.url.render_as_string(hide_password=False)


@pytest_asyncio.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, auto_migrate=False, **overrides)


class ServiceClient:
    """An app built by ``create_app`` with its lifespan running, and an httpx client on it."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://service"
        )

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        return self.http

    async def __aexit__(self, *exc_info: object) -> None:
        await self.http.aclose()
        await self._lifespan.__aexit__(None, None, None)


@pytest_asyncio.fixture(scope="session")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with ServiceClient(make_settings(database_url)) as http:
        yield http


def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


async def _migrated_engine(factory: DatabaseFactory) -> AsyncEngine:
    engine = create_engine(await factory.new_url())
    await migrate.upgrade(engine)
    return engine


@pytest_asyncio.fixture(scope="session")
async def mysql_engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    """A migrated MariaDB/MySQL database, for the tests about MySQL itself."""
    factory = DatabaseFactory("mysql", tmp_path_factory.mktemp("mysql-only"))
    engine = await _migrated_engine(factory)
    yield engine
    await engine.dispose()
    await factory.drop_all()
