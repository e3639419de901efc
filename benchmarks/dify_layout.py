"""The Dify layout against the seed layout, same records, same machine, one run.

For each backend (MariaDB, PostgreSQL) it creates two fresh databases: one migrated for the
seed layout, one with the Dify-shaped test schema (``tests/dify/schema.py``) and one chat app.
It then drives the service's own write path in-process (``insert_one`` for single inserts,
``store_items`` for batches, exactly what the routes call), so that the figures compare the
layouts rather than HTTP:

- single inserts: 16 concurrent writers for ``--seconds``, each writing its conversations
  one after the other (3 turns each, a ``client_message_id`` each): (1) for ``--users``
  returning users (each wrote once before the measure), (2) for a new user every
  conversation (the Dify layout then also creates an end user per conversation);
- batches: 1000-record batches of returning users for ``--seconds``.

The machine is shared, so each layout is measured ``--rounds`` times, alternately, and the
best round of each is reported.

    uv run python benchmarks/dify_layout.py [--seconds 10] [--backends mysql,postgresql]

The servers are TEST_MYSQL_URL / TEST_POSTGRES_URL (default: the local ones), as for the tests.
"""

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from rows import insert_body  # noqa: E402
from sqlalchemy import text  # noqa: E402
from tests.conftest import DatabaseFactory  # noqa: E402
from tests.dify.schema import ddl  # noqa: E402
from tests.dify.seed import create_dify_app  # noqa: E402

from chat_ingest.config import Settings  # noqa: E402
from chat_ingest.db import migrate  # noqa: E402
from chat_ingest.runtime import insert_policy, open_database, open_store  # noqa: E402
from chat_ingest.schemas import InsertRequest  # noqa: E402
from chat_ingest.service.access import OPEN_ACCESS  # noqa: E402
from chat_ingest.service.insert import insert_one, store_items  # noqa: E402

WRITERS = 16
BATCH = 1000


class Records:
    """One writer's endless records: its conversations one after the other, 3 turns each, a
    client_message_id each; writer ``w`` of ``k`` talks for users w, w + k, w + 2k, ..."""

    def __init__(
        self, app_id: str, users: int | None, writer: int = 0, writers: int = 1, prefix: str = ""
    ) -> None:
        self.app_id = app_id
        self.users, self.writer, self.writers, self.prefix = users, writer, writers, prefix
        self.rng = random.Random(writer)
        self.n = 0
        self.conversation = str(uuid.uuid4())

    def next(self) -> dict[str, Any]:
        self.n += 1
        if self.n % 3 == 1:
            self.conversation = str(uuid.uuid4())
        user = self.writer + (self.n - 1) // 3 * self.writers
        if self.users is not None:  # None: a new user for every conversation
            user %= self.users
        return insert_body(self.n, self.rng) | {
            "app_id": self.app_id,
            "user_id": f"user-{self.prefix}{user}",
            "conversation_id": self.conversation,
            "client_message_id": f"m-{self.n}",
        }


async def prepare(layout: str, factory: DatabaseFactory) -> tuple[Settings, str]:
    url = await factory.new_url()
    settings = Settings(database_url=url, table_layout=layout, auto_migrate=False)
    database = open_database(settings)
    try:
        if layout == "seed":
            await migrate.upgrade(database.engine)
            return settings, str(uuid.uuid4())
        async with database.engine.begin() as connection:
            for statement in ddl(connection.dialect.name.replace("mariadb", "mysql")):
                await connection.execute(text(statement))
            app = await create_dify_app(connection)
        return settings, app.id
    finally:
        await database.engine.dispose()


async def measure(seconds: float, steps: list[Callable[[], Awaitable[int]]]) -> float:
    """Records per second written by one loop per step (each step returns its count)."""
    done = 0
    deadline = time.monotonic() + seconds

    async def loop(step: Callable[[], Awaitable[int]]) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            written = await step()  # not ``done += await ...``: that reads done before awaiting
            done += written

    started = time.monotonic()
    await asyncio.gather(*(loop(step) for step in steps))
    return done / (time.monotonic() - started)


async def run_layout(
    settings: Settings, app_id: str, seconds: float, users: int, round_: int
) -> tuple[float, float, float]:
    """Single inserts of returning users, of new users, and batches (records per second)."""
    database = open_database(settings)
    store = await open_store(settings, database.engine)
    policy = insert_policy(settings)

    def singles(pool: int | None, prefix: str) -> list[Callable[[], Awaitable[int]]]:
        def step(records: Records) -> Callable[[], Awaitable[int]]:
            async def insert() -> int:
                request = InsertRequest.model_validate(records.next())
                await insert_one(database, store, request, policy)
                return 1

            return insert

        return [step(Records(app_id, pool, w, WRITERS, prefix)) for w in range(WRITERS)]

    batch_records = Records(app_id, users, prefix=f"r{round_}-")

    async def batch() -> int:
        items = [batch_records.next() for _ in range(BATCH)]
        results = await store_items(database, store, items, policy, OPEN_ACCESS)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise RuntimeError(f"{len(failed)} records failed: {failed[0]}")
        return len(items)

    try:
        returning = singles(users, f"r{round_}-")
        for _ in range(users // WRITERS + 1):  # warm-up: every user writes once
            await asyncio.gather(*(step() for step in returning))
        known = await measure(seconds, returning)
        new = await measure(seconds, singles(None, f"n{round_}-"))
        batches = await measure(seconds, [batch])
    finally:
        await database.engine.dispose()
    return known, new, batches


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--backends", default="mysql,postgresql")
    options = parser.parse_args()
    print(f"{'backend':<11} {'layout':<6} {'single/s':>9} {'new users':>10} {'batch rows/s':>13}")
    for backend in options.backends.split(","):
        factory = DatabaseFactory(backend, Path("."))
        try:
            prepared = {layout: await prepare(layout, factory) for layout in ("seed", "dify")}
            best = dict.fromkeys(prepared, (0.0, 0.0, 0.0))
            for round_ in range(options.rounds):
                for layout, (settings, app_id) in prepared.items():
                    figures = await run_layout(
                        settings, app_id, options.seconds, options.users, round_
                    )
                    known, new, batches = figures
                    print(f"{backend:<11} {layout:<6} {known:>9.0f} {new:>10.0f} {batches:>13.0f}")
                    best[layout] = (
                        max(best[layout][0], known),
                        max(best[layout][1], new),
                        max(best[layout][2], batches),
                    )
            ratio = [d / s for d, s in zip(best["dify"], best["seed"], strict=True)]
            print(
                f"{backend:<11} dify/seed (best rounds): single {ratio[0]:.0%}, "
                f"new users {ratio[1]:.0%}, batch {ratio[2]:.0%}"
            )
        finally:
            await factory.drop_all()


if __name__ == "__main__":
    asyncio.run(main())
