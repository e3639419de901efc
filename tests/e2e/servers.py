"""Start and stop real ``chat-ingest serve`` processes for end-to-end tests."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
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


def start_timeout() -> float:
    """How long a process may take to start. Waits end as soon as the process is ready, so a
    generous bound costs nothing on a quiet machine and keeps a loaded one (CI beside other
    jobs) from failing; ``TEST_START_TIMEOUT`` overrides it."""
    return float(os.environ.get("TEST_START_TIMEOUT", "120"))


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


class Server:
    """One ``chat-ingest serve`` process on a fixed port, which can be stopped and started
    again (e.g. to restart it under a running client).

    The process leads its own process group (``serve --workers`` forks), so ``stop`` reaches
    every process it started; its log goes to a file (``log_path``, or a temporary one), never
    to a pipe that nobody reads and that would block the server once full. Every server still
    running when the test session ends is stopped by ``stop_all``."""

    def __init__(
        self,
        env: dict[str, str],
        cwd: Path | None = None,
        port: int | None = None,
        args: Sequence[str] = (),
        log_path: Path | None = None,
    ):
        self.env = _environment({"LOG_FORMAT": "text"} | env)
        self.cwd = cwd
        self.args = list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or Path(
            tempfile.mkstemp(prefix="chat-ingest-serve-", suffix=".log")[1]
        )
        self._own_log = log_path is None
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        _LIVE.add(self)

    def log(self) -> str:
        return _tail(self.log_path)

    def wait_until_healthy(self) -> None:
        """Wait until the server answers (its start-up migrations done); fail at once, with its
        log, when it exits instead."""
        process = self.process
        assert process is not None
        timeout = start_timeout()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early ({process.returncode}):\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/api/chat/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.url} did not become healthy in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM to the whole group (uvicorn's graceful shutdown finishes requests in flight)
        and wait; SIGKILL whatever is left after the grace period."""
        process, self.process = self.process, None
        _LIVE.discard(self)
        if process is None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=15)
        _signal_group(process, signal.SIGKILL)  # workers that outlived their parent

    def close(self) -> None:
        self.stop()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


_LIVE: set[Server] = set()


def stop_all() -> None:
    """Stop every server a test left running (a test that failed between start and stop)."""
    for server in list(_LIVE):
        server.close()


@contextmanager
def serving(
    env: dict[str, str],
    cwd: Path | None = None,
    count: int = 1,
    args: Sequence[str] = (),
    log_path: Path | None = None,
) -> Iterator[list[str]]:
    """Start ``count`` servers at once (they race on start-up migrations), each with ``serve``
    options ``args`` and, when ``log_path`` is given, their logs appended to it; yield their
    URLs. They are stopped however the block ends."""
    servers = [Server(env, cwd, args=args, log_path=log_path) for _ in range(count)]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_until_healthy()
        yield [server.url for server in servers]
    finally:
        for server in servers:
            server.close()
