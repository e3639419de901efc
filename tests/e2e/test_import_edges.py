"""The edges of ``chat-ingest import`` as an operator meets them: a rejects file that is the
input, requests larger than the service takes, editing a file between runs, byte order marks
and line endings, databases that cannot be used, and Ctrl-C."""

import json
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from chat_ingest.importer import CHUNKS_IN_FLIGHT
from tests.conftest import DatabaseFactory
from tests.e2e.servers import CLI, _environment, free_port, run_cli, serving
from tests.e2e.test_import_export import read_rejects, turn, write_lines


def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"}


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("alias", ["same path", "relative path", "symlink", "hard link"])
def test_rejects_onto_the_input_is_refused_before_anything_is_written(
    tmp_path: Path, alias: str
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [turn(0, 0), "oops"])
    before = source.read_bytes()
    rejects = {
        "same path": str(source),
        "relative path": "./in.jsonl",
        "symlink": str(tmp_path / "link.jsonl"),
        "hard link": str(tmp_path / "hard.jsonl"),
    }[alias]
    if alias == "symlink":
        (tmp_path / "link.jsonl").symlink_to(source)
    if alias == "hard link":
        (tmp_path / "hard.jsonl").hardlink_to(source)

    result = run_cli(
        "import", str(source), "--rejects", rejects, env=sqlite_env(tmp_path), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "is the input file itself" in one_line(result.stderr)
    assert source.read_bytes() == before
    assert not (tmp_path / "db.sqlite").exists()  # refused before the database was opened


@pytest.mark.parametrize("conversation_id", ["given", "derived with created_at", "derived"])
def test_keyless_lines_keep_their_keys_when_the_file_is_edited(
    tmp_path: Path, conversation_id: str
) -> None:
    """Without client_message_id (and, but for the first case, conversation_id), a line is
    keyed by its content; a derived conversation id leads with created_at when there is one."""
    env = sqlite_env(tmp_path)
    drop = {"given": (), "derived with created_at": ("conversation_id",)}.get(
        conversation_id, ("conversation_id", "created_at")
    )

    def keyless(conversation: int, number: int) -> dict[str, str]:
        line = turn(conversation, number)
        return {field: value for field, value in line.items() if field not in drop}

    twin = keyless(1, 0)
    lines = [keyless(0, 0), "{broken", keyless(0, 1), twin, twin, keyless(0, 2)]
    source = write_lines(tmp_path / "in.jsonl", lines)
    first = run_cli("import", str(source), env=env)
    assert first.returncode == 3
    assert first.stdout.strip() == "inserted 5, duplicates 0, rejected 1"  # twins are two

    write_lines(source, [line for line in lines if line != "{broken"])  # the rejected line goes
    again = run_cli("import", str(source), env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "inserted 0, duplicates 5, rejected 0"

    write_lines(source, [keyless(2, 0), *lines[2:]])  # a new first line, the first turn deleted
    edited = run_cli("import", str(source), env=env)
    assert edited.stdout.strip() == "inserted 1, duplicates 4, rejected 0"


def test_byte_order_mark_and_every_line_ending(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    bodies = [json.dumps(turn(c, 0), ensure_ascii=False) for c in range(3)] + ["oops"]
    variants = {
        "crlf.jsonl": "\ufeff" + "\r\n".join(bodies) + "\r\n",
        "cr.jsonl": "\ufeff" + "\r".join(bodies),
        "lf.jsonl": "\n".join(bodies) + "\n",
    }
    outcomes = []
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content.encode())
        result = run_cli("import", str(tmp_path / name), env=env)
        rejected = read_rejects(tmp_path / f"{name}.rejects.jsonl")
        assert [(r["line"], r["raw"]) for r in rejected] == [(4, "oops")], name
        outcomes.append(result.stdout.strip())
    # The same lines get the same keys whatever the line endings or BOM: stored once.
    assert outcomes == [
        "inserted 3, duplicates 0, rejected 1",
        "inserted 0, duplicates 3, rejected 1",
        "inserted 0, duplicates 3, rejected 1",
    ]


def test_url_import_splits_batches_to_fit_the_service(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    lines = [turn(c, 0, answer="答" * 150) for c in range(20)]  # ~700 bytes each
    lines[6] = turn(6, 0, answer="大" * 2000)  # line 7: ~6 KB, more than the service takes
    source = write_lines(tmp_path / "in.jsonl", lines)
    service = {"MAX_BODY_BYTES": "4096", "MAX_BATCH_ITEMS": "4"} | env
    with serving(service) as [url]:
        # Told the item limit, not the size limit: the 413s teach it.
        learned = run_cli("import", str(source), "--url", url, "--max-batch-items", "4", env={})
        assert learned.returncode == 3, learned.stderr
        assert learned.stdout.strip() == "inserted 19, duplicates 0, rejected 1"
        [rejected] = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
        assert rejected["line"] == 7 and rejected["error"].startswith("413")

        told = run_cli(
            "import", str(source), "--url", url, "--max-batch-items", "4",
            "--max-body-bytes", "4096", env={},
        )  # fmt: skip
        assert told.stdout.strip() == "inserted 0, duplicates 19, rejected 1"
        [rejected] = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
        assert rejected["line"] == 7 and "MAX_BODY_BYTES 4096" in rejected["error"]


async def _read_only_postgres(tmp_path: Path) -> tuple[str, DatabaseFactory]:
    """A migrated PostgreSQL database whose transactions are all read-only."""
    factory = DatabaseFactory("postgresql", tmp_path)
    url = await factory.new_url()
    assert run_cli("db", "upgrade", env={"DATABASE_URL": url}).returncode == 0
    admin = create_async_engine(make_url(url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        name = make_url(url).database
        await connection.execute(
            text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        )
    await admin.dispose()
    return url, factory


MYSQL_WRONG_PASSWORD = "mysql+asyncmy://root:not-the-password@127.0.0.1:3306/test"
MYSQL_UNKNOWN_DATABASE = "mysql+asyncmy://root@127.0.0.1:3306/chat_ingest_no_such_database"
POSTGRES_UNKNOWN_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/chat_ingest_no_such"


@pytest.mark.parametrize(
    ("database_url", "reason"),
    [
        (MYSQL_WRONG_PASSWORD, "Access denied"),
        (MYSQL_UNKNOWN_DATABASE, "Unknown database"),
        (POSTGRES_UNKNOWN_DATABASE, "does not exist"),
    ],
)
@pytest.mark.parametrize("command", ["import", "export", "serve"])
def test_a_database_that_refuses_us_is_one_line(
    tmp_path: Path, command: str, database_url: str, reason: str
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [turn(0, 0)])
    args = {
        "import": ["import", str(source)],
        "export": ["export", "--app-id", "backfill"],
        "serve": ["serve", "--port", str(free_port())],
    }[command]
    result = run_cli(*args, env={"DATABASE_URL": database_url}, cwd=tmp_path)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "cannot use the database" in line and reason in line
    assert "not-the-password" not in line


@pytest.mark.asyncio
async def test_a_read_only_database_stops_the_import_with_one_line(tmp_path: Path) -> None:
    url, factory = await _read_only_postgres(tmp_path)
    try:
        source = write_lines(tmp_path / "in.jsonl", [turn(0, 0)])
        result = run_cli("import", str(source), env={"DATABASE_URL": url})
    finally:
        await factory.drop_all()
    assert result.returncode == 1
    assert "read-only transaction" in one_line(result.stderr)


def _stored_messages(database: Path) -> int:
    try:
        with sqlite3.connect(database, timeout=5) as connection:
            return int(connection.execute("SELECT count(*) FROM messages").fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def test_ctrl_c_says_what_was_stored_and_a_rerun_finishes(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    total = 20_000
    source = write_lines(
        tmp_path / "in.jsonl",
        [turn(0, 0, conversation_id=f"c-{c}", query=f"q {c}") for c in range(total)],
    )
    process = subprocess.Popen(
        [*CLI, "import", str(source), "--chunk-size", "100"],
        env=_environment({"LOG_LEVEL": "WARNING"} | env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while _stored_messages(tmp_path / "db.sqlite") < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()  # leave no process or pipe behind for the next test to trip on
        process.communicate()
        raise
    assert process.returncode == 130, stderr
    match = re.fullmatch(
        r"interrupted: inserted (\d+), duplicates 0, rejected 0 so far; re-run to finish "
        r"\(nothing is stored twice\)",
        one_line(stderr),
    )
    assert match, stderr
    reported = int(match.group(1))
    stored = _stored_messages(tmp_path / "db.sqlite")
    # The count is of chunks settled; those in flight may have committed by then.
    assert 500 - CHUNKS_IN_FLIGHT * 100 <= reported <= stored < total

    rerun = run_cli("import", str(source), env=env)
    assert rerun.stdout.strip() == f"inserted {total - stored}, duplicates {stored}, rejected 0"
    assert _stored_messages(tmp_path / "db.sqlite") == total
