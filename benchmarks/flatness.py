"""Does the import's cost stay flat as the tables grow? (issue 9)

Into one fresh database: import the first 100,000 lines (timed), then 1,800,000 more (not
timed), then the last 100,000 (timed); each is its own `chat-ingest import` process, so both
timed parts pay the same start-up. Prints the two rates and their ratio.

    uv run python benchmarks/flatness.py [--backend mysql|postgresql] [--total 2000000]
"""

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bulk import fresh_database, write_file
from processes import run_import

SERVERS = {
    "mysql": "mysql+asyncmy://root@127.0.0.1:3306/test",
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
}
EDGE = 100_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=sorted(SERVERS), default="mysql")
    parser.add_argument("--total", type=int, default=2_000_000)
    args = parser.parse_args()
    middle = args.total - 2 * EDGE
    database_url = fresh_database(SERVERS[args.backend], "chat_ingest_flatness")
    with tempfile.TemporaryDirectory() as directory:
        parts = {
            "first": (Path(directory) / "first.jsonl", EDGE, 0),
            "middle": (Path(directory) / "middle.jsonl", middle, EDGE),
            "last": (Path(directory) / "last.jsonl", EDGE, EDGE + middle),
        }
        for path, lines, first in parts.values():
            write_file(path, lines, first)
        rates = {}
        for name, (path, lines, _) in parts.items():
            result = run_import(database_url, path, lines)
            rates[name] = lines / result["seconds"]
            print(f"{name}: {lines:,} lines, {rates[name]:,.0f} rows/s", file=sys.stderr)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Run {when}: `uv run python benchmarks/flatness.py --backend {args.backend}"
          f" --total {args.total}`\n")  # fmt: skip
    print(f"first {EDGE:,} rows: {rates['first']:,.0f} rows/s; last {EDGE:,} rows of "
          f"{args.total:,}: {rates['last']:,.0f} rows/s; last / first = "
          f"{rates['last'] / rates['first']:.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
