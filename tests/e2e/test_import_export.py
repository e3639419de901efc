"""``chat-ingest import`` and ``export`` as an operator runs them."""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db.engine import create_engine
from chat_ingest.db.models import conversations, message_files, messages
from tests.conftest import DatabaseFactory
from tests.e2e.servers import run_cli, serving

pytestmark = pytest.mark.asyncio


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def turn(conversation: int, turn: int, **fields: Any) -> dict[str, Any]:
    return {
        "app_id": "backfill",
        "user_id": f"user-{conversation}",
        "conversation_id": f"hist-{conversation}",
        "query": f"第{turn}个问题",
        "answer": f"answer {turn}",
        "created_at": f"2023-05-{conversation + 1:02d}T10:00:{turn:02d}Z",
    } | fields


def read_rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_import_rejects_bad_lines_and_is_safe_to_rerun(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"}
    source = write_lines(
        tmp_path / "history.jsonl",
        [
            turn(0, 0, client_message_id="given-key"),
            turn(0, 1),  # no client_message_id: one is derived
            {"app_id": "backfill", "user_id": "u", "query": "no conversation", "answer": "a"},
            "{not json",
            turn(1, 0, query=""),
            "",
            [1, 2],
            turn(1, 1, files=[{"url": "https://example.com/a.png", "type": "image"}]),
        ],
    )
    first = run_cli("import", str(source), env=env)
    assert first.returncode == 3, first.stderr
    assert first.stdout.strip() == "inserted 4, duplicates 0, rejected 3"
    rejects = read_rejects(tmp_path / "history.jsonl.rejects.jsonl")
    assert [r["line"] for r in rejects] == [4, 5, 7]
    assert rejects[0]["raw"] == "{not json" and "JSON" in rejects[0]["error"]
    assert "query" in rejects[1]["error"]

    again = run_cli("import", str(source), env=env)
    assert again.returncode == 3
    assert again.stdout.strip() == "inserted 0, duplicates 4, rejected 3"


async def test_interrupted_import_resumes_without_duplicates(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"}
    lines = [turn(c, t) for c in range(10) for t in range(5)]
    write_lines(tmp_path / "part.jsonl", lines[:23])  # what landed before the interruption
    assert run_cli("import", str(tmp_path / "part.jsonl"), env=env).returncode == 0
    full = run_cli("import", str(write_lines(tmp_path / "all.jsonl", lines)), env=env)
    assert full.returncode == 0
    assert full.stdout.strip() == "inserted 27, duplicates 23, rejected 0"


async def test_import_from_stdin_over_http(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"}
    source = write_lines(tmp_path / "in.jsonl", [turn(c, 0) for c in range(30)] + ["oops"])
    with serving(env) as [url]:
        result = run_cli(
            "import", "-", "--url", url, "--chunk-size", "7", env={}, cwd=tmp_path,
            stdin=source.read_bytes(),
        )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == "inserted 30, duplicates 0, rejected 1"
    assert read_rejects(tmp_path / "import.rejects.jsonl")[0]["line"] == 31


async def _snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """The stored records, minus what a re-import legitimately changes (generated ids)."""
    async with engine.connect() as connection:
        convs = [dict(r._mapping) for r in await connection.execute(select(conversations))]
        msgs = [dict(r._mapping) for r in await connection.execute(select(messages))]
        files = [dict(r._mapping) for r in await connection.execute(select(message_files))]
    by_message = {m["id"]: m["client_message_id"] or m["id"] for m in msgs}
    for m in msgs:
        m["client_message_id"] = m["client_message_id"] or m["id"]
    for f in files:
        f["message"] = by_message[f.pop("message_id")]
        del f["id"]
    for m in msgs:
        del m["id"]
    key = json.dumps
    return {
        "conversations": sorted(convs, key=lambda r: r["id"]),
        "messages": sorted(msgs, key=lambda r: key(r["client_message_id"])),
        "files": sorted(files, key=lambda r: (r["message"], r["url"])),
    }


async def _message_ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        statement = select(messages.c.id).where(messages.c.app_id == "backfill")
        return set((await connection.scalars(statement)).all())


@pytest.mark.parametrize("backend_name", ["mysql", "postgresql", "sqlite"])
async def test_export_then_import_reproduces_the_records(tmp_path: Path, backend_name: str) -> None:
    factory = DatabaseFactory(backend_name, tmp_path)
    source_url, target_url = await factory.new_url(), await factory.new_url()
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            turn(c, t, inputs={"k": [c, t]}, metadata={"latency": 0.25 * t, "n": "中"},
                 message_tokens=t, total_price="0.000123", model_id=f"m-{t}",
                 files=[{"url": f"/f/{c}/{t}", "belongs_to": "assistant"}] if t == 2 else [])
            for c in range(4) for t in range(3)
        ]
        + [turn(9, 0, app_id="other-app")],
    )  # fmt: skip
    assert run_cli("import", str(source), env={"DATABASE_URL": source_url}).returncode == 0
    exported = run_cli(
        "export", "--app-id", "backfill", "--output", str(tmp_path / "out.jsonl"),
        env={"DATABASE_URL": source_url},
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 12
    stamps = [json.loads(line)["created_at"] for line in lines]
    assert stamps == sorted(stamps)
    reimport = run_cli("import", str(tmp_path / "out.jsonl"), env={"DATABASE_URL": target_url})
    assert reimport.stdout.strip() == "inserted 12, duplicates 0, rejected 0"

    original, copy = create_engine(source_url), create_engine(target_url)
    try:
        before, after = await _snapshot(original), await _snapshot(copy)
        ids_before, ids_after = await _message_ids(original), await _message_ids(copy)
    finally:
        await original.dispose()
        await copy.dispose()
        await factory.drop_all()
    before["conversations"] = [c for c in before["conversations"] if c["app_id"] == "backfill"]
    before["messages"] = [m for m in before["messages"] if m["app_id"] == "backfill"]
    assert after == before
    assert ids_after == ids_before  # message ids travel as message_id


async def test_export_filters_by_user_and_since(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"}
    run_cli("import", str(write_lines(tmp_path / "in.jsonl", [
        turn(c, t) for c in range(3) for t in range(3)
    ])), env=env)  # fmt: skip
    by_user = run_cli("export", "--app-id", "backfill", "--user-id", "user-1", env=env)
    assert [json.loads(x)["user_id"] for x in by_user.stdout.splitlines()] == ["user-1"] * 3
    since = run_cli("export", "--app-id", "backfill", "--since", "2023-05-02T10:00:01", env=env)
    assert len(since.stdout.splitlines()) == 5
