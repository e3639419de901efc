"""A database outage under traffic: a private MariaDB is killed and restarted under a running
``chat-ingest serve``. While it is down the service answers 503 quickly; once it is back the
service recovers by itself, and no write was lost, duplicated or left half done."""

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db.engine import create_engine
from tests.conftest import _create_server_database, unique
from tests.e2e.private_mariadb import PrivateMariaDB, private_mariadb
from tests.e2e.servers import serving

# Private MariaDB servers run one at a time: two at once on the same worker pair
# failed to bootstrap under xdist.
pytestmark = [pytest.mark.asyncio, pytest.mark.xdist_group("private-mariadb")]

DB_TIMEOUT = 3.0
SLACK = 2.0  # HTTP round trip and scheduling on a busy machine, on top of DB_TIMEOUT
WRITERS = 4
PHASE_SECONDS = 45  # for each phase's answers to come in, on a machine busy with other tests


@dataclass(frozen=True)
class Outcome:
    body: dict[str, Any]
    phase: str  # the database's state while in flight: up, down, restarting, back, up..down
    status: int
    seconds: float
    retry_after: str | None
    message_id: str | None


class Traffic:
    """Writers that keep adding numbered turns to their own conversations, recording every
    answer; a turn that got a 503 is not retried here (the test re-sends it at the end)."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, app_id: str) -> None:
        self.http = http
        self.base_url = base_url
        self.app_id = app_id
        self.phase = "up"
        self.outcomes: list[Outcome] = []
        self._stopping = asyncio.Event()
        self._answered = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(*(self._writer(unique("conv")) for _ in range(WRITERS)))

    def stop(self) -> None:
        self._stopping.set()

    def count(self, phase: str, status: int) -> int:
        return sum(o.phase == phase and o.status == status for o in self.outcomes)

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait up to PHASE_SECONDS until ``condition`` holds after some answer; if it does
        not, fail saying what every request got so far."""
        try:
            async with asyncio.timeout(PHASE_SECONDS):
                while not condition():
                    self._answered.clear()
                    await self._answered.wait()
        except TimeoutError:
            seen = Counter((o.phase, o.status) for o in self.outcomes)
            slowest = max((o.seconds for o in self.outcomes), default=0.0)
            pytest.fail(f"no {what} within {PHASE_SECONDS} s; answers so far: {dict(seen)}, "
                        f"slowest {slowest:.1f} s")  # fmt: skip

    async def send(self, body: dict[str, Any]) -> Outcome:
        """Post one turn and record what came back; a request that failed without an HTTP
        answer, or with one that is not JSON, is recorded as status 0 (and fails the test's
        checks) instead of silently ending its writer."""
        phase, started = self.phase, time.monotonic()
        try:
            response = await self.http.post(f"{self.base_url}/api/chat/insert", json=body)
            status, retry_after = response.status_code, response.headers.get("retry-after")
            message_id = response.json().get("message_id")
        except (httpx.HTTPError, ValueError) as exc:
            status, retry_after, message_id = 0, None, repr(exc)
        finished_in = self.phase
        outcome = Outcome(
            body=body,
            phase=phase if finished_in == phase else f"{phase}..{finished_in}",
            status=status,
            seconds=time.monotonic() - started,
            retry_after=retry_after,
            message_id=message_id,
        )
        self.outcomes.append(outcome)
        self._answered.set()
        return outcome

    async def _writer(self, conversation_id: str) -> None:
        turn = 0
        while not self._stopping.is_set():
            body = {
                "app_id": self.app_id,
                "user_id": "u",
                "conversation_id": conversation_id,
                "client_message_id": f"turn-{turn}",
                "query": f"question {turn}",
                "answer": f"answer {turn}",
            }
            turn += 1
            if (await self.send(body)).status != 200:
                await asyncio.sleep(0.2)  # a polite client backs off


async def _check_while_down(http: httpx.AsyncClient, base_url: str) -> None:
    started = time.monotonic()
    ready = await http.get(f"{base_url}/api/chat/ready")
    assert ready.status_code == 503 and ready.headers["retry-after"]
    assert time.monotonic() - started < DB_TIMEOUT + SLACK
    health = await http.get(f"{base_url}/api/chat/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"


async def _run_outage(server: PrivateMariaDB, base_url: str, app_id: str) -> Traffic:
    """Traffic through: database up, killed, restarted. Returns what every request got."""
    async with httpx.AsyncClient(timeout=DB_TIMEOUT * 5) as http:
        traffic = Traffic(http, base_url, app_id)
        writers = asyncio.create_task(traffic.run())
        await traffic.until(lambda: traffic.count("up", 200) >= 20, "20 answers 200 while up")
        server.kill()
        traffic.phase = "down"
        await traffic.until(lambda: traffic.count("down", 503) >= 8, "8 answers 503 while down")
        await _check_while_down(http, base_url)
        traffic.phase = "restarting"
        await asyncio.to_thread(server.start)
        traffic.phase = "back"
        await traffic.until(lambda: traffic.count("back", 200) >= 20, "20 answers 200 once back")
        assert (await http.get(f"{base_url}/api/chat/ready")).status_code == 200
        traffic.stop()
        await writers
        traffic.phase = "resent"
        for failed in [o for o in traffic.outcomes if o.status != 200]:
            assert (await traffic.send(failed.body)).status == 200
    return traffic


def _assert_answers_were_prompt_and_clean(traffic: Traffic) -> None:
    statuses = {o.status for o in traffic.outcomes}
    assert statuses <= {200, 503}, statuses
    assert all(o.retry_after for o in traffic.outcomes if o.status == 503)
    assert max(o.seconds for o in traffic.outcomes) < DB_TIMEOUT + SLACK
    assert traffic.count("down", 200) == 0
    back = [o.status for o in traffic.outcomes if o.phase == "back"]
    assert 503 not in back[back.index(200) :]  # once recovered, it stays recovered


async def _count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text(sql)) or 0)


async def _assert_consistent(url: str) -> None:
    """Every message has its conversation and every dialogue_count is its message count."""
    engine = create_engine(url)
    try:
        orphans = await _count(
            engine,
            "SELECT COUNT(*) FROM messages m "
            "LEFT JOIN conversations c ON c.id = m.conversation_id WHERE c.id IS NULL",
        )
        miscounted = await _count(
            engine,
            "SELECT COUNT(*) FROM conversations c WHERE c.dialogue_count <> "
            "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)",
        )
        assert (orphans, miscounted) == (0, 0)
    finally:
        await engine.dispose()


async def _stored_message_ids(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set((await connection.execute(text("SELECT id FROM messages"))).scalars())
    finally:
        await engine.dispose()


async def test_database_killed_and_restarted_under_traffic(tmp_path: Path) -> None:
    with private_mariadb(tmp_path) as server:
        url = await _create_server_database(server.server_url, "chat")
        env = {"DATABASE_URL": url, "DB_TIMEOUT": str(DB_TIMEOUT)}
        with serving(env) as [base_url]:
            traffic = await _run_outage(server, base_url, unique("app"))
        _assert_answers_were_prompt_and_clean(traffic)
        await _assert_consistent(url)
        stored = await _stored_message_ids(url)
    assert {o.message_id for o in traffic.outcomes if o.status == 200} <= stored  # durable
    keys = {(o.body["conversation_id"], o.body["client_message_id"]) for o in traffic.outcomes}
    assert len(stored) == len(keys)  # each turn exactly once, re-sent ones included


def _turn(app_id: str, number: int) -> dict[str, Any]:
    return {"app_id": app_id, "user_id": "u", "query": f"q{number}", "answer": "a"}


async def test_frozen_database_answers_503_within_db_timeout(tmp_path: Path) -> None:
    """A database that stops answering (SIGSTOP: sockets open, nothing replies) must not hang
    requests past DB_TIMEOUT; once it answers again, so does the service."""
    with private_mariadb(tmp_path) as server:
        url = await _create_server_database(server.server_url, "chat")
        env = {"DATABASE_URL": url, "DB_TIMEOUT": str(DB_TIMEOUT)}
        app_id = unique("app")
        with serving(env) as [base_url]:
            async with httpx.AsyncClient(base_url=base_url, timeout=DB_TIMEOUT * 5) as http:
                warm = [http.post("/api/chat/insert", json=_turn(app_id, i)) for i in range(8)]
                assert {r.status_code for r in await asyncio.gather(*warm)} == {200}
                server.freeze()
                started = time.monotonic()
                stuck = [http.post("/api/chat/insert", json=_turn(app_id, i)) for i in range(8)]
                answers = await asyncio.gather(*stuck, http.get("/api/chat/ready"))
                assert time.monotonic() - started < DB_TIMEOUT + SLACK
                assert {r.status_code for r in answers} == {503}
                assert all(r.headers["retry-after"] for r in answers)
                assert (await http.get("/api/chat/health")).status_code == 200
                server.thaw()
                after = [http.post("/api/chat/insert", json=_turn(app_id, i)) for i in range(8)]
                assert {r.status_code for r in await asyncio.gather(*after)} == {200}
        await _assert_consistent(url)
