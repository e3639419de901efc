"""Start and stop real ``chat-ingest serve`` processes for end-to-end tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from chat_ingest.config import Settings

CLI = [sys.executable, "-m", "chat_ingest"]
Server = subprocess.Popen[str]


def _environment(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment without any chat-ingest setting, plus ``overrides``."""
    settings = {name.upper() for name in Settings.model_fields}
    return {k: v for k, v in os.environ.items() if k.upper() not in settings} | overrides


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=_environment(env), cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _wait_until_healthy(base_url: str, process: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited early:\n{process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{base_url}/api/chat/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{base_url} did not become healthy in {timeout}s")


def _spawn(env: dict[str, str], port: int, cwd: Path | None, args: tuple[str, ...]) -> Server:
    return subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=_environment({"LOG_FORMAT": "text"} | env),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_server(env: dict[str, str], port: int, *args: str, cwd: Path | None = None) -> Server:
    """Start ``chat-ingest serve --port PORT ARGS...`` and wait until it is healthy."""
    process = _spawn(env, port, cwd, args)
    _wait_until_healthy(f"http://127.0.0.1:{port}", process, timeout=30)
    return process


def stopped_log(process: Server) -> str:
    """Wait for a server told to stop; return what it logged."""
    _, stderr = process.communicate(timeout=60)
    return stderr


@contextmanager
def serving(env: dict[str, str], cwd: Path | None = None, count: int = 1) -> Iterator[list[str]]:
    """Start ``count`` servers at once (they race on start-up migrations); yield their URLs."""
    ports = [free_port() for _ in range(count)]
    processes = [_spawn(env, port, cwd, ()) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            _wait_until_healthy(url, process, timeout=30)
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            stopped_log(process)
