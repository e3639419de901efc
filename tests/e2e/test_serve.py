"""The console script as a user runs it: serve, db commands, and bad configuration."""

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db import migrate
from chat_ingest.db.engine import create_engine
from tests.conftest import DatabaseFactory, unique
from tests.e2e.servers import run_cli, serving
from tests.integration.rows import conversation_row, count_rows


def test_serve_defaults_to_sqlite_in_the_working_directory(tmp_path: Path) -> None:
    with serving({}, cwd=tmp_path) as [url]:
        response = httpx.post(
            f"{url}/api/chat/insert",
            json={"app_id": "a", "user_id": "u", "query": "q", "answer": "a"},
        )
        assert response.status_code == 200 and response.json()["created"] is True
        assert httpx.get(f"{url}/api/chat/ready").json() == {"status": "ready", "database": "ok"}
    assert (tmp_path / "chat_ingest.db").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("API_PORT", "not-a-port"),
        ("DATABASE_URL", "oracle://x"),
        ("LOG_FORMAT", "xml"),
        ("API_HOST", "999.1.1.1"),
    ],
)
def test_bad_setting_stops_start_up_with_one_line(
    tmp_path: Path, variable: str, value: str
) -> None:
    result = run_cli("serve", env={variable: value}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0]


@pytest.mark.parametrize(
    "command", [["serve"], ["db", "upgrade"], ["db", "current"], ["import", "-"], ["keys", "list"]]
)
def test_unreachable_database_is_one_line_and_exit_1(command: list[str], tmp_path: Path) -> None:
    env = {"DATABASE_URL": "mysql+asyncmy://root:hunter2@127.0.0.1:1/x"}
    result = run_cli(*command, env=env, cwd=tmp_path, stdin=b"")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Cannot reach the database" in lines[0], result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "mysql+asyncmy://nobody:hunter2@127.0.0.1:3306/test",
        "postgresql+asyncpg://postgres:hunter2@127.0.0.1:5432/no_such_database_here",
    ],
    ids=["wrong-password", "unknown-database"],
)
def test_a_database_that_refuses_us_is_one_line_and_exit_1(url: str, tmp_path: Path) -> None:
    result = run_cli("serve", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot use the database" in lines[0], result.stderr
    assert "hunter2" not in result.stderr


def test_db_commands(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    before = run_cli("db", "current", env=env)
    assert "current: none" in before.stdout
    assert run_cli("db", "upgrade", env=env).returncode == 0
    assert f"current: {migrate.head_revision()}" in run_cli("db", "current", env=env).stdout
    mysql_sql = run_cli("db", "sql", env={"DATABASE_URL": "mysql+asyncmy://u@h/db"})
    assert "CREATE TABLE messages" in mysql_sql.stdout and "LONGTEXT" in mysql_sql.stdout


async def _race(urls: list[str], app_id: str, conversation_id: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as http:
        base = {"app_id": app_id, "user_id": "u", "answer": "a", "conversation_id": conversation_id}
        turns = [
            http.post(f"{urls[i % 2]}/api/chat/insert", json=base | {"query": f"turn {i}"})
            for i in range(50)
        ]
        replays = [
            http.post(
                f"{urls[i % 2]}/api/chat/insert",
                json=base | {"query": "same", "client_message_id": "same-key"},
            )
            for i in range(20)
        ]
        return list(await asyncio.gather(*turns, *replays))


@pytest.mark.asyncio
@pytest.mark.parametrize("backend_name", ["mysql", "postgresql", "sqlite"])
async def test_two_instances_race_on_one_new_database(tmp_path: Path, backend_name: str) -> None:
    factory = DatabaseFactory(backend_name, tmp_path)
    url = await factory.new_url()
    engine: AsyncEngine = create_engine(url)
    try:
        with serving({"DATABASE_URL": url}, count=2) as urls:  # both migrate at start
            app_id, conversation_id = unique("app"), unique("conv")
            responses = await _race(urls, app_id, conversation_id)
        assert [r.status_code for r in responses] == [200] * 70
        assert sum(r.json()["conversation_created"] for r in responses) == 1
        assert len({r.json()["message_id"] for r in responses[50:]}) == 1
        conversation = await conversation_row(engine, conversation_id)
        assert conversation is not None and conversation["dialogue_count"] == 51
        assert await count_rows(engine, app_id) == (1, 51)
    finally:
        await engine.dispose()
        await factory.drop_all()
