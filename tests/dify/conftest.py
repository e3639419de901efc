"""Fixtures for ``TABLE_LAYOUT=dify``: a database with a Dify-shaped schema (``schema.py``) per
test session, on MariaDB/MySQL and on PostgreSQL (Dify has no SQLite schema)."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.config import Settings
from chat_ingest.db.engine import create_engine
from tests.conftest import DatabaseFactory, ServiceClient, make_settings
from tests.dify.schema import create_dify_database
from tests.dify.seed import DifyApp, create_dify_app

DIFY_BACKENDS = ("mysql", "postgresql")


@pytest.fixture(scope="session", params=DIFY_BACKENDS)
def dify_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="session")
async def dify_factory(
    dify_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(dify_backend, tmp_path_factory.mktemp(f"dify-{dify_backend}"))
    yield factory
    await factory.drop_all()


@pytest_asyncio.fixture(scope="session")
async def dify_url(dify_factory: DatabaseFactory) -> str:
    """A Dify database shared by the session's tests of one backend (they use their own apps)."""
    return await create_dify_database(dify_factory)


@pytest_asyncio.fixture(scope="session")
async def dify_engine(dify_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(dify_url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def dify_app(dify_engine: AsyncEngine) -> DifyApp:
    """A fresh chat app (with its model config and app API key) in the shared Dify database."""
    async with dify_engine.begin() as connection:
        return await create_dify_app(connection)


OPERATOR_KEY = "operator-key-for-dify-tests-0001"  # an API_KEYS key for every app


def dify_settings(url: str, **overrides: Any) -> Settings:
    return make_settings(
        url,
        table_layout="dify",
        api_keys=f"{OPERATOR_KEY}=*",
        api_key_cache_ttl=0.3,
        **overrides,
    )


@pytest_asyncio.fixture(scope="session")
async def dify_client(dify_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The service in the Dify layout on the shared Dify database; requests carry no key
    unless a test gives one (``operator`` below is the API_KEYS key)."""
    async with ServiceClient(dify_settings(dify_url)) as http:
        yield http


OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
