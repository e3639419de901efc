"""Does the import's cost stay flat as the tables grow? (issue 9)

Into one fresh database: import the first 100,000 lines (timed), then the middle lines (not
timed), then the last 100,000 (timed); each is its own `chat-ingest import` process, so both
timed parts pay the same start-up. Right after each timed part, the raw multi-row INSERT client
(`bulk.raw_mysql` / `bulk.raw_postgres`, no service code) writes 20,000 more lines into the same
database, timed: what the database itself does at that size. Prints both rates at both ends and
their ratios, with the server's cache size (InnoDB buffer pool / shared_buffers).

    uv run python benchmarks/flatness.py [--backend mysql|postgresql] [--total 2000000]
        [--buffer-pool-mb N]

``--buffer-pool-mb`` (MariaDB only) runs with that InnoDB buffer pool (``SET GLOBAL``, which
MariaDB applies online) and puts the server's own size back at the end: to see what the load
does when the tables' indexes fit in the database's cache.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).parent))
from bulk import fresh_database, raw_mysql, raw_postgres, write_file
from processes import run_import

SERVERS = {
    "mysql": "mysql+asyncmy://root@127.0.0.1:3306/test",
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
}
CACHE_SIZE = {
    "mysql": "SELECT CONCAT(@@innodb_buffer_pool_size DIV 1048576, ' MB InnoDB buffer pool')",
    "postgresql": "SELECT current_setting('shared_buffers') || ' shared_buffers'",
}
EDGE = 100_000
PROBE = 20_000


def cache_size(database_url: str, backend: str) -> str:
    async def ask() -> str:
        engine = create_async_engine(database_url)
        async with engine.connect() as connection:
            size = await connection.scalar(text(CACHE_SIZE[backend]))
        await engine.dispose()
        return str(size)

    return asyncio.run(ask())


async def _set_buffer_pool(server_url: str, megabytes: int) -> int:
    """Resize the InnoDB buffer pool, wait until it is done; return the size it had (MB)."""
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        before = int(await connection.scalar(text("SELECT @@innodb_buffer_pool_size")))
        wanted = megabytes * 1024 * 1024
        await connection.execute(text(f"SET GLOBAL innodb_buffer_pool_size = {wanted}"))
        for _ in range(600):
            size = await connection.scalar(text("SELECT @@innodb_buffer_pool_size"))
            status = await connection.execute(
                text("SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'")
            )
            if int(size) == wanted and "ompleted" in (status.one()[1] or "ompleted"):
                break
            await asyncio.sleep(0.5)
    await engine.dispose()
    return before // (1024 * 1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=sorted(SERVERS), default="mysql")
    parser.add_argument("--total", type=int, default=2_000_000)
    parser.add_argument("--buffer-pool-mb", type=int)
    args = parser.parse_args()
    if args.buffer_pool_mb and args.backend != "mysql":
        parser.error("--buffer-pool-mb is for MariaDB/MySQL")
    restore = None
    if args.buffer_pool_mb:
        restore = asyncio.run(_set_buffer_pool(SERVERS["mysql"], args.buffer_pool_mb))
    try:
        run(args.backend, args.total)
    finally:
        if restore is not None:
            asyncio.run(_set_buffer_pool(SERVERS["mysql"], restore))


def run(backend: str, total: int) -> None:
    middle = total - 2 * EDGE - PROBE
    database_url = fresh_database(SERVERS[backend], "chat_ingest_flatness")
    raw = raw_postgres if backend == "postgresql" else raw_mysql
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        # (what, lines, first line number, timed import or raw client)
        steps = [
            ("first", EDGE, 0, "import"),
            ("raw at first", PROBE, EDGE, "raw"),
            ("middle", middle, EDGE + PROBE, "import"),
            ("last", EDGE, total - EDGE, "import"),
            ("raw at last", PROBE, total, "raw"),
        ]
        for name, lines, first, how in steps:
            path = Path(directory) / f"{name}.jsonl"
            write_file(path, lines, first)
            if how == "import":
                seconds = run_import(database_url, path, lines)["seconds"]
            else:
                started = time.perf_counter()
                asyncio.run(raw(make_url(database_url), path))
                seconds = time.perf_counter() - started
            rates[name] = lines / seconds
            path.unlink()
            print(f"{name}: {lines:,} lines, {rates[name]:,.0f} rows/s", file=sys.stderr)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"uv run python benchmarks/flatness.py {' '.join(sys.argv[1:])}".strip()
    print(f"Run {when}: `{command}` ({cache_size(database_url, backend)})\n")
    print("| | import | raw multi-row client | import / raw |\n|---|---|---|---|")
    for end in ("first", "last"):
        label = f"{end} {EDGE:,} rows" if end == "first" else f"last {EDGE:,} of {total:,}"
        print(f"| {label} | {rates[end]:,.0f} rows/s | {rates[f'raw at {end}']:,.0f} rows/s |"
              f" {rates[end] / rates[f'raw at {end}']:.0%} |")  # fmt: skip
    print(f"| last / first | {rates['last'] / rates['first']:.0%} |"
          f" {rates['raw at last'] / rates['raw at first']:.0%} | |")  # fmt: skip


if __name__ == "__main__":
    main()
