"""``serve --workers N``, pool settings and graceful shutdown: on SIGTERM a request in flight
still completes, and every worker closes its database connections properly before exiting."""

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import QueuePool

from chat_ingest.api.app import open_database
from chat_ingest.config import Settings
from tests.conftest import _create_server_database, unique
from tests.e2e.private_mariadb import private_mariadb
from tests.e2e.servers import free_port, start_server, stopped_log

pytestmark = pytest.mark.asyncio

BODY_PAUSE_SECONDS = 2.0  # the in-flight request's body is still arriving when SIGTERM lands


def _worker_pids(supervisor_pid: int) -> list[int]:
    """uvicorn's worker processes: the supervisor's children started by multiprocessing."""
    children = Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children").read_text()
    return [
        int(pid)
        for pid in children.split()
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


async def _slow_body(body: bytes) -> AsyncIterator[bytes]:
    yield body[:10]
    await asyncio.sleep(BODY_PAUSE_SECONDS)
    yield body[10:]


async def _aborted_clients(server_url: str) -> int:
    """Connections the server saw closed without a proper goodbye (COM_QUIT)."""
    engine = create_async_engine(server_url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(text("SHOW GLOBAL STATUS LIKE 'Aborted_clients'"))
            ).one()
    finally:
        await engine.dispose()
    return int(row[1])


async def test_sigterm_finishes_in_flight_requests_and_closes_every_pool(tmp_path: Path) -> None:
    with private_mariadb(tmp_path) as database:
        url = await _create_server_database(database.server_url, "chat")
        port = free_port()
        server = start_server({"DATABASE_URL": url}, port, "--workers", "2")
        told_to_stop = False
        try:
            assert len(_worker_pids(server.pid)) == 2
            body = {"app_id": unique("app"), "user_id": "u", "query": "q", "answer": "a"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                warm = [http.post("/api/chat/insert", json=body) for _ in range(20)]
                assert {r.status_code for r in await asyncio.gather(*warm)} == {200}
                in_flight = asyncio.create_task(
                    http.post(
                        "/api/chat/insert",
                        content=_slow_body(orjson.dumps(body)),
                        headers={"content-type": "application/json"},
                    )
                )
                await asyncio.sleep(BODY_PAUSE_SECONDS / 4)
                server.send_signal(signal.SIGTERM)
                told_to_stop = True
                response = await in_flight
            assert response.status_code == 200 and response.json()["created"] is True
        finally:
            if not told_to_stop:
                server.send_signal(signal.SIGTERM)
            log = stopped_log(server)
        assert server.returncode == 0
        assert log.count("stopped; database connections closed") == 2, log
        assert await _aborted_clients(database.server_url) == 0


@pytest.mark.parametrize("backend_url", ["mysql+asyncmy://u@h/db", "postgresql+asyncpg://u@h/db"])
async def test_pool_is_sized_by_settings_and_checks_connections(backend_url: str) -> None:
    settings = Settings(
        database_url=backend_url, db_pool_size=7, db_max_overflow=3, db_pool_recycle=600
    )
    database = open_database(settings)
    try:
        pool = database.engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._recycle) == (7, 3, 600)
        assert pool._pre_ping is True  # a connection the database dropped is replaced, not used
        assert database.time_budget == settings.db_timeout
    finally:
        await database.engine.dispose()
