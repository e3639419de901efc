"""Bulk loading on MariaDB and PostgreSQL, side by side with a raw multi-row INSERT client.

For each backend, in one run, each into its own fresh database, the same generated file of
``--lines`` lines (one new conversation per line, ~150-character Chinese query, ~400-character
Chinese answer, ``inputs`` and ``metadata``, a ``created_at`` per line, no client_message_id):

- **raw**: the file parsed and written straight through the driver (asyncmy / asyncpg), no
  service code: multi-row INSERTs of 1,000 conversations and 1,000 messages per statement,
  one transaction per 1,000 lines, two transactions in flight (the ceiling);
- **bulk**: the same rows through the database's own bulk path, no service code: on
  PostgreSQL ``COPY`` (asyncpg's ``copy_records_to_table``, 1,000 lines per transaction, two
  in flight); on MariaDB ``LOAD DATA LOCAL INFILE`` of the same rows, tab-separated, from
  memory (asyncmy, 1,000 lines per transaction, two in flight);
- **import**: ``chat-ingest import FILE`` (database mode, default chunks), with its peak RSS;
- **batch**: ``chat-ingest serve --workers 2`` and ``POST /api/chat/insert/batch`` with 1,000
  lines per batch, two batches in flight.

    uv run python benchmarks/bulk.py [--lines 200000] [--mysql-url URL] [--postgres-url URL]
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg
import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from chat_ingest.db import local_infile

sys.path.insert(0, str(Path(__file__).parent))
from processes import CLI, run_import, start_serve, stop
from raw_ceiling import CONVERSATION_SQL, MESSAGE_SQL, rows
from rows import insert_body

BATCH = 1000
IN_FLIGHT = 2
CONVERSATION_COLUMNS = CONVERSATION_SQL.split("(", 1)[1].split(")", 1)[0]
MESSAGE_COLUMNS = MESSAGE_SQL.split("(", 1)[1].split(")", 1)[0]
CONVERSATION_NAMES = [name.strip() for name in CONVERSATION_COLUMNS.split(",")]
MESSAGE_NAMES = [name.strip() for name in MESSAGE_COLUMNS.split(",")]


HISTORY_STARTS = datetime(2024, 1, 1, tzinfo=UTC)


def write_file(path: Path, lines: int, first: int = 0) -> None:
    """``lines`` distinct insert bodies: texts drawn from a pool of 2,000, ``metadata.n``
    unique (numbered from ``first``, so that files written apart do not repeat each other),
    each with its own ``created_at`` a second after the previous line's, as a backfill of
    history has them (the importer then derives time-ordered conversation ids: see
    ``chat_ingest.importer``)."""
    rng = random.Random(7)
    pool = [insert_body(n, rng) for n in range(2000)]
    with path.open("wb") as out:
        for n in range(first, first + lines):
            body = pool[n % len(pool)] | {"user_id": f"user-{n % 5000}"}
            body["metadata"] = body["metadata"] | {"n": n}
            body["created_at"] = (HISTORY_STARTS + timedelta(seconds=n)).isoformat()
            out.write(orjson.dumps(body) + b"\n")


def batches(path: Path) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    with path.open("rb") as lines:
        for line in lines:
            batch.append(line)
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


async def _recreate(server_url: str, name: str) -> None:
    url = make_url(server_url)
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    postgres = url.get_backend_name() == "postgresql"
    create = (
        f'CREATE DATABASE "{name}"' if postgres else f"CREATE DATABASE `{name}` CHARSET utf8mb4"
    )
    drop = (
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        if postgres
        else f"DROP DATABASE IF EXISTS `{name}`"
    )
    async with admin.connect() as connection:
        await connection.execute(text(drop))
        await connection.execute(text(create))
    await admin.dispose()


def fresh_database(server_url: str, name: str) -> str:
    """An empty database ``name`` on the server, migrated by ``chat-ingest db upgrade``."""
    asyncio.run(_recreate(server_url, name))
    database_url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    env = os.environ | {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
    return database_url


async def raw_mysql(url: URL, path: Path) -> None:
    async def writer(work: Iterator[list[bytes]]) -> None:
        connection = await asyncmy.connect(
            host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
            db=url.database, autocommit=False, charset="utf8mb4",
        )  # fmt: skip
        async with connection.cursor() as cursor:
            await cursor.execute("SET time_zone = '+00:00'")
            for batch in work:
                planned = [rows(orjson.loads(line)) for line in batch]
                await cursor.executemany(CONVERSATION_SQL, [p[0] for p in planned])
                await cursor.executemany(MESSAGE_SQL, [p[1] for p in planned])
                await connection.commit()
        connection.close()

    work = batches(path)
    await asyncio.gather(*(writer(work) for _ in range(IN_FLIGHT)))


def _values(columns: int, count: int) -> str:
    return ",".join(
        "(" + ",".join(f"${r * columns + c + 1}" for c in range(columns)) + ")"
        for r in range(count)
    )


def _postgres_rows(body: dict[str, Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    conversation, message, _ = rows(body)
    aware = conversation[8].replace(tzinfo=UTC)
    conversation = (*conversation[:8], aware, aware)
    message = list(message)
    message[11] = Decimal(str(message[11]))  # provider_response_latency
    message[12] = Decimal(0)  # total_price
    message[17] = message[18] = aware
    return conversation, tuple(message)


PlannedRows = list[tuple[tuple[Any, ...], tuple[Any, ...]]]


async def _postgres_writers(
    url: URL, path: Path, write: Callable[[Any, PlannedRows], Awaitable[None]]
) -> None:
    """``IN_FLIGHT`` asyncpg connections taking 1,000 lines at a time from ``path``; each
    batch's rows are written by ``write`` in one transaction."""

    async def writer(work: Iterator[list[bytes]]) -> None:
        connection = await asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password,
            database=url.database,
        )  # fmt: skip
        for batch in work:
            planned = [_postgres_rows(orjson.loads(line)) for line in batch]
            async with connection.transaction():
                await write(connection, planned)
        await connection.close()

    work = batches(path)
    await asyncio.gather(*(writer(work) for _ in range(IN_FLIGHT)))


async def raw_postgres(url: URL, path: Path) -> None:
    async def insert(connection: Any, planned: PlannedRows) -> None:
        for table, columns, width, index in (
            ("conversations", CONVERSATION_COLUMNS, 10, 0),
            ("messages", MESSAGE_COLUMNS, 19, 1),
        ):
            statement = f"INSERT INTO {table} ({columns}) VALUES " + _values(width, len(planned))
            await connection.execute(statement, *[v for p in planned for v in p[index]])

    await _postgres_writers(url, path, insert)


async def raw_copy_postgres(url: URL, path: Path) -> None:
    async def copy(connection: Any, planned: PlannedRows) -> None:
        for table, names, index in (
            ("conversations", CONVERSATION_NAMES, 0),
            ("messages", MESSAGE_NAMES, 1),
        ):
            records = [p[index] for p in planned]
            await connection.copy_records_to_table(table, records=records, columns=names)

    await _postgres_writers(url, path, copy)


_TSV_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\0", "\\0"))


def _tsv(values: tuple[Any, ...]) -> str:
    """One row for LOAD DATA's default format. ``str.replace`` per special character, not
    ``str.translate``: with a mapping, translate looks up every character of non-ASCII text
    one by one, which made this ceiling measure the client's escaping."""
    fields = []
    for value in values:
        if value is None:
            fields.append("\\N")
            continue
        text = str(value)
        for special, escaped in _TSV_ESCAPES:
            if special in text:
                text = text.replace(special, escaped)
        fields.append(text)
    return "\t".join(fields) + "\n"


async def raw_load_mysql(url: URL, path: Path) -> None:
    """``LOAD DATA LOCAL INFILE`` of each 1,000 lines' rows, tab-separated, straight into the
    tables: one transaction per 1,000 lines, two in flight. The rows are sent from memory
    through the service's safe file sender (``chat_ingest.db.local_infile``), the only way
    asyncmy can do LOCAL."""
    local_infile.install()

    async def load(cursor: Any, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        with local_infile.offering("".join(map(_tsv, rows)).encode()) as name:
            await cursor.execute(
                f"LOAD DATA LOCAL INFILE '{name}' INTO TABLE {table}"
                f" CHARACTER SET utf8mb4 ({columns})"
            )

    async def writer(work: Iterator[list[bytes]]) -> None:
        connection = await asyncmy.connect(
            host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
            db=url.database, autocommit=False, charset="utf8mb4", local_infile=True,
        )  # fmt: skip
        async with connection.cursor() as cursor:
            await cursor.execute("SET time_zone = '+00:00'")
            for batch in work:
                planned = [rows(orjson.loads(line)) for line in batch]
                await load(cursor, "conversations", CONVERSATION_COLUMNS, [p[0] for p in planned])
                await load(cursor, "messages", MESSAGE_COLUMNS, [p[1] for p in planned])
                await connection.commit()
        connection.close()

    work = batches(path)
    await asyncio.gather(*(writer(work) for _ in range(IN_FLIGHT)))


class Server:
    def __init__(self, database_url: str, port: int = 10081) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {"LOG_LEVEL": "WARNING", "DB_POOL_SIZE": "8"}
        self.process = start_serve(database_url, port, env, workers=2)

    def stop(self) -> None:
        stop(self.process)


async def post_batches(base_url: str, path: Path) -> None:
    async def sender(http: httpx.AsyncClient, work: Iterator[list[bytes]]) -> None:
        for batch in work:
            body = b'{"items":[' + b",".join(line.rstrip(b"\n") for line in batch) + b"]}"
            response = await http.post(
                "/api/chat/insert/batch", content=body, headers={"content-type": "application/json"}
            )
            response.raise_for_status()
            assert response.json()["inserted"] == len(batch), response.text[:300]

    work = batches(path)
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as http:
        await asyncio.gather(*(sender(http, work) for _ in range(IN_FLIGHT)))


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(server_url: str, path: Path, lines: int) -> dict[str, Any]:
    backend = make_url(server_url).get_backend_name()
    raw = raw_postgres if backend == "postgresql" else raw_mysql
    result: dict[str, Any] = {"backend": backend}
    raw_url = fresh_database(server_url, "chat_ingest_bulk_raw")
    result["raw"] = lines / timed(lambda: asyncio.run(raw(make_url(raw_url), path)))
    bulk_url = make_url(fresh_database(server_url, "chat_ingest_bulk_load"))
    if backend == "postgresql":
        result["bulk"] = lines / timed(lambda: asyncio.run(raw_copy_postgres(bulk_url, path)))
    else:
        result["bulk"] = lines / timed(lambda: asyncio.run(raw_load_mysql(bulk_url, path)))
    import_url = fresh_database(server_url, "chat_ingest_bulk_import")
    imported = run_import(import_url, path, lines)
    result["import"], result["import_peak_mb"] = lines / imported["seconds"], imported["peak_mb"]
    batch_url = fresh_database(server_url, "chat_ingest_bulk_batch")
    server = Server(batch_url)
    try:
        result["batch"] = lines / timed(lambda: asyncio.run(post_batches(server.url, path)))
    finally:
        server.stop()
    return result


def report(results: list[dict[str, Any]], lines: int) -> str:
    out = [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"`uv run python benchmarks/bulk.py --lines {lines}`",
        "",
        "| backend | raw multi-row INSERT | raw bulk load | `chat-ingest import` |"
        " import / multi-row | import / bulk | import peak RSS | batch endpoint |"
        " batch / multi-row | batch / bulk |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        out.append(
            f"| {r['backend']} | {r['raw']:,.0f} rows/s | {r['bulk']:,.0f} rows/s |"
            f" {r['import']:,.0f} rows/s | {r['import'] / r['raw']:.0%} |"
            f" {r['import'] / r['bulk']:.0%} | {r['import_peak_mb']:.0f} MB |"
            f" {r['batch']:,.0f} rows/s | {r['batch'] / r['raw']:.0%} |"
            f" {r['batch'] / r['bulk']:.0%} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--mysql-url", default="mysql+asyncmy://root@127.0.0.1:3306/test")
    parser.add_argument(
        "--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bulk.jsonl"
        write_file(path, args.lines)
        results = [measure(url, path, args.lines) for url in (args.mysql_url, args.postgres_url)]
    print(json.dumps(results), file=sys.stderr)
    print(report(results, args.lines))


if __name__ == "__main__":
    main()
