"""chat-ingest throughput on MariaDB, measured side by side with the database's own ceiling.

Prints, in one run: (a) single inserts over HTTP with wrk against ``chat-ingest serve`` on its
default settings: new conversations at 16 and 64 connections, multi-turn (200 conversations,
several connections writing to each at once), two files per record, and one connection alone
(the latency a lone caller sees); (b) the batch endpoint with batches of 1000, (c)
``chat-ingest import`` of a 200,000-line file and its peak memory, (d) the raw ceilings (one
transaction per insert at 16 connections; multi-row INSERTs of 1000, two transactions in
flight) and each of (a)-(c) as a ratio to its ceiling.

    uv run python benchmarks/bench.py [--mysql-url URL] [--seconds 15] [--workers N]
                                      [--no-pre-ping] [--skip-bulk]
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
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from processes import CLI, run_import, start_serve, stop
from raw_ceiling import multi_row, per_transaction
from rows import insert_body

HERE = Path(__file__).parent
# Multi-turn bodies carry __CONV__ (as conversation_id and user_id) and __CMID__, replaced per
# request by one of the conversations (at random, so several connections write to one
# conversation at once) and by a client_message_id unique to this thread and request.
LUA = """
local bodies = {%s}
local conversations = {%s}
local n = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
init = function(args)
  math.randomseed(tid * 7919)
end
request = function()
  n = n + 1
  local body = bodies[(n %% #bodies) + 1]
  if #conversations > 0 then
    body = body:gsub("__CONV__", conversations[math.random(#conversations)])
               :gsub("__CMID__", tid .. "-" .. n)
  end
  return wrk.format("POST", "/api/chat/insert", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format('WRK {"requests": %%d, "seconds": %%f, "non2xx": %%d, "errors": %%d, '
    .. '"p50_ms": %%f, "p99_ms": %%f}\\n', summary.requests, summary.duration / 1e6,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def fresh_database(server_url: str, name: str) -> str:
    url = make_url(server_url)
    subprocess.run(
        ["mysql", "-h", url.host or "127.0.0.1", "-P", str(url.port or 3306), "-u",
         url.username or "root", "-e",
         f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} CHARACTER SET utf8mb4"],
        check=True,
    )  # fmt: skip
    database_url = url.set(database=name).render_as_string(hide_password=False)
    env = os.environ | {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
    return database_url


def _lua_strings(values: list[str]) -> str:
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in values)


def wrk(
    url: str,
    connections: int,
    seconds: int,
    bodies: list[dict[str, Any]],
    conversations: list[str] | None = None,
) -> dict[str, Any]:
    encoded = _lua_strings([orjson.dumps(b).decode() for b in bodies])
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % (encoded, _lua_strings(conversations or [])))
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
         "-s", script.name, url],
        capture_output=True, text=True,
    )  # fmt: skip
    if "WRK " not in out.stdout:
        raise RuntimeError(f"wrk failed: {out.stdout} {out.stderr}")
    result = json.loads(out.stdout.split("WRK ", 1)[1].splitlines()[0])
    result["rps"] = result["requests"] / result["seconds"]
    return dict(result)


async def batch_endpoint(url: str, bodies: list[dict[str, Any]], seconds: float) -> float:
    """Logical inserts per second through POST /api/chat/insert/batch, 1000 items a batch,
    two batches in flight (one per core)."""
    payloads = [orjson.dumps({"items": bodies[i : i + 1000]}) for i in range(0, 4000, 1000)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def sender(http: httpx.AsyncClient, offset: int) -> None:
        nonlocal done
        n = offset
        while time.perf_counter() < deadline:
            response = await http.post(
                "/api/chat/insert/batch",
                content=payloads[n % len(payloads)],
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()
            assert response.json()["inserted"] == 1000, response.text[:300]
            done += 1000
            n += 2

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        await asyncio.gather(sender(http, 0), sender(http, 1))
    return done / (time.perf_counter() - started)


def import_file(database_url: str, lines: int, directory: Path) -> dict[str, float]:
    """Time ``chat-ingest import`` of ``lines`` generated lines; peak RSS from wait4."""
    path = directory / "bench-import.jsonl"
    rng = random.Random(7)
    with path.open("wb") as out:
        for n in range(lines):
            out.write(orjson.dumps(insert_body(n, rng) | {"app_id": "bench-import"}) + b"\n")
    result = run_import(database_url, path, lines)
    return result | {"rps": lines / result["seconds"]}


class Server:
    """``chat-ingest serve`` on its default settings (log level and format, pool, workers),
    except where the command line of this script says otherwise."""

    def __init__(
        self, database_url: str, workers: int | None, pre_ping: bool, port: int = 10080
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {} if pre_ping else {"DB_POOL_PRE_PING": "false"}
        self.process = start_serve(database_url, port, env, workers)

    def stop(self) -> None:
        stop(self.process)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its worker processes (from /proc): per
        insert, a measure that a busy shared machine disturbs far less than throughput."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return sum(_cpu_seconds(int(p)) for p in [pid, *children])

    def measure(
        self,
        connections: int,
        seconds: int,
        bodies: list[dict[str, Any]],
        conversations: list[str] | None = None,
    ) -> dict[str, Any]:
        """A wrk run, with the server's CPU milliseconds per request."""
        before = self.cpu_seconds()
        result = wrk(self.url, connections, seconds, bodies, conversations)
        result["cpu_ms"] = 1000 * (self.cpu_seconds() - before) / max(1, result["requests"])
        return result


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql-url", default="mysql+asyncmy://root@127.0.0.1:3306/test")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=None, help="[default: the service's]")
    parser.add_argument("--import-lines", type=int, default=200_000)
    parser.add_argument(
        "--no-pre-ping", action="store_true", help="serve with DB_POOL_PRE_PING=false"
    )
    parser.add_argument(
        "--skip-bulk", action="store_true", help="leave out (b), (c) and the multi-row ceiling"
    )
    args = parser.parse_args()

    rng = random.Random(42)
    bodies = [insert_body(n, rng) for n in range(4000)]
    with_files = [insert_body(n, rng, with_files=True) for n in range(200)]
    turns = [
        insert_body(n, rng)
        | {"conversation_id": "__CONV__", "user_id": "__CONV__", "client_message_id": "__CMID__"}
        for n in range(200)
    ]
    threads = [str(uuid.uuid4()) for _ in range(200)]
    database_url = fresh_database(args.mysql_url, "chat_ingest_bench")
    url = make_url(database_url)
    dsn = {"host": url.host, "port": url.port or 3306, "user": url.username,
           "password": url.password or "", "db": url.database}  # fmt: skip
    results: dict[str, Any] = {}

    results["raw_tx16"] = asyncio.run(per_transaction(dsn, bodies, 16, args.seconds))
    results["raw_tx16_files"] = asyncio.run(per_transaction(dsn, with_files, 16, args.seconds))
    if not args.skip_bulk:
        results["raw_multi"] = asyncio.run(multi_row(dsn, bodies, 1000, 30))

    server = Server(database_url, args.workers, pre_ping=not args.no_pre_ping)
    try:
        wrk(server.url, 16, 3, bodies[:200])  # warm-up: pools filled, caches built
        results["http16"] = server.measure(16, args.seconds, bodies[:200])
        results["http64"] = server.measure(64, args.seconds, bodies[:200])
        results["turns16"] = server.measure(16, args.seconds, turns, threads)
        results["turns64"] = server.measure(64, args.seconds, turns, threads)
        results["http16_files"] = server.measure(16, args.seconds, with_files)
        results["http1"] = server.measure(1, args.seconds, bodies[:200])
        if not args.skip_bulk:
            results["batch"] = asyncio.run(batch_endpoint(server.url, bodies, args.seconds))
    finally:
        server.stop()
    if not args.skip_bulk:
        with tempfile.TemporaryDirectory() as directory:
            results["import"] = import_file(database_url, args.import_lines, Path(directory))
    report(results, args)


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    def http(name: str, key: str, ceiling: float) -> str:
        x = r[key]
        return (
            f"| {name} | {x['rps']:,.0f} req/s | p50 {x['p50_ms']:.1f} ms,"
            f" p99 {x['p99_ms']:.1f} ms, non-2xx {x['non2xx']}, errors {x['errors']},"
            f" server CPU {x['cpu_ms']:.2f} ms/req"
            f" | {x['rps'] / ceiling:.0%} |"
        )

    options = "".join(
        [
            f" --seconds {args.seconds}",
            f" --workers {args.workers}" if args.workers is not None else "",
            " --no-pre-ping" if args.no_pre_ping else "",
            " --skip-bulk" if args.skip_bulk else "",
        ]
    )
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"`uv run python benchmarks/bench.py{options}`",
        "",
        "| measurement | rate | detail | ratio to ceiling |",
        "|---|---|---|---|",
        f"| (d) raw, 1 tx per insert, 16 conns | {r['raw_tx16']:,.0f} inserts/s |"
        " ceiling for (a) | |",
        f"| (d) raw, 1 tx per insert, 16 conns, 2 files | {r['raw_tx16_files']:,.0f} inserts/s |"
        " ceiling for (a) with files | |",
        http("(a) new conversations, 16 conns", "http16", r["raw_tx16"]),
        http("(a) new conversations, 64 conns", "http64", r["raw_tx16"]),
        http("(a) multi-turn, 200 conversations, 16 conns", "turns16", r["raw_tx16"]),
        http("(a) multi-turn, 200 conversations, 64 conns", "turns64", r["raw_tx16"]),
        http("(a) new conversations, 2 files, 16 conns", "http16_files", r["raw_tx16_files"]),
        http("(a) new conversations, 1 conn", "http1", r["raw_tx16"]),
    ]
    if not args.skip_bulk:
        lines += [
            f"| (d) raw, multi-row INSERTs of 1000 | {r['raw_multi']:,.0f} inserts/s |"
            " ceiling for (b), (c) | |",
            f"| (b) batch endpoint, 1000 per batch | {r['batch']:,.0f} inserts/s | |"
            f" {r['batch'] / r['raw_multi']:.0%} |",
            f"| (c) import, {args.import_lines:,} lines | {r['import']['rps']:,.0f} inserts/s |"
            f" {r['import']['seconds']:.1f} s, peak RSS {r['import']['peak_mb']:.0f} MB |"
            f" {r['import']['rps'] / r['raw_multi']:.0%} |",
        ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
