"""Building the runtime objects (database, insert policy) from the settings, for the app
factory and the CLI alike."""

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.config import Settings
from chat_ingest.db.engine import EngineOptions, create_engine, timestamp_range
from chat_ingest.db.unit_of_work import Database
from chat_ingest.service.records import InsertPolicy
from chat_ingest.stores.base import Store
from chat_ingest.stores.dify.schema import inspect_dify_schema
from chat_ingest.stores.dify.store import DifyStore
from chat_ingest.stores.dify.tables import DifyTables
from chat_ingest.stores.dify.types import DATETIME_RANGE
from chat_ingest.stores.seed import SeedStore


def insert_policy(settings: Settings) -> InsertPolicy:
    return InsertPolicy(
        default_model_provider=settings.default_model_provider,
        default_model_id=settings.default_model_id,
        currency=settings.currency,
        token_estimation_enabled=settings.token_estimation_enabled,
        price_per_1000_tokens=settings.price_per_1000_tokens,
        timestamps=DATETIME_RANGE
        if settings.table_layout == "dify"
        else timestamp_range(make_url(settings.database_url)),
    )


def open_database(settings: Settings) -> Database:
    options = EngineOptions(
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        timeout=settings.db_timeout,
        pool_recycle=settings.db_pool_recycle,
        pre_ping=settings.db_pool_pre_ping,
    )
    engine = create_engine(settings.database_url, options)
    return Database(engine, attempts=settings.db_retry_attempts, time_budget=settings.db_timeout)


async def check_dify_schema(engine: AsyncEngine) -> DifyTables:
    """The Dify tables to write, read from the schema without changing it; a missing table or
    column is a ``DifySchemaMismatch`` naming it."""
    return await Database(engine).run(inspect_dify_schema)


async def open_store(settings: Settings, engine: AsyncEngine) -> Store:
    """The table layout the service reads and writes; Dify's after its schema check (which
    raises ``DifySchemaMismatch`` naming what is missing)."""
    if settings.table_layout == "dify":
        return DifyStore(await check_dify_schema(engine), settings.dify_cache_ttl)
    return SeedStore()
