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


def _environment(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment without any chat-ingest setting, plus ``overrides``."""
    settings = {name.upper() for name in Settings.model_fields}
    return {k: v for k, v in os.environ.items() if k.upper() not in settings} | overrides


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``chat-ingest ARGS`` in a clean environment plus ``env``; quiet logs."""
    result = subprocess.run(
        [*CLI, *args],
        env=_environment({"LOG_LEVEL": "WARNING"} | env),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def _wait_until_healthy(base_url: str, process: subprocess.Popen[str], timeout: float) -> None:
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


class Server:
    """One ``chat-ingest serve`` process on a fixed port, which can be stopped and started
    again (e.g. to restart it under a running client)."""

    def __init__(self, env: dict[str, str], cwd: Path | None = None, port: int | None = None):
        self.env = _environment({"LOG_FORMAT": "text"} | env)
        self.cwd = cwd
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def launch(self) -> None:
        self.process = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_until_healthy(self) -> None:
        assert self.process is not None
        _wait_until_healthy(self.url, self.process, timeout=30)

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown finishes requests in flight) and wait."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None


@contextmanager
def serving(env: dict[str, str], cwd: Path | None = None, count: int = 1) -> Iterator[list[str]]:
    """Start ``count`` servers at once (they race on start-up migrations); yield their URLs."""
    servers = [Server(env, cwd) for _ in range(count)]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_until_healthy()
        yield [server.url for server in servers]
    finally:
        for server in servers:
            server.stop()
