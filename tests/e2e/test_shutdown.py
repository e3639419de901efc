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

from tests.conftest import ServiceClient, _create_server_database, make_settings, unique
from tests.e2e.private_mariadb import private_mariadb
from tests.e2e.servers import Server

# Private MariaDB servers run one at a time: two at once on the same worker pair
# failed to bootstrap under xdist.
pytestmark = [pytest.mark.asyncio, pytest.mark.xdist_group("private-mariadb")]

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
        server = Server({"DATABASE_URL": url, "API_WORKERS": "2"})
        server.launch()
        try:
            server.wait_until_healthy()
            process = server.process
            assert process is not None and len(_worker_pids(process.pid)) == 2
            body = {"app_id": unique("app"), "user_id": "u", "query": "q", "answer": "a"}
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
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
                process.send_signal(signal.SIGTERM)
                response = await in_flight
            process.wait(timeout=60)
            log = server.log()
        finally:
            server.close()  # only signals anything when something above failed
        assert response.status_code == 200 and response.json()["created"] is True
        assert process.returncode == 0
        assert log.count("stopped; database connections closed") == 2, log
        assert await _aborted_clients(database.server_url) == 0


async def test_pool_is_sized_by_settings_and_checks_connections() -> None:
    settings = make_settings(
        "mysql+asyncmy://u@db.invalid/chat", db_pool_size=7, db_max_overflow=3, db_pool_recycle=600
    )
    service = ServiceClient(settings)
    async with service:  # no connection is opened: AUTO_MIGRATE is off
        database = service.app.state.database
        pool = database.engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._recycle) == (7, 3, 600)
        assert pool._pre_ping is True  # a connection the database dropped is replaced, not used
        assert database.time_budget == settings.db_timeout
