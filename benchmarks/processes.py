"""The service's own processes as the benchmarks run them: `chat-ingest import` timed with its
peak RSS, and `chat-ingest serve` started and waited on until it is ready."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "chat_ingest"]


def run_import(database_url: str, path: Path, lines: int) -> dict[str, float]:
    """Time ``chat-ingest import`` of the ``lines`` lines of ``path``; peak RSS from wait4."""
    env = os.environ | {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    process = subprocess.Popen([*CLI, "import", str(path)], env=env, stdout=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    summary = process.stdout.read().decode().strip() if process.stdout else ""
    if status != 0 or not summary.startswith(f"inserted {lines},"):
        raise RuntimeError(f"import failed ({status}): {summary}")
    return {"seconds": elapsed, "peak_mb": usage.ru_maxrss / 1024}


def start_serve(
    database_url: str, port: int, env: dict[str, str], workers: int | None
) -> subprocess.Popen[bytes]:
    """``chat-ingest serve`` on ``port`` with ``env`` added, once it answers ready."""
    command = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(
        command,
        env=os.environ | {"DATABASE_URL": database_url, "AUTO_MIGRATE": "false"} | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/chat/ready").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=60)
